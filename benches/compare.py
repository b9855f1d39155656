#!/usr/bin/env python3
"""The segment benchmark: `audience` against the same segments hand-written as SQL for DuckDB and
for DataFusion (`audience sql`), on one snapshot store.

    python3 benches/compare.py                      # the 1M-person store, release binary, 3 runs
    python3 benches/compare.py --store data/sample --runs 1 --bin target/debug/audience
    python3 benches/compare.py --only 'churn|export' --memory-limit 512MiB --json results.json
    python3 benches/compare.py --back 45            # every segment 45 days before the snapshot's as-of

Segments are benches/segments/NN_name.seg (a first line `# target: persons` selects the persons
target; the default is installations), each with NN_name.sql: hand-written SQL returning one row
holding the count, the same text for DuckDB and DataFusion, with placeholders `{as_of}`,
`{period}` and `{period_from:Nd}` filled from the snapshot's manifest (see duckdb_query.py).
`segment("name")` references resolve from benches/segments/saved. `--back N` evaluates everything
N days before the snapshot's as-of (`audience count --as-of`, `{as_of}` moved alike): a backtest,
where windows no longer end at the as-of the snapshot's activity summary was built for.

Every run is a fresh process: `audience count` and `audience sql` are timed as whole processes
(wall clock, from this script: startup, opening the snapshot, planning and execution); DuckDB runs
in a fresh Python process per run (benches/duckdb_query.py) that times only the query, not the
interpreter or the views. audience also reports its in-process time (`count --timings`: check,
plan and run, without start-up and opening the snapshot), the part comparable with DuckDB's query
time, and `audience sql --timings` the same span for the hand-written DataFusion SQL (parse, plan,
run); whole-process and in-process ratios are both printed. Every engine gets --threads (default
2). Peak RSS comes from `/usr/bin/time -v` (for DuckDB it includes the Python interpreter, about
60 MB). The three counts must be equal: a mismatch is reported loudly and the script exits
non-zero.

The export job (benches/export_job) exports 10 saved segments for the push channel as CSV, once
as one `audience export --segments DIR --out-dir DIR` job, once one `audience export` per
segment, and once as 10 DuckDB `COPY (...) TO ... (FORMAT csv)`; the row counts must agree.

Defaults: --store is $AUDIENCE_BENCH_STORE, else ~/.cache/audience-bench/store-1m-seed42, generated
(1M persons, ~100M events, seed 42, as of 2026-11-01) when missing; --bin is
target/release/audience (under $CARGO_TARGET_DIR when set), built with
`cargo build --release --features cluster` when missing; duckdb is pip-installed when it cannot
be imported. Needs Python 3.11+ and /usr/bin/time (GNU time) for peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
REPO = BENCHES.parent
SEGMENTS = BENCHES / "segments"
SAVED = SEGMENTS / "saved"
EXPORT_JOB = BENCHES / "export_job"
DUCKDB_QUERY = BENCHES / "duckdb_query.py"
DEFAULT_BIN = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "audience"
DEFAULT_STORE = Path.home() / ".cache" / "audience-bench" / "store-1m-seed42"
GENERATE = ["--persons", "1000000", "--seed", "42", "--as-of", "2026-11-01"]
THREADS = 2  # for every engine: DuckDB's `SET threads`, audience's `--threads`

sys.path.insert(0, str(BENCHES))
import duckdb_query as dq  # noqa: E402  (placeholders and manifest; imports duckdb lazily)


# ---------------------------------------------------------------------------------------------
# Processes: wall time and peak RSS.


@dataclass
class Run:
    seconds: float
    rss_mb: float | None
    returncode: int
    stdout: str
    stderr: str

    def error(self) -> str:
        """The first line of the error output (or of stdout), for reports."""
        for line in (self.stderr + "\n" + self.stdout).splitlines():
            if line.strip():
                return line.strip()
        return f"exit code {self.returncode}"


HAVE_TIME = Path("/usr/bin/time").exists()


def run(cmd: list[str], cwd: Path | None = None) -> Run:
    """Runs cmd as a fresh process; wall time measured here, peak RSS by /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-v", "-o", tf.name, *cmd] if HAVE_TIME else cmd
        started = time.perf_counter()
        p = subprocess.run(full, cwd=cwd, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        rss = None
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", Path(tf.name).read_text())
        if m:
            rss = int(m.group(1)) / 1024
    return Run(seconds, rss, p.returncode, p.stdout, p.stderr)


def show(cmd: list[str]) -> str:
    return " ".join(c if re.fullmatch(r"[\w@%+=:,./-]+", c) else repr(c) for c in cmd)


# ---------------------------------------------------------------------------------------------
# Setup: duckdb, the binary, the store.


def ensure_duckdb() -> None:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("duckdb is not installed: pip install duckdb", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "duckdb"], check=True)


