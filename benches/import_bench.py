#!/usr/bin/env python3
"""The import benchmark (issue 17): `audience import` of Segment-spec JSON lines against DuckDB
loading the same files into Parquet, same machine, same run, then an incremental import of the
last day.

    python3 benches/import_bench.py                       # 100K persons, 365 days
    python3 benches/import_bench.py --persons 1000000     # the 1M world (see benches/README.md)

The world is `audience generate --persons N --days D --seed 42 --as-of 2026-08-01T06:00:00Z
--emit segment-jsonl` (kept under ~/.cache/audience-bench/import-<N>-<D>/ between runs). Then:

1. full: every day but the last, into a fresh store (`audience import --as-of <the as-of>`,
   --threads 2), timed from start to exit, peak RSS from the child's rusage;
2. DuckDB 2.0 (2 threads): `COPY (SELECT <the fields the import reads, flattened> FROM
   read_json(<the same files>)) TO 'x.parquet'`, timed the same way (in-process, so its peak RSS
   is this script's);
3. incremental: the last day's file into the store of step 1.

They alternate --runs times (fresh stores each run); medians are reported, with lines/s and
compressed MB/s, and the ratio import / DuckDB.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = "2026-08-01T06:00:00Z"


def binary(args) -> str:
    if args.bin:
        return args.bin
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/audience-target"))
    return str(Path(target) / "release/audience")


def world(args, bin_: str) -> Path:
    root = Path.home() / f".cache/audience-bench/import-{args.persons}-{args.days}"
    done = root / ".done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        t = time.monotonic()
        subprocess.run(
            [bin_, "generate", "--persons", str(args.persons), "--days", str(args.days),
             "--seed", "42", "--as-of", AS_OF, "--out", str(root / "store"),
             "--emit", "segment-jsonl", "--emit-dir", str(root / "src")],
            check=True, env={**os.environ, "AUDIENCE_PROGRESS": "0"})
        print(f"generated and emitted in {time.monotonic() - t:.1f}s", file=sys.stderr)
        done.touch()
    return root


def lines_of(files: list[str]) -> int:
    import gzip
    n = 0
    for f in files:
        with gzip.open(f, "rb") as z:
            for _ in z:
                n += 1
    return n


def run_import(bin_: str, store: Path, sources: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one import."""
    t = time.monotonic()
    proc = subprocess.Popen(
        [bin_, "import", "--store", str(store), "--as-of", AS_OF, "--threads", "2", *sources],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "AUDIENCE_PROGRESS": "0"})
    _, err = proc.communicate()
    took = time.monotonic() - t
    if proc.returncode != 0:
        sys.exit(f"import failed ({proc.returncode}):\n{err.decode()}")
    # os.wait4 would give this child's rusage alone; Popen reaps it, so use the children's
    # maximum, which only grows: the first run sets it, so report per run via a fresh process.
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return took, rss


# Objects read as JSON and flattened by path: the calls' fields differ from line to line (an
# inferred struct schema fails on the first field a sample did not see).
DUCK_SQL = """
COPY (
  SELECT j->>'type' AS type, j->>'event' AS event, j->>'messageId' AS message_id,
         j->>'anonymousId' AS anonymous_id, j->>'userId' AS user_id,
         coalesce(j->>'timestamp', j->>'originalTimestamp')::TIMESTAMPTZ AS ts,
         j->>'$.context.device.id' AS device_id, j->>'$.context.device.token' AS device_token,
         j->>'$.context.device.manufacturer' AS manufacturer,
         j->>'$.context.device.model' AS model, j->>'$.context.device.type' AS device_type,
         j->>'$.context.os.name' AS os_name, j->>'$.context.os.version' AS os_version,
         j->>'$.context.app.version' AS app_version, j->>'$.context.locale' AS locale,
         j->'$.context.installation' AS installation, j->'traits' AS traits,
         j->'properties' AS properties, j->>'previousId' AS previous_id
  FROM (SELECT json AS j FROM read_ndjson_objects({files}))
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
"""


def run_duckdb(files: list[str], out: Path) -> float:
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads = 2")
    t = time.monotonic()
    con.execute(DUCK_SQL.format(files="[" + ", ".join(f"'{f}'" for f in files) + "]",
                                out=str(out)))
    took = time.monotonic() - t
    con.close()
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=100_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--bin")
    args = p.parse_args()
    bin_ = binary(args)
    root = world(args, bin_)
    files = sorted(glob.glob(str(root / "src/segment/events-*.jsonl.gz")))
    if len(files) < 2:
        sys.exit("no emitted files")
    bulk, last = files[:-1], files[-1]
    bulk_bytes = sum(os.path.getsize(f) for f in bulk)
    bulk_lines, last_lines = lines_of(bulk), lines_of([last])
    print(f"{len(bulk)} files, {bulk_lines:,} lines, {bulk_bytes / 2**20:.0f} MiB gzipped; "
          f"last day {last_lines:,} lines", file=sys.stderr)

    full, duck, inc, rss = [], [], [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            store = Path(tmp) / "store"
            # A fresh interpreter per import, so the children's peak RSS is this import's.
            t, r = measure_in_child(bin_, store, bulk)
            full.append(t)
            rss.append(r)
            duck.append(run_duckdb(bulk, Path(tmp) / "duck.parquet"))
            inc.append(measure_in_child(bin_, store, [last])[0])
        print(f"run {i + 1}: import {full[-1]:.1f}s ({rss[-1]:.0f} MiB), duckdb {duck[-1]:.1f}s, "
              f"incremental {inc[-1]:.2f}s", file=sys.stderr)
    f, d, n = statistics.median(full), statistics.median(duck), statistics.median(inc)
    print(f"| persons | lines | import s | lines/s | MB/s | peak RSS MiB | DuckDB s | import/DuckDB "
          f"| incremental day ({last_lines:,} lines) s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.persons:,} | {bulk_lines:,} | {f:.1f} | {bulk_lines / f:,.0f} | "
          f"{bulk_bytes / 1e6 / f:.1f} | {max(rss):.0f} | {d:.1f} | {f / d:.2f}x | {n:.2f} |")


def measure_in_child(bin_: str, store: Path, sources: list[str]) -> tuple[float, float]:
    code = ("import sys, json; sys.path.insert(0, %r); import import_bench as b; "
            "print(json.dumps(b.run_import(%r, __import__('pathlib').Path(%r), %r)))"
            % (str(Path(__file__).parent), bin_, str(store), sources))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    import json
    took, rss = json.loads(out.stdout)
    return took, rss


if __name__ == "__main__":
    main()
