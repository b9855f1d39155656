#!/usr/bin/env python3
"""The warm-path benchmark of `audience serve` (issue 18): counts over HTTP from a warm server
against DuckDB running the same hand-written SQL on one open connection, then a load phase.

    python3 benches/serve_bench.py                        # 1M-person store, release binary, 20 runs
    python3 benches/serve_bench.py --only '05|07' --no-load --json out.json
    python3 benches/serve_bench.py --load-seconds 10 --clients 8

`audience serve --threads 2` is started on a free loopback port with a random --token-file and
polled on /api/health until it answers. It serves a temporary overlay of the store: its snapshots
linked in, and benches/segments/saved and benches/export_job/segments copied into segments/ (the
server reads saved segments there and writes exports into exports/); the store is never written.

Counts, per benchmark segment (benches/segments/NN_name.seg; `# target: persons` on the first line
selects persons, else installations): 3 warm-up `POST /api/v1/count` calls, then --runs calls on
one keep-alive connection (http.client), each timed here from sending to the last byte read;
median and p90 (the route answers both targets; the segment's is taken). DuckDB 2.0 (pip-installed
when missing): one connection, views made once by duckdb_query.connect with 2 threads (as
compare.py), NN_name.sql with placeholders filled, 3 warm-up runs then --runs timed around execute
+ fetchall; median. The two alternate segment by segment. Both counts must equal `audience count`
(one process per segment), or the script says so loudly and exits 1. Target: server <= 0.25x DuckDB.

The server keeps the pairs each condition matched (`--cache-memory`, default 256MiB; 0 keeps
none), so the timed calls above find every condition of their segment kept. Two more figures
show what a marketer meets before that: the first call of each segment (its own conditions not
yet seen, conditions it shares with an earlier segment and the channels already kept; the
snapshots and catalog are asked for first, as the page does when it loads), and
--edits keystrokes: the segment with its first number changed each time (`7d` -> 8d, 9d, ...),
one new condition a call beside kept ones. --back N evaluates the counts (server, DuckDB and
the command line they are held to) N days before the snapshot's as-of: a backtest.

Load (--load-seconds 60, --clients 32; --no-load skips it): a thread per client, each with its own
connection, sends back to back 40% count, 40% check, 20% preview (20 rows) over the segments, while
one export job (benches/export_job: 10 saved segments, push, CSV) is started, polled until done and
downloaded (rows checked). Reported: requests, throughput, p50/p99 per kind, failed requests
(non-2xx or transport errors; the target is 0) and the server's VmRSS every second: start/max/end.

The latest snapshot is the highest `published_seq` in manifest.json (as the store orders them; not
the lexically last id). The server is stopped at the end, on Ctrl-C or on an error. Defaults:
--store $AUDIENCE_BENCH_STORE, else ~/.cache/audience-bench/store-1m-seed42; --bin
$CARGO_TARGET_DIR/release/audience, else ~/.cache/audience-target/release/audience.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import http.client
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
EXPORT_SEGMENTS = BENCHES / "export_job" / "segments"
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "audience-target")
DEFAULT_BIN = TARGET_DIR / "release" / "audience"
DEFAULT_STORE = Path.home() / ".cache" / "audience-bench" / "store-1m-seed42"
THREADS = 2  # the server's --threads and DuckDB's `SET threads`, as compare.py
WARMUP = 3
TARGET_RATIO = 0.25  # issue 18: server median <= 0.25x DuckDB's
MIX = (("count", 0.4), ("check", 0.4), ("preview", 0.2))
PREVIEW_ROWS = 20

sys.path.insert(0, str(BENCHES))
import compare  # noqa: E402  (segments, the CLI count command, duckdb install, tables)
import duckdb_query as dq  # noqa: E402  (placeholders, DuckDB views)


# ---------------------------------------------------------------------------------------------
# The store, the server, a client.


def latest_snapshot(store: Path) -> str:
    """Highest published_seq (0 when absent), then id, as the store orders snapshots
    (duckdb_query.load_snapshot takes the lexically last id instead)."""
    found = [(json.loads(m.read_text()).get("published_seq", 0), m.parent.name)
             for m in (store / "snapshots").glob("*/manifest.json") if not m.parent.name.startswith(".")]
    if not found:
        sys.exit(f"{store}: no snapshot with a manifest.json")
    return max(found)[1]


def overlay_store(store: Path, into: Path) -> Path:
    """A store in `into` linking the real store's snapshots, with the saved segments copied in."""
    root = into / "store"
    (root / "snapshots").mkdir(parents=True)
    for snap in (store / "snapshots").iterdir():
        if snap.is_dir() and not snap.name.startswith("."):
            (root / "snapshots" / snap.name).symlink_to(snap.resolve())
    (root / "segments").mkdir()
    for seg in [*compare.SAVED.glob("*.seg"), *EXPORT_SEGMENTS.glob("*.seg")]:
        shutil.copy(seg, root / "segments" / seg.name)
    return root