def ensure_binary(binary: Path) -> None:
    if binary.exists():
        return
    if binary.resolve() != DEFAULT_BIN.resolve():
        sys.exit(f"{binary}: no such binary")
    print(
        f"{binary} is missing: building it with `cargo build --release --features cluster` "
        "(about 25 minutes cold on 2 cores)",
        file=sys.stderr,
    )
    subprocess.run(["cargo", "build", "--release", "--features", "cluster"], cwd=REPO, check=True)
    if not binary.exists():
        sys.exit(f"cargo built, but {binary} is still missing: pass --bin (or set CARGO_TARGET_DIR)")


def ensure_store(binary: Path, store: Path) -> None:
    if (store / "snapshots").is_dir():
        return
    cmd = [str(binary), "generate", "--out", str(store), *GENERATE]
    print(f"{store} is missing: generating it ({show(cmd)}; about a minute, 2 GB)", file=sys.stderr)
    store.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, check=True)


def machine() -> dict:
    cpu = "unknown CPU"
    mem_gib = None
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if m:
            cpu = m.group(1).strip()
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if m:
            mem_gib = int(m.group(1)) / 1024 / 1024
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"nproc": int(nproc or os.cpu_count() or 0), "cpu": cpu, "ram_gib": mem_gib}


# ---------------------------------------------------------------------------------------------
# The three ways of counting a segment.


@dataclass
class Segment:
    name: str
    seg: Path
    sql: Path
    text: str
    target: str


def load_segments(only: re.Pattern | None) -> list[Segment]:
    out = []
    for seg in sorted(SEGMENTS.glob("*.seg")):
        if only and not only.search(seg.stem):
            continue
        text = seg.read_text()
        m = re.match(r"\s*#\s*target:\s*(persons|installations)\b", text)
        sql = seg.with_suffix(".sql")
        if not sql.exists():
            sys.exit(f"{seg}: no {sql.name} beside it")
        out.append(Segment(seg.stem, seg, sql, text, m.group(1) if m else "installations"))
    return out


def parse_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def parse_sql_table(text: str) -> int | None:
    """The single number of `audience sql`'s output: a pretty table with one row and one column
    (or plain CSV / a bare number, should the output format change)."""
    rows = [ln for ln in text.splitlines() if ln.strip() and not re.fullmatch(r"[+\-=| ]+", ln)]
    if len(rows) == 1:  # a bare number
        return parse_int(rows[0])
    cells = [[c.strip() for c in ln.strip().strip("|").split("|" if "|" in ln else ",")] for ln in rows]
    if len(cells) != 2 or len(cells[1]) != 1:  # header + one row, one column
        return None
    return parse_int(cells[1][0])


@dataclass
class Measure:
    """One way of answering one segment over several runs."""

    counts: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # audience only: check + plan + run, without process start and opening the snapshot (what
    # DuckDB's in-process query time covers).
    engine_seconds: list[float] = field(default_factory=list)

    def add(self, r: Run, count: int | None, seconds: float | None = None) -> None:
        if r.returncode != 0 or count is None:
            self.errors.append(r.error() if r.returncode != 0 else f"unparsable output: {r.stdout[:200]!r}")
            self.counts.append(None)
            return
        self.counts.append(count)
        self.seconds.append(r.seconds if seconds is None else seconds)
        if r.rss_mb is not None:
            self.rss_mb.append(r.rss_mb)

    @property
    def count(self) -> int | None:
        seen = {c for c in self.counts if c is not None}
        return seen.pop() if len(seen) == 1 and not self.errors else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def engine_median(self) -> float | None:
        return statistics.median(self.engine_seconds) if self.engine_seconds else None

    @property
    def peak_rss(self) -> float | None:
        return max(self.rss_mb) if self.rss_mb else None

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "counts": self.counts,
            "seconds": self.seconds,
            "median_s": self.median,
            "engine_median_s": self.engine_median,
            "peak_rss_mb": self.peak_rss,
            "errors": self.errors,
        }


