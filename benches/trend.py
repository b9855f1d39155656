#!/usr/bin/env python3
"""The trend benchmark: a 30-point daily `audience trend` against one `audience count` of the same
segment at the last point, and against the naive loop (one `count --as-of` per point).

    python3 benches/trend.py                                   # 1M store, release binary, 5 runs
    python3 benches/trend.py --only '04|17' --runs 3 --points 30
    python3 benches/trend.py --store data/sample --bin target/debug/audience --runs 1

Every run is a fresh process timed as a whole (wall clock: start-up, opening the snapshot,
planning, execution), as in benches/compare.py. The trend's last point and the single count are
the same evaluation, so their counts must be equal, and every point of the trend must equal the
loop's count for that point: a mismatch exits non-zero. The loop is timed once per segment (it is
the 30x baseline the trend is meant to replace); trend and count take the median of --runs.

Defaults: --store is $AUDIENCE_BENCH_STORE, else ~/.cache/audience-bench/store-1m-seed42; --bin is
target/release/audience (under $CARGO_TARGET_DIR when set); --at is the snapshot's as-of.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
REPO = BENCHES.parent
SEGMENTS = BENCHES / "segments"
DEFAULT_BIN = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "audience"
DEFAULT_STORE = Path(
    os.environ.get("AUDIENCE_BENCH_STORE")
    or Path.home() / ".cache" / "audience-bench" / "store-1m-seed42"
)


def run(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
    return elapsed, out.stdout


def target_of(seg: Path) -> str:
    first = seg.read_text().splitlines()[0] if seg.read_text() else ""
    return "persons" if re.match(r"#\s*target:\s*persons", first) else "installations"


def snapshot_as_of(bin_: Path, store: Path) -> datetime:
    _, out = run([str(bin_), "info", "--store", str(store), "--format", "json"])
    return datetime.fromisoformat(json.loads(out)["as_of"].replace("Z", "+00:00"))


def stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=DEFAULT_STORE)
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="", help="regex on segment file names")
    ap.add_argument("--at", help="the last point (default: the snapshot's as-of)")
    args = ap.parse_args()

    at = datetime.fromisoformat(args.at.replace("Z", "+00:00")) if args.at else snapshot_as_of(args.bin, args.store)
    first = at - timedelta(days=args.points - 1)
    common = ["--store", str(args.store), "--threads", str(args.threads),
              "--segments", str(Path(__file__).resolve().parent / "segments" / "saved")]
    segs = sorted(p for p in SEGMENTS.glob("*.seg") if re.search(args.only, p.name))
    if not segs:
        sys.exit(f"no segment matches {args.only!r}")

    print(f"store {args.store}, {args.points} daily points {stamp(first)} .. {stamp(at)}, "
          f"{args.threads} threads, medians of {args.runs}")
    print(f"{'segment':40} {'count s':>8} {'trend s':>8} {'loop s':>8} {'trend/count':>11} {'loop/count':>10}")
    failed = False
    for seg in segs:
        target = ["--target", target_of(seg)]
        count_cmd = [str(args.bin), "count", f"@{seg}", "--as-of", stamp(at), *target, *common]
        trend_cmd = [str(args.bin), "trend", f"@{seg}", "--from", stamp(first), "--to", stamp(at),
                     "--format", "csv", *target, *common]
        counts, trends = [], []
        count_out = trend_out = ""
        for _ in range(args.runs):
            t, count_out = run(count_cmd)
            counts.append(t)
            t, trend_out = run(trend_cmd)
            trends.append(t)
        points = list(csv.DictReader(io.StringIO(trend_out)))
        loop_s = 0.0
        for p in points:
            t, out = run([str(args.bin), "count", f"@{seg}", "--as-of", p["as_of"], *target, *common])
            loop_s += t
            if out.strip() != p["count"]:
                print(f"  MISMATCH {seg.name} at {p['as_of']}: trend {p['count']}, count {out.strip()}")
                failed = True
        if len(points) != args.points or points[-1]["count"] != count_out.strip():
            print(f"  MISMATCH {seg.name}: {len(points)} points, last {points[-1]['count'] if points else None}, "
                  f"count {count_out.strip()}")
            failed = True
        c, tr = statistics.median(counts), statistics.median(trends)
        print(f"{seg.stem:40} {c:8.2f} {tr:8.2f} {loop_s:8.2f} {tr / c:11.2f} {loop_s / c:10.2f}")
    if failed:
        sys.exit("counts differ")


if __name__ == "__main__":
    main()
