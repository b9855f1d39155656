#!/usr/bin/env python3
"""A real Ballista cluster on loopback: one `audience cluster scheduler`, N `audience cluster
executor`s, every benchmark segment counted on it and locally; the counts must be equal.

    python3 benches/cluster_loopback.py --bin target/debug/audience --store data/sample   # CI
    python3 benches/cluster_loopback.py --executors 1 --runs 3     # scaling, benchmark store
    python3 benches/cluster_loopback.py --executors 2 --runs 3

Each executor gets --threads slots (default 1, so 2 executors use both cores of a 2-core
machine); local runs use --threads executors*slots. The processes are stopped however the script
ends; their logs are printed when something fails. Exit 1 on a count mismatch or a failed run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHES))
import compare  # noqa: E402  (segments, processes, store setup)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"{what} did not listen on port {port} within {seconds:.0f} s:\n{log.read_text()}")


class Cluster:
    """Scheduler + executors as child processes, stopped on exit."""

    def __init__(self, binary: Path, executors: int, slots: int, logs: Path):
        self.binary, self.logs = binary, logs
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.port = free_port()
        self.start("scheduler", ["cluster", "scheduler", "--port", str(self.port)], self.port)
        for i in range(executors):
            flight, grpc = free_port(), free_port()
            args = [
                "cluster", "executor",
                "--scheduler", self.url,
                "--port", str(flight), "--grpc-port", str(grpc),
                "--threads", str(slots),
                "--work-dir", str(logs / f"executor-{i}-work"),
            ]
            (logs / f"executor-{i}-work").mkdir()
            self.start(f"executor-{i}", args, grpc)

    @property
    def url(self) -> str:
        return f"df://127.0.0.1:{self.port}"

    def start(self, name: str, args: list[str], port: int) -> None:
        log = self.logs / f"{name}.log"
        out = log.open("w")
        proc = subprocess.Popen([str(self.binary), *args], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, proc, log))
        wait_for_port(port, proc, name, log)

    def dump_logs(self) -> None:
        for name, _, log in self.procs:
            print(f"--- {name} log (last 40 lines) ---", file=sys.stderr)
            print("\n".join(log.read_text().splitlines()[-40:]), file=sys.stderr)

    def stop(self) -> None:
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=compare.DEFAULT_BIN, help="audience binary built with --features cluster")
    ap.add_argument("--store", type=Path, default=Path(os.environ.get("AUDIENCE_BENCH_STORE") or compare.DEFAULT_STORE))
    ap.add_argument("--executors", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="task slots per executor")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", help="regular expression on segment names")
    args = ap.parse_args()

    binary = args.bin.resolve()
    compare.ensure_binary(binary)
    if not (args.store / "snapshots").is_dir():
        compare.ensure_store(binary, args.store)
    store = args.store.resolve()
    segments = compare.load_segments(compare.re.compile(args.only) if args.only else None)
    local_threads = args.executors * args.threads

    failures = 0
    with tempfile.TemporaryDirectory(prefix="audience-cluster-") as tmp:
        cluster = Cluster(binary, args.executors, args.threads, Path(tmp))
        try:
            print(f"cluster {cluster.url}: 1 scheduler, {args.executors} executor(s) x {args.threads} slot(s); "
                  f"local runs use --threads {local_threads}; store {store}")
            rows = []
            for seg in segments:
                local, remote = compare.Measure(), compare.Measure()
                for _ in range(args.runs):
                    for m, url in ((local, None), (remote, cluster.url)):
                        extra = ["--cluster", url] if url else []
                        r = compare.run(compare.count_cmd(binary, store, seg, local_threads, extra))
                        m.add(r, compare.parse_int(r.stdout))
                ok = local.count is not None and local.count == remote.count
                failures += not ok
                status = "ok" if ok else f"MISMATCH local={local.counts} cluster={remote.counts} {local.errors + remote.errors}"
                rows.append([seg.name, str(local.count), compare.secs(local.median), compare.secs(remote.median),
                             compare.ratio(remote.median, local.median), status])
            print(compare.table(["segment", "count", "local (s)", "cluster (s)", "cluster/local", "result"], rows))
            if failures:
                cluster.dump_logs()
        finally:
            cluster.stop()
    if failures:
        print(f"{failures} segment(s) differ or failed on the cluster", file=sys.stderr)
        return 1
    print(f"all {len(segments)} segments: cluster counts equal local counts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