def count_cmd(binary: Path, store: Path, seg: Segment, threads: int, extra: list[str] = ()) -> list[str]:
    """`audience count` of one benchmark segment (stdout: the count; stderr: --timings)."""
    return [
        str(binary), "count", "--store", str(store), "--segments", str(SAVED),
        "--target", seg.target, "--threads", str(threads), "--timings", *extra, "--", seg.text,
    ]


class Bench:
    def __init__(self, binary: Path, store: Path, threads: int, back_days: int = 0):
        self.binary = binary
        self.store = store
        self.threads = threads
        self.snapshot_dir, manifest = dq.load_snapshot(store)
        self.sql_threads = ["--threads", str(threads)]
        # Every engine evaluates at `at`: the snapshot's as-of, or `back_days` before it.
        self.at = dq.as_of(manifest) - dt.timedelta(days=back_days) if back_days else None
        self.snapshot_manifest = manifest
        self.manifest = dq.at(manifest, self.at)
        self.at_args = ["--as-of", self.at.isoformat()] if self.at else []

    def audience(self, seg: Segment, m: Measure, extra: list[str] = ()) -> Run:
        r = run(count_cmd(self.binary, self.store, seg, self.threads, [*self.at_args, *extra]))
        m.add(r, parse_int(r.stdout) if r.returncode == 0 else None)
        t = re.search(r"check_ms=([\d.]+) query_ms=([\d.]+)", r.stderr)
        if r.returncode == 0 and t:
            m.engine_seconds.append((float(t.group(1)) + float(t.group(2))) / 1000)
        return r

    def datafusion_sql(self, seg: Segment, m: Measure) -> None:
        sql = dq.substitute(seg.sql.read_text(), self.manifest)
        r = run([str(self.binary), "sql", "--store", str(self.store), *self.sql_threads, "--timings",
                 "--", sql])
        m.add(r, parse_sql_table(r.stdout) if r.returncode == 0 else None)
        t = re.search(r"query_ms=([\d.]+)", r.stderr)
        if r.returncode == 0 and t:
            m.engine_seconds.append(float(t.group(1)) / 1000)

    def duckdb(self, seg: Segment, m: Measure) -> None:
        r = run([
            sys.executable, str(DUCKDB_QUERY), "--threads", str(self.threads), *self.at_args,
            "count", str(self.store), str(seg.sql),
        ])
        if r.returncode == 0:
            out = json.loads(r.stdout)
            m.add(r, out["count"], out["ms"] / 1000)
        else:
            m.add(r, None)


# ---------------------------------------------------------------------------------------------
# The export job.


def csv_rows(path: Path) -> int | None:
    if not path.exists():
        return None
    with path.open(newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def export_job(bench: Bench, runs: int) -> dict:
    seg_dir = EXPORT_JOB / "segments"
    names = sorted(p.stem for p in seg_dir.glob("*.seg"))
    sqls = [EXPORT_JOB / "duckdb" / f"{n}.sql" for n in names]
    missing = [str(s) for s in sqls if not s.exists()]
    if missing:
        sys.exit(f"export job: no DuckDB SQL for {', '.join(missing)}")
    common = ["--store", str(bench.store), "--segments", str(seg_dir), "--channel", "push",
              "--threads", str(bench.threads), *bench.at_args]
    result = {"segments": names, "job": Measure(), "one_by_one": Measure(), "duckdb": Measure()}
    rows: dict[str, dict[str, int | None]] = {n: {} for n in names}
    for _ in range(runs):
        # One job: every saved segment of the directory, one file each.
        with tempfile.TemporaryDirectory() as out:
            r = run([str(bench.binary), "export", *common, "--out-dir", out, "--format", "csv"])
            counts = {n: csv_rows(Path(out) / f"{n}.csv") for n in names}
            ok = r.returncode == 0 and None not in counts.values()
            result["job"].add(r, sum(counts.values()) if ok else None)
            for n in names:
                rows[n]["job"] = counts[n]
        # One by one: a fresh process per segment; time and memory summed / maxed.
        with tempfile.TemporaryDirectory() as out:
            total, peak, failed, counts = 0.0, 0.0, None, {}
            for n in names:
                file = Path(out) / f"{n}.csv"
                r = run([str(bench.binary), "export", *common, n, "--out", str(file)])
                total += r.seconds
                peak = max(peak, r.rss_mb or 0)
                if r.returncode != 0:
                    failed = failed or r
                counts[n] = csv_rows(file)
            agg = Run(total, peak or None, failed.returncode if failed else 0,
                      "", failed.stderr if failed else "")
            ok = not failed and None not in counts.values()
            result["one_by_one"].add(agg, sum(counts.values()) if ok else None)
            for n in names:
                rows[n]["one_by_one"] = counts[n]
        # DuckDB: the 10 COPY statements in one process, timed in-process.
        with tempfile.TemporaryDirectory() as out:
            r = run([
                sys.executable, str(DUCKDB_QUERY), "--threads", str(bench.threads), *bench.at_args,
                "copy", str(bench.store), out, *map(str, sqls),
            ])
            counts = {n: csv_rows(Path(out) / f"{n}.csv") for n in names}
            if r.returncode == 0 and None not in counts.values():
                result["duckdb"].add(r, sum(counts.values()), json.loads(r.stdout)["ms"] / 1000)
            else:
                result["duckdb"].add(r, None)
            for n in names:
                rows[n]["duckdb"] = counts[n]
    result["rows"] = rows
    result["mismatches"] = [n for n, c in rows.items() if len(set(c.values())) != 1 or None in c.values()]
    return result


# ---------------------------------------------------------------------------------------------
# Report.


def secs(s: float | None) -> str:
    return "—" if s is None else f"{s:.3f}"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}"