class Client:
    """One keep-alive connection with the bearer token (http.client reopens it on the next call
    after an error closed it)."""

    def __init__(self, port: int, token: str, timeout: float = 120):
        self.token = token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        """(status, body, seconds from sending the request to reading the last byte)."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body and json.dumps(body), headers=headers)
            r = self.conn.getresponse()
            out = r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        return r.status, out, time.perf_counter() - started

    def json(self, method: str, path: str, body: dict | None = None, ok: int = 200) -> dict:
        status, out, _ = self.call(method, path, body)
        if status != ok:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {out[:300]!r}")
        return json.loads(out)


def start_server(binary: Path, store: Path, token_file: Path, log: Path,
                 cache_memory: str) -> tuple[subprocess.Popen, int]:
    """Starts `audience serve` on a free loopback port; returns once /api/health answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(binary), "serve", "--store", str(store), "--bind", f"127.0.0.1:{port}",
           "--token-file", str(token_file), "--threads", str(THREADS),
           "--cache-memory", cache_memory]
    print(f"Server: {compare.show(cmd)}", flush=True)
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            c.request("GET", "/api/health")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        finally:
            c.close()
        time.sleep(0.1)
    stop_server(proc)
    sys.exit(f"audience serve did not answer (exit code {proc.returncode}):\n{log.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: the server drains and exits
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_mb(pid: int) -> float | None:
    try:
        m = re.search(r"^VmRSS:\s*(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) / 1024 if m else None


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1), linear between closest ranks."""
    if not values:
        return None
    v = sorted(values)
    at = q * (len(v) - 1)
    lo = int(at)
    return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (at - lo)


def fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Counts: the CLI's (the reference), the server's and DuckDB's.


def cli_count(binary: Path, store: Path, seg, at: dt.datetime | None) -> int:
    extra = ["--as-of", at.isoformat()] if at else []
    p = subprocess.run(compare.count_cmd(binary, store, seg, THREADS, extra), capture_output=True, text=True)
    n = compare.parse_int(p.stdout) if p.returncode == 0 else None
    if n is None:
        sys.exit(f"{seg.name}: audience count failed: {p.stderr.strip() or p.stdout.strip()}")
    return n


def timed(count, runs: int) -> tuple[list[float], set[int]]:
    """WARMUP calls of count(), then `runs` timed ones: milliseconds, and every count seen."""
    ms, seen = [], set()
    for i in range(WARMUP + runs):
        started = time.perf_counter()
        seen.add(count())
        if i >= WARMUP:
            ms.append((time.perf_counter() - started) * 1000)
    return ms, seen


def keystrokes(client: Client, text: str, edits: int, scope: dict) -> list[float]:
    """Milliseconds of `edits` counts of the segment with its first number changed each time
    (`within 7d` becomes 8d, 9d, ...): one condition the server has not seen, the others kept,
    as when a marketer edits a number. None when the text has no number."""
    m = re.search(r"\d+", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    if not m:
        return []
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    ms = []
    for k in range(edits):
        edited = body[:m.start()] + str(int(m.group()) + k + 1) + body[m.end():]
        started = time.perf_counter()
        status, out, _ = client.call("POST", "/api/v1/count", {"segment": edited, **scope})
        if status != 200:
            raise RuntimeError(f"HTTP {status} on an edited segment: {out[:300].decode(errors='replace')}")
        ms.append((time.perf_counter() - started) * 1000)
    return ms


def count_phase(client: Client, con, manifest: dict, binary: Path, store: Path, segs: list,
                runs: int, edits: int, at: dt.datetime | None) -> tuple[list[dict], list[str]]:
    """One row per segment, and the failures (server errors, count mismatches); everything
    evaluated at `at` when given (a backtest), else at the snapshot's as-of."""
    rows, failures = [], []
    scope = {"as_of": at.isoformat()} if at else {}
    for seg in segs:
        expected = cli_count(binary, store, seg, at)

        def server() -> int:
            status, out, _ = client.call("POST", "/api/v1/count", {"segment": seg.text, **scope})
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {out[:400].decode(errors='replace')}")
            return json.loads(out)["counts"][seg.target]

        sql = dq.substitute(seg.sql.read_text(), dq.at(manifest, at))
        try:
            started = time.perf_counter()
            first_seen = server()
            first_ms = (time.perf_counter() - started) * 1000
            (s_ms, s_seen), error = timed(server, runs), None
            s_seen.add(first_seen)
            k_ms = keystrokes(client, seg.text, edits, scope)
        except RuntimeError as e:
            (s_ms, s_seen), error, first_ms, k_ms = ([], set()), str(e), None, []
        d_ms, d_seen = timed(lambda: int(con.execute(sql).fetchall()[0][0]), runs)
        mine = [f"{seg.name}: SERVER ERROR on POST /api/v1/count: {error}"] if error else []
        mine += [f"{seg.name}: COUNT MISMATCH: {engine} {sorted(seen)}, audience count {expected}"
                 for engine, seen in (("server", s_seen), ("DuckDB", d_seen)) if seen and seen != {expected}]
        for f in mine:
            print(f[:300], file=sys.stderr, flush=True)
        failures += mine
        med, d_med = (None if error else statistics.median(s_ms)), statistics.median(d_ms)
        rows.append({"name": seg.name, "target": seg.target, "count": expected, "server_error": error,
                     "server_ms": s_ms, "duckdb_ms": d_ms, "server_median_ms": med,
                     "first_ms": first_ms, "keystroke_ms": k_ms,
                     "keystroke_median_ms": statistics.median(k_ms) if k_ms else None,
                     "server_p90_ms": pct(s_ms, 0.9), "duckdb_median_ms": d_med,
                     "ratio": None if error else med / d_med})
        print(f"  {seg.name}: server {fmt(med)} ms, DuckDB {d_med:.1f} ms", file=sys.stderr, flush=True)
    return rows, failures


def print_counts(rows: list[dict]) -> None:
    print("\n" + compare.table(
        ["segment", "target", "count", "first call (ms)", "server median (ms)", "server p90 (ms)",
         "keystroke median (ms)", "DuckDB median (ms)", "server / DuckDB", "keystroke / DuckDB"],
        [[r["name"], r["target"], f"{r['count']:,}", fmt(r["first_ms"]),
          r["server_error"][:8] if r["server_error"] else fmt(r["server_median_ms"]),
          fmt(r["server_p90_ms"]), fmt(r["keystroke_median_ms"]), fmt(r["duckdb_median_ms"]),
          fmt(r["ratio"], 2),
          fmt(r["keystroke_median_ms"] / r["duckdb_median_ms"] if r["keystroke_median_ms"] else None, 2)]
         for r in rows]))
    met = [r["name"][:2] for r in rows if r["ratio"] is not None and r["ratio"] <= TARGET_RATIO]
    missed = [r["name"][:2] for r in rows if r["name"][:2] not in met]
    print(f"\nTarget server <= {TARGET_RATIO}x DuckDB: met by {len(met)} of {len(rows)} "
          f"({', '.join(met) or 'none'}); not met: {', '.join(missed) or 'none'}")


# ---------------------------------------------------------------------------------------------
# Load.


def client_loop(port: int, token: str, segs: list, deadline: float, seed: int, out: list) -> None:
    """Sends the mix until the deadline; appends (kind, segment, status or error, seconds,
    the start of a failed answer) to out."""
    rng, client = random.Random(seed), Client(port, token)
    kinds, weights = zip(*MIX)
    while time.monotonic() < deadline:
        kind, seg = rng.choices(kinds, weights)[0], rng.choice(segs)
        body = {"segment": seg.text}
        if kind == "preview":
            body.update(target=seg.target, limit=PREVIEW_ROWS)
        started = time.perf_counter()
        try:
            status, data, s = client.call("POST", f"/api/v1/{kind}", body)
            out.append((kind, seg.name, status, s, data[:200] if status >= 300 else b""))
        except (OSError, http.client.HTTPException) as e:
            out.append((kind, seg.name, type(e).__name__, time.perf_counter() - started, str(e).encode()))
    client.conn.close()


def export_job(port: int, token: str, out: dict) -> None:
    """One export job over the API: start, poll, download every file; fills out."""
    client = Client(port, token, timeout=600)
    names = sorted(p.stem for p in EXPORT_SEGMENTS.glob("*.seg"))
    started = time.perf_counter()
    try:
        job = client.json("POST", "/api/v1/exports",
                          {"segments": names, "channel": "push", "format": "csv"}, ok=202)
        while job["status"] == "running":
            time.sleep(0.25)
            job = client.json("GET", f"/api/v1/exports/{job['id']}")
        out.update(status=job["status"], seconds=time.perf_counter() - started, rows=job["rows"],
                   files=len(job["files"]), error=job.get("error"))
        if job["status"] != "done":
            return
        down, size, rows = time.perf_counter(), 0, 0
        for f in job["files"]:
            status, data, _ = client.call("GET", f"/api/v1/exports/{job['id']}/files/{f['name']}")
            if status != 200:
                raise RuntimeError(f"download {f['name']}: HTTP {status}")
            size += len(data)
            rows += max(sum(1 for _ in csv.reader(io.StringIO(data.decode()))) - 1, 0)  # no header
        out.update(download_seconds=time.perf_counter() - down, bytes=size, downloaded_rows=rows)
        if rows != job["rows"]:
            out["error"] = f"downloaded {rows} rows, the job reported {job['rows']}"
    except Exception as e:  # noqa: BLE001  (reported, and a failure)
        out.update(status="error", error=f"{type(e).__name__}: {e}")
    finally:
        client.conn.close()


def load_phase(proc: subprocess.Popen, port: int, token: str, segs: list, seconds: float,
               clients: int) -> dict:
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            if (r := rss_mb(proc.pid)) is not None:
                samples.append(r)
            stop.wait(1)

    export: dict = {}
    results: list[list] = [[] for _ in range(clients)]
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=sample, daemon=True),
               threading.Thread(target=export_job, args=(port, token, export), daemon=True),
               *(threading.Thread(target=client_loop, args=(port, token, segs, deadline, i, results[i]),
                                  daemon=True) for i in range(clients))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads[2:]:
        t.join()
    elapsed = time.perf_counter() - started
    threads[1].join(600)
    stop.set()
    threads[0].join()
    samples.append(rss_mb(proc.pid) or 0)
    calls = [c for r in results for c in r]
    good = lambda c: isinstance(c[2], int) and 200 <= c[2] < 300  # noqa: E731
    kinds, failures = {}, {}
    for kind, _ in MIX:
        mine = [c for c in calls if c[0] == kind]
        ok = [c[3] * 1000 for c in mine if good(c)]
        kinds[kind] = {"requests": len(mine), "failed": len(mine) - len(ok), "p50_ms": pct(ok, 0.5),
                       "p99_ms": pct(ok, 0.99), "client_seconds": sum(c[3] for c in mine)}
    for c in calls:
        if not good(c):
            failures.setdefault(f"{c[0]} {c[2]}", [0, c[4].decode(errors="replace")])[0] += 1
    return {"seconds": elapsed, "clients": clients, "requests": len(calls),
            "throughput_rps": len(calls) / elapsed, "kinds": kinds,
            "failed": sum(n for n, _ in failures.values()), "failures": failures, "export": export,
            "rss_mb": {"start": samples[0], "max": max(samples), "end": samples[-1], "samples": samples},
            "calls": [[k, n, st, round(t * 1000, 2)] for k, n, st, t, _ in calls]}


