"""Import rate of issue 5: a 100,000-row interchange file imported into a fresh SQLite database.

    .venv/bin/python -m bench.import_rate [--rows 100000] [--url sqlite:///…]

Builds the file with `sample_data.generate` (enough patients for the rows wanted, cut to exactly that many), writes
it as CSV, then times the three steps of `python -m db import` separately: reading the file, validating every
row, and writing them all in one transaction (the target is 20,000 rows/s in total on SQLite). A second import
of the same file (every row unchanged) is timed too, since re-imports are how clinics correct their files.

Measured on this shared 2-core machine, first import (figures and where the time goes: bench/RESULTS.md):
    53c01bb, pydantic per row, ORM audit rows:            6,300-7,200 rows/s
    7efddaf, columns validated once, bulk column inserts: 15,401-23,519 rows/s (median 19,712)
    56557ba, CHECKs without IN lists, multi-row inserts,
             collector paused while writing:              31,378-34,352 rows/s (median 33,960)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from db import interchange
from db.access import Actor
from db.engine import make_engine, migrate, write_session
from db.models import TreatmentSession
from sample_data.generate import generate

ROWS_PER_PATIENT = 5.0  # about what generate() gives; more patients are drawn when it falls short
TARGET_ROWS_PER_S = 20_000


def build_file(rows: int, path: Path) -> Path:
    """Write an interchange CSV of exactly `rows` generated sessions to `path`."""
    patients = math.ceil(rows / ROWS_PER_PATIENT)
    table = generate(patients=patients)
    while len(table) < rows:
        patients = math.ceil(patients * rows / len(table) * 1.02)
        table = generate(patients=patients)
    table.iloc[:rows].to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return path


def timed_import(url: str, path: Path, actor: Actor) -> dict[str, float]:
    """Import the file as `python -m db import` does; return the seconds each step took and what it did."""
    started, cpu_started = time.perf_counter(), time.process_time()
    table = interchange.read_table(path)
    read = time.perf_counter()
    entries = interchange.validate_rows(table)
    validated, cpu_validated = time.perf_counter(), time.process_time()
    engine = make_engine(url)
    try:
        with write_session(engine) as session:
            result = interchange.import_sessions(session, actor=actor, entries=entries, source=path.name)
        written, cpu_written = time.perf_counter(), time.process_time()
        with Session(engine) as session:
            stored = session.execute(select(func.count()).select_from(TreatmentSession)).scalar_one()
    finally:
        engine.dispose()
    return {"read": read - started, "validate": validated - read, "write": written - validated,
            "total": written - started, "stored": stored, "summary": result.summary(),
            "cpu_validate": cpu_validated - cpu_started, "cpu_write": cpu_written - cpu_validated,
            "cpu_total": cpu_written - cpu_started}


def report(label: str, rows: int, t: dict) -> str:
    """Return one result as lines of rows per second."""
    return "\n".join([
        f"{label}: {t['summary']} ({t['stored']} sessions stored)",
        f"  read      {t['read']:7.2f} s  {rows / t['read']:>10,.0f} rows/s",
        f"  validate  {t['validate']:7.2f} s  {rows / t['validate']:>10,.0f} rows/s",
        f"  write     {t['write']:7.2f} s  {rows / t['write']:>10,.0f} rows/s",
        f"  total     {t['total']:7.2f} s  {rows / t['total']:>10,.0f} rows/s",
        # CPU time of this process: what the import costs when it does not share the machine's two cores.
        f"  CPU time: read+validate {t['cpu_validate']:.2f} s, write {t['cpu_write']:.2f} s, "
        f"total {t['cpu_total']:.2f} s = {rows / t['cpu_total']:,.0f} rows per CPU-second",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when the first import reaches the target rate (SQLite) or runs elsewhere, else 1."""
    parser = argparse.ArgumentParser(prog="python -m bench.import_rate", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--url", help="database URL to import into (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    actor = Actor(id=None, username="bench", role="admin")
    with tempfile.TemporaryDirectory() as directory:
        path = build_file(args.rows, Path(directory) / f"sessions_{args.rows}.csv")
        url = args.url or f"sqlite:///{Path(directory) / 'bench.db'}"
        migrate(url)
        first = timed_import(url, path, actor)
        again = timed_import(url, path, actor)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    backend = url.split(":", 1)[0]
    print(f"import of {args.rows:,} rows into {backend} (load average {load:.2f} on {os.cpu_count()} cores)")
    print(report("first import", args.rows, first))
    print(report("same file again", args.rows, again))
    rate = args.rows / first["total"]
    if backend != "sqlite":
        print(f"{rate:,.0f} rows/s in total (the target of {TARGET_ROWS_PER_S:,} rows/s is SQLite's)")
        return 0
    verdict = "meets" if rate >= TARGET_ROWS_PER_S else "misses"
    print(f"{rate:,.0f} rows/s in total: {verdict} the target of {TARGET_ROWS_PER_S:,} rows/s")
    return 0 if rate >= TARGET_ROWS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