def mb(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    numeric = re.compile(r"[\d.,]+|—")
    right = [i > 0 and all(numeric.fullmatch(r[i]) for r in rows) for i in range(len(header))]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = lambda cells: "| " + " | ".join(  # noqa: E731
        c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)
    ) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|"
    return "\n".join([fmt(header), sep, *map(fmt, rows)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path,
                    default=Path(os.environ.get("AUDIENCE_BENCH_STORE") or DEFAULT_STORE),
                    help="snapshot store (default: $AUDIENCE_BENCH_STORE, else %(default)s)")
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN,
                    help="the audience binary (default: $CARGO_TARGET_DIR or the repository's "
                         "target/, then release/audience)")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement; medians are reported")
    ap.add_argument("--threads", type=int, default=THREADS,
                    help="threads for every engine (default: %(default)s, the issue's DuckDB setting)")
    ap.add_argument("--only", metavar="PATTERN",
                    help="regular expression on segment names (`export` selects the export job)")
    ap.add_argument("--memory-limit", metavar="SIZE",
                    help="extra pass: every segment once with `--memory-limit SIZE`")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write every measurement to OUT")
    ap.add_argument("--back", type=int, default=0, metavar="DAYS",
                    help="evaluate DAYS before the snapshot's as-of (a backtest; default: at it)")
    args = ap.parse_args()
    only = re.compile(args.only) if args.only else None

    ensure_duckdb()
    binary = args.bin if args.bin.is_absolute() else (Path.cwd() / args.bin)
    ensure_binary(binary)
    store = args.store.expanduser()
    ensure_store(binary, store)
    bench = Bench(binary, store, args.threads, args.back)
    segments = load_segments(only)
    run_export = only is None or bool(only.search("export_job"))

    mach = machine()
    m = bench.snapshot_manifest
    rc = m["row_counts"]
    ram = f"{mach['ram_gib']:.0f} GiB RAM" if mach["ram_gib"] else "RAM unknown"
    print(f"Machine: {mach['nproc']} CPUs (nproc), {mach['cpu']}, {ram}")
    print(f"Store: {store} (snapshot {m['snapshot_id']}, as of {m['as_of']}, "
          f"{rc['persons']:,} persons, {rc['installations']:,} installations, {rc['events']:,} events, "
          f"{dq.period_column(m)} partitions)")
    if bench.at:
        print(f"Evaluated as of {bench.at.isoformat()} ({args.back} days before the snapshot's)")
    print(f"Binary: {binary}; {args.runs} run(s) each, medians; {args.threads} threads for every engine\n",
          flush=True)

    failures: list[str] = []
    results = []
    for seg in segments:
        a, d, k = Measure(), Measure(), Measure()
        print(f"  {seg.name} ...", end="", file=sys.stderr, flush=True)
        for _ in range(args.runs):
            bench.audience(seg, a)
            bench.datafusion_sql(seg, d)
            bench.duckdb(seg, k)
        print(f" {a.count} / {d.count} / {k.count}", file=sys.stderr, flush=True)
        for label, x in (("audience", a), ("DataFusion SQL", d), ("DuckDB", k)):
            if x.errors:
                failures.append(f"{seg.name}: {label} failed: {x.errors[0]}")
        counts = {a.count, d.count, k.count}
        if len(counts) != 1 or None in counts:
            if not (a.errors or d.errors or k.errors):
                failures.append(f"{seg.name}: COUNT MISMATCH: audience {a.counts}, "
                                f"DataFusion SQL {d.counts}, DuckDB {k.counts}")
        results.append((seg, a, d, k))

    rows = []
    for seg, a, d, k in results:
        agree = a.count is not None and a.count == d.count == k.count
        count = f"{a.count:,}" if agree else f"MISMATCH {a.count}/{d.count}/{k.count}"
        rows.append([seg.name, seg.target, count, secs(a.median), secs(a.engine_median), secs(d.median),
                     secs(d.engine_median), secs(k.median), ratio(a.median, k.median),
                     ratio(a.engine_median, k.median), ratio(a.median, d.median),
                     ratio(a.engine_median, d.engine_median), mb(a.peak_rss), mb(k.peak_rss)])
    print(table(["segment", "target", "count", "audience (s)", "audience query (s)", "DataFusion SQL (s)",
                 "DF SQL query (s)", "DuckDB query (s)", "audience/DuckDB", "query/DuckDB",
                 "audience/DF SQL", "query/DF SQL query", "audience RSS (MB)", "DuckDB RSS (MB)"],
                rows))
    print("\naudience and DataFusion SQL: whole processes; audience query: check + plan + run inside the "
          "process (no start-up, no snapshot open); DF SQL query: SQL parse + plan + run inside "
          "`audience sql` (same span); DuckDB: the query alone, views already made.")

    export = None
    if run_export:
        print("\n  export job ...", file=sys.stderr, flush=True)
        export = export_job(bench, args.runs)
        j, o, k = export["job"], export["one_by_one"], export["duckdb"]
        for label, x in (("one job", j), ("one by one", o), ("DuckDB", k)):
            if x.errors:
                failures.append(f"export job: {label} failed: {x.errors[0]}")
        for n in export["mismatches"]:
            failures.append(f"export job: {n}: ROW COUNT MISMATCH {export['rows'][n]}")
        total = f"{j.count:,}" if j.count is not None and j.count == o.count == k.count else \
            f"MISMATCH {j.count}/{o.count}/{k.count}"
        print(f"\nExport job: {len(export['segments'])} saved segments (benches/export_job), "
              "push channel, CSV\n")
        print(table(["export", "rows", "one job (s)", "one by one (s)", "DuckDB (s)",
                     "job/one-by-one", "job/DuckDB", "job RSS (MB)", "DuckDB RSS (MB)"],
                    [["10 segments", total, secs(j.median), secs(o.median), secs(k.median),
                      ratio(j.median, o.median), ratio(j.median, k.median),
                      mb(j.peak_rss), mb(k.peak_rss)]]))

    memory = None
    if args.memory_limit:
        print(f"\nWith --memory-limit {args.memory_limit} (one run each)\n")
        memory = {}
        rows = []
        for seg, a, _, _ in results:
            x = Measure()
            r = bench.audience(seg, x, ["--memory-limit", args.memory_limit])
            if r.returncode != 0:
                status = f"error: {r.error()}"
            elif x.count != a.count:
                status = f"WRONG COUNT {x.count} (expected {a.count})"
                failures.append(f"{seg.name}: --memory-limit {args.memory_limit}: {status}")
            else:
                status = "ok"
            memory[seg.name] = {"status": status, "seconds": r.seconds, "rss_mb": r.rss_mb}
            rows.append([seg.name, status, secs(r.seconds), mb(r.rss_mb)])
        print(table(["segment", "result", "audience (s)", "peak RSS (MB)"], rows))

    if args.json:
        args.json.write_text(json.dumps({
            "machine": mach,
            "store": str(store),
            "snapshot": m["snapshot_id"],
            "as_of": m["as_of"],
            "evaluated_at": bench.manifest["as_of"],
            "row_counts": rc,
            "binary": str(binary),
            "runs": args.runs,
            "threads": args.threads,
            "segments": {
                seg.name: {"target": seg.target, "audience": a.to_json(),
                           "datafusion_sql": d.to_json(), "duckdb": k.to_json()}
                for seg, a, d, k in results
            },
            "export_job": export and {
                "segments": export["segments"], "rows": export["rows"],
                "job": export["job"].to_json(), "one_by_one": export["one_by_one"].to_json(),
                "duckdb": export["duckdb"].to_json(),
            },
            "memory_limit": memory and {"size": args.memory_limit, "segments": memory},
        }, indent=2))

    if failures:
        print("\nFAILURES:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