def print_load(load: dict) -> None:
    print(f"\nLoad: {load['clients']} clients for {load['seconds']:.1f} s "
          f"({', '.join(f'{k} {w:.0%}' for k, w in MIX)}; previews of {PREVIEW_ROWS} rows), "
          f"one export job running\n")
    busy = sum(v["client_seconds"] for v in load["kinds"].values()) or 1
    rows = [[k, f"{v['requests']:,}", fmt(v["p50_ms"]), fmt(v["p99_ms"]), str(v["failed"]),
             f"{100 * v['client_seconds'] / busy:.0f}"] for k, v in load["kinds"].items()]
    rows.append(["all", f"{load['requests']:,}", "—", "—", str(load["failed"]), "100"])
    print(compare.table(["kind", "requests", "p50 ok (ms)", "p99 ok (ms)", "failed", "% of time"], rows))
    print(f"\nThroughput: {load['throughput_rps']:.1f} requests/s; failed: {load['failed']}")
    for key, (n, example) in load["failures"].items():
        print(f"  {key}: {n} (e.g. {example[:160]})")
    e = load["export"]
    if e.get("status") == "done" and not e.get("error"):
        print(f"Export job: done in {e['seconds']:.2f} s, {e['rows']:,} rows in {e['files']} files; "
              f"downloaded {e['bytes'] / 1e6:.1f} MB in {e['download_seconds']:.2f} s, rows match")
    else:
        print(f"Export job: FAILED: {e}")
    r = load["rss_mb"]
    print(f"Server RSS (MB, every second): start {r['start']:.0f}, max {r['max']:.0f}, end {r['end']:.0f}")


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path,
                    default=Path(os.environ.get("AUDIENCE_BENCH_STORE") or DEFAULT_STORE))
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="the audience binary")
    ap.add_argument("--runs", type=int, default=20, help="timed calls per segment and engine")
    ap.add_argument("--only", metavar="REGEX", help="regular expression on segment names")
    ap.add_argument("--load-seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--no-load", action="store_true", help="skip the load phase")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the raw figures to OUT")
    ap.add_argument("--back", type=int, default=0, metavar="DAYS",
                    help="counts DAYS before the snapshot's as-of (a backtest; the load stays at it)")
    ap.add_argument("--edits", type=int, default=5,
                    help="timed counts of the segment with its first number edited (keystrokes)")
    ap.add_argument("--cache-memory", default="256MiB",
                    help="the server's --cache-memory (0: no matched pairs kept, every count afresh)")
    args = ap.parse_args()

    compare.ensure_duckdb()
    import duckdb

    binary, store = args.bin.expanduser().resolve(), args.store.expanduser().resolve()
    if not binary.exists():
        sys.exit(f"{binary}: no such binary (pass --bin)")
    segs = compare.load_segments(re.compile(args.only) if args.only else None)
    if not segs:
        sys.exit("no segment selected")
    snap = latest_snapshot(store)
    con, manifest = dq.connect(store, snap, THREADS)
    mach, rc = compare.machine(), manifest["row_counts"]
    at = dq.as_of(manifest) - dt.timedelta(days=args.back) if args.back else None
    loadavg = lambda: " ".join(f"{x:.2f}" for x in os.getloadavg())  # noqa: E731
    print(f"Machine: {mach['nproc']} CPUs, {mach['cpu']}; load average {loadavg()} (1, 5, 15 min)")
    print(f"Store: {store}, snapshot {snap} (published_seq {manifest.get('published_seq')}), "
          f"{rc['persons']:,} persons, {rc['installations']:,} installations, {rc['events']:,} events")
    print(f"DuckDB {duckdb.__version__}; {THREADS} threads for both; {WARMUP} warm-up + {args.runs} "
          f"timed calls per segment", flush=True)
    if at:
        print(f"Counts evaluated as of {at.isoformat()} ({args.back} days before the snapshot's)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops the server
    result: dict = {"machine": mach, "duckdb": duckdb.__version__, "binary": str(binary),
                    "store": str(store), "snapshot": snap, "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        token_file = Path(tmp) / "token"
        token_file.write_text(secrets.token_hex(24))
        token_file.chmod(0o600)
        token = token_file.read_text()
        served = overlay_store(store, Path(tmp))
        proc, port = start_server(binary, served, token_file, Path(tmp) / "serve.log",
                                  args.cache_memory)
        try:
            client = Client(port, token)
            # What the page asks for when it loads, before a marketer types: the snapshot opens.
            client.json("GET", "/api/v1/snapshots")
            client.json("GET", "/api/v1/catalog")
            rss_start = rss_mb(proc.pid)
            result["segments"], failures = count_phase(client, con, manifest, binary, store, segs, args.runs,
                                                        args.edits, at)
            client.conn.close()
            result["rss_mb_counts"] = {"start": rss_start, "end": rss_mb(proc.pid)}
            print_counts(result["segments"])
            print(f"Server RSS: {fmt(rss_start, 0)} MB after start, "
                  f"{fmt(result['rss_mb_counts']['end'], 0)} MB after the counts", flush=True)
            if not args.no_load:
                result["load"] = load_phase(proc, port, token, segs, args.load_seconds, args.clients)
                print_load(result["load"])
        finally:
            stop_server(proc)
    print(f"\nLoad average at the end: {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    load = result.get("load")
    export = (load or {}).get("export", {})
    if load and (load["failed"] or export.get("status") != "done" or export.get("error")):
        failures.append("LOAD PHASE: failed requests or a failed export (the target is 0)")
    for f in failures:
        print(f[:300], file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
