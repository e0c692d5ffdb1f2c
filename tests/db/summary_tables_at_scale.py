"""Check `python -m db summary --safety` and `--reached` on a generated file against an independent recomputation.

    .venv/bin/python -m tests.db.summary_tables_at_scale                    # 100,000 sessions, SQLite
    .venv/bin/python -m tests.db.summary_tables_at_scale --sessions 20000

The file comes from the sample-data generator shaped like a clinic network (`bench.data.sample_rows`), is imported
with `python -m db import` into a fresh SQLite database, and both tables are printed by `python -m db summary`. The
expected tables are recomputed from the CSV alone by tests/analytics/independent.py (plain counting, scipy's χ² for
Garwood's limits, a hand-written Kaplan–Meier with Greenwood's variance), then compared cell by cell: counts
exactly, figures within half a unit of their last decimal. The tests do the same on the sample data; this size
takes about 40 s (generating the file alone takes 10 s), too long for the test suite. Exit status 0 when every cell
matches.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.data import sample_rows
from db.cli import main as cli
from tests.analytics import independent

SAFETY = (["technique", "side_effect", "severity", "events", "sessions", "per_100_sessions", "ci95_low",
           "ci95_high"], ["technique", "side_effect", "severity"], ["events", "sessions"], 2)
REACHED = (["technique", "threshold_pct", "session_number", "at_risk", "events", "reached", "ci95_low",
            "ci95_high"], ["technique", "threshold_pct", "session_number"], ["at_risk", "events"], 4)


def _run(*args: str) -> tuple[str, float]:
    """Return (standard output, seconds) of one `python -m db` command run in this process; fail on exit status."""
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli(list(args))
    if status != 0:
        raise SystemExit(f"python -m db {' '.join(args)} failed: {err.getvalue().strip()}")
    return out.getvalue(), time.perf_counter() - started


def check(sessions: int) -> int:
    """Build, import, summarise and compare; print the figures; return the number of mismatching cells."""
    with tempfile.TemporaryDirectory() as directory:
        path, url = Path(directory) / "sessions.csv", f"sqlite:///{directory}/bench.db"
        started = time.perf_counter()
        sample_rows(sessions).to_csv(path, index=False)
        print(f"generated {path.name} in {time.perf_counter() - started:.1f} s")
        _run("--url", url, "init")
        _, seconds = _run("--url", url, "import", str(path))
        print(f"python -m db import: {seconds:.1f} s")
        safety, safety_s = _run("--url", url, "summary", "--safety")
        reached, reached_s = _run("--url", url, "summary", "--reached")
        rows = independent.read_rows(path)
        episodes = independent.episodes_from_rows(rows)
        started = time.perf_counter()
        expected_safety = independent.safety_by_hand(rows)
        expected_reached = independent.reached_by_technique(episodes)
        recompute_s = time.perf_counter() - started
    problems = independent.csv_problems(safety, expected_safety, *SAFETY) + independent.csv_problems(
        reached, expected_reached, *REACHED)
    got_safety, got_reached = pd.read_csv(io.StringIO(safety)), pd.read_csv(io.StringIO(reached))
    print(f"{len(rows):,} sessions in {len(episodes):,} episodes of care")
    print(f"summary --safety:  {len(got_safety):4d} rows in {safety_s:.1f} s")
    print(f"summary --reached: {len(got_reached):4d} rows in {reached_s:.1f} s")
    print(f"independent recomputation: {recompute_s:.1f} s")
    anything = got_safety[(got_safety["side_effect"] == "any") & (got_safety["severity"].isin(["any", "significant"]))]
    print(anything.to_string(index=False))
    by_4 = got_reached[got_reached["session_number"] == 4]
    print(by_4.to_string(index=False))
    print(f"cells that differ from the recomputation: {len(problems)}")
    for problem in problems[:20]:
        print("  " + problem)
    return len(problems)


def main(argv: list[str] | None = None) -> int:
    """Run the check; exit status 0 when both tables match the recomputation."""
    parser = argparse.ArgumentParser(prog="python -m tests.db.summary_tables_at_scale",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions in the generated file")
    args = parser.parse_args(argv)
    return 1 if check(args.sessions) else 0


if __name__ == "__main__":
    sys.exit(main())
