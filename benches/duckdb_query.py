#!/usr/bin/env python3
"""Runs hand-written benchmark SQL with DuckDB over an `audience` snapshot's Parquet files.

    python3 benches/duckdb_query.py count STORE QUERY.sql [--threads 2] [--snapshot ID] [--as-of T]
    python3 benches/duckdb_query.py copy  STORE OUT_DIR A.sql B.sql ... [--threads 2] [--as-of T]

`count` runs one query that returns one row with one number and prints
`{"count": N, "ms": T}`; `copy` runs `COPY (<query>) TO 'OUT_DIR/<stem>.csv' (FORMAT csv, HEADER)`
for each file, one after the other, and prints `{"ms": T, "files": {stem: {"rows": N, "ms": T}}}`.
T times only the queries (not the interpreter, the import or the views), in this process.

The views are named like the tables `audience sql` registers: `persons`, `installations`,
`events` (the columns all events share, with `event` and the period column) and one
`event_<Name>` per event definition, with its time partition column (`day` or `month`, a DATE)
from the hive path. Files are the ones the snapshot's manifest.json lists.

Placeholders in the SQL text (also used by compare.py before handing SQL to `audience sql`):
  {as_of}          the snapshot's as-of time, `2026-11-01 00:00:00` (UTC), for TIMESTAMP '{as_of}'
                   (or --as-of's: a backtest at an earlier time, as `audience count --as-of`)
  {period}         the time partition column of event tables: `day` or `month`
  {period_from:Nd} DATE 'YYYY-MM-DD', the first day of the period holding as-of minus N days, so
                   `{period} >= {period_from:30d}` prunes partitions exactly like the window does

This module is imported by compare.py for `load_snapshot` and `substitute`; it imports duckdb
only when run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# The snapshot and the placeholders (no duckdb needed).


def load_snapshot(store: Path, snapshot: str | None = None) -> tuple[Path, dict]:
    """(snapshot directory, manifest) of the given or the latest snapshot of a store."""
    snaps = store / "snapshots"
    if snapshot is None:
        ids = sorted(p.name for p in snaps.iterdir() if (p / "manifest.json").is_file())
        if not ids:
            raise SystemExit(f"{store}: no snapshot with a manifest.json")
        snapshot = ids[-1]
    d = snaps / snapshot
    return d, json.loads((d / "manifest.json").read_text())


def as_of(manifest: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(manifest["as_of"].replace("Z", "+00:00")).astimezone(
        dt.timezone.utc
    )


def period_column(manifest: dict) -> str:
    return "month" if manifest.get("partitioning", "day") == "month" else "day"


def period_start(manifest: dict, t: dt.datetime) -> dt.date:
    d = t.date()
    return d.replace(day=1) if period_column(manifest) == "month" else d


_PLACEHOLDER = re.compile(r"\{(as_of|period|period_from):?(\d+d)?\}")


def at(manifest: dict, when: dt.datetime | None) -> dict:
    """The manifest with its as-of time moved to `when` (for the placeholders), if given."""
    if when is None:
        return manifest
    return {**manifest, "as_of": when.astimezone(dt.timezone.utc).isoformat()}


def substitute(sql: str, manifest: dict) -> str:
    """Fills the placeholders described in the module docstring."""
    t = as_of(manifest)

    def fill(m: re.Match) -> str:
        name, arg = m.group(1), m.group(2)
        if name == "as_of":
            text = t.strftime("%Y-%m-%d %H:%M:%S")
            return text + (f".{t.microsecond:06d}" if t.microsecond else "")
        if name == "period":
            return period_column(manifest)
        if arg is None:
            raise ValueError("{period_from:Nd} needs a number of days")
        start = period_start(manifest, t - dt.timedelta(days=int(arg[:-1])))
        return f"DATE '{start.isoformat()}'"

    out = _PLACEHOLDER.sub(fill, sql)
    left = re.search(r"\{[a-z_]+[^}]*\}", out)
    if left:
        raise ValueError(f"unknown placeholder {left.group(0)}")
    return out


# ---------------------------------------------------------------------------------------------
# DuckDB views over the manifest's files.

_DUCK_TYPES = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "version": "VARCHAR",
}


def _files(store: Path, paths: list[str]) -> str:
    return "[" + ", ".join("'" + str(store / p).replace("'", "''") + "'" for p in paths) + "]"


def create_views(con, store: Path, manifest: dict) -> None:
    period = period_column(manifest)
    hive = f"hive_partitioning = true, hive_types = {{'event': VARCHAR, '{period}': DATE}}"
    persons = f"read_parquet({_files(store, [f['path'] for f in manifest['persons']])})"
    # The persons file may also hold audience's activity summary (`<event>__…` columns): the
    # hand-written SQL works from raw events, so the view leaves those out, as if the file
    # were the attributes alone.
    prefixes = tuple(ev["name"].lower() + "__" for ev in manifest["catalog"]["events"])
    summary = [
        row[0]
        for row in con.execute(f"DESCRIBE SELECT * FROM {persons}").fetchall()
        if row[0].startswith(prefixes)
    ]
    exclude = f" EXCLUDE ({', '.join(summary)})" if summary else ""
    con.execute(f"CREATE VIEW persons AS SELECT *{exclude} FROM {persons}")
    con.execute(
        f"CREATE VIEW installations AS SELECT * FROM read_parquet("
        f"{_files(store, [f['path'] for f in manifest['installations']])})"
    )
    common = f"event_time, person_id, installation_id, event, {period}"
    parts = []
    for ev in manifest["catalog"]["events"]:
        name = ev["name"]
        paths = [f["path"] for f in manifest["events"] if f["event"] == name]
        props = [(p["column"], _DUCK_TYPES[p["type"]]) for p in ev.get("properties", [])]
        if paths:
            body = (
                f"SELECT event_time, person_id, installation_id"
                f"{''.join(', ' + c for c, _ in props)}, {period}, event "
                f"FROM read_parquet({_files(store, paths)}, {hive})"
            )
        else:  # no history for this event: an empty table of the right shape
            cols = [
                "CAST(NULL AS TIMESTAMPTZ) AS event_time",
                "CAST(NULL AS BIGINT) AS person_id",
                "CAST(NULL AS BIGINT) AS installation_id",
                *[f"CAST(NULL AS {t}) AS {c}" for c, t in props],
                f"CAST(NULL AS DATE) AS {period}",
                f"CAST('{name}' AS VARCHAR) AS event",
            ]
            body = f"SELECT {', '.join(cols)} WHERE false"
        con.execute(f'CREATE VIEW "event_{name}" AS {body}')
        parts.append(f'SELECT {common} FROM "event_{name}"')
    con.execute("CREATE VIEW events AS " + " UNION ALL ".join(parts))


def connect(store: Path, snapshot: str | None, threads: int):
    import duckdb

    _, manifest = load_snapshot(store, snapshot)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    create_views(con, store, manifest)
    return con, manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--snapshot")
    ap.add_argument("--as-of", type=dt.datetime.fromisoformat,
                    help="the time {as_of} stands for (default: the snapshot's)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("count")
    c.add_argument("store", type=Path)
    c.add_argument("sql", type=Path)
    p = sub.add_parser("copy")
    p.add_argument("store", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("sql", type=Path, nargs="+")
    args = ap.parse_args()

    con, manifest = connect(args.store, args.snapshot, args.threads)
    manifest = at(manifest, args.as_of)
    if args.cmd == "count":
        sql = substitute(args.sql.read_text(), manifest)
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        ms = (time.perf_counter() - started) * 1000
        if len(rows) != 1 or len(rows[0]) != 1:
            print(f"{args.sql}: expected one row with one column, got {rows[:3]}", file=sys.stderr)
            return 2
        print(json.dumps({"count": int(rows[0][0]), "ms": ms}))
        return 0

    files = {}
    total = 0.0
    for path in args.sql:
        query = substitute(path.read_text(), manifest).strip().rstrip(";")
        out = (args.out_dir / f"{path.stem}.csv").resolve()
        started = time.perf_counter()
        res = con.execute(f"COPY ({query}) TO '{out}' (FORMAT csv, HEADER)").fetchall()
        ms = (time.perf_counter() - started) * 1000
        total += ms
        files[path.stem] = {"rows": int(res[0][0]) if res else None, "ms": ms}
    print(json.dumps({"ms": total, "files": files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
