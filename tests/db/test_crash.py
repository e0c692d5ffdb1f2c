"""Crash safety (issue 6): an import killed with SIGKILL at any moment leaves a sound database, all or nothing.

An unkilled `python -m db import FILE` gives the whole import. Then 20 imports of the same file into empty copies
are killed with SIGKILL at moments spread over the time an import takes; after each kill the database must pass
SQLite's integrity check and hold either the whole import or none of it.

Starting Python and importing the command's libraries takes longer than the import writes, so kills timed from
the start of `python -m db` would mostly land before the database is even opened, and 20 of them would take
minutes. The killed imports are therefore forked from one process that has imported `db.cli` already; each fork
runs `db.cli.main(["--url", URL, "import", FILE])`, exactly what `python -m db import FILE` runs, and its parent
kills it by its own process id.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sample_data.generate import generate

REPO_ROOT = Path(__file__).resolve().parents[2]
TRIALS = 20
SPREAD = 1.2
PATIENTS = 500  # about 2,400 sessions: a few thousand rows
SEED = 20261124
TABLES = ("patients", "episodes", "users", "sessions", "side_effects", "audit_log")

# Reads "URL<TAB>FILE<TAB>SECONDS" lines; forks an import of FILE into URL, kills it with SIGKILL after SECONDS
# unless it finished first, and answers "finished|killed ELAPSED". Being the parent, it alone reaps the child, so
# the process id it kills cannot belong to anything else.
FORKING_IMPORTER = r"""
import os, signal, sys, time
from db.cli import main

print("ready", flush=True)
for line in sys.stdin:
    url, path, seconds = line.rstrip("\n").split("\t")
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        os._exit(main(["--url", url, "import", path]))
    deadline = started + float(seconds)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            outcome = "finished" if os.waitstatus_to_exitcode(status) == 0 else "failed"
            break
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            outcome = "killed"
            break
        time.sleep(0.001)
    print(outcome, time.monotonic() - started, flush=True)
"""


def counts(path: Path) -> dict[str, int]:
    """Return the rows in each table, read with plain sqlite3 (which first recovers from the write-ahead log)."""
    connection = sqlite3.connect(path)
    try:
        return {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        connection.close()


def integrity(path: Path) -> tuple[list, list]:
    """Return SQLite's integrity check and foreign key check of the file."""
    connection = sqlite3.connect(path)
    try:
        return (connection.execute("PRAGMA integrity_check").fetchall(),
                connection.execute("PRAGMA foreign_key_check").fetchall())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def import_file(tmp_path_factory) -> Path:
    """Return a CSV of a few thousand generated sessions, all in the past."""
    today = date.today()
    month = today.year * 12 + today.month - 1 - 20  # 18 months of sessions ending before today
    rows = generate(seed=SEED, patients=PATIENTS, start=date(month // 12, month % 12 + 1, 1))
    path = tmp_path_factory.mktemp("crash") / "sessions.csv"
    rows.to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.fixture
def importer() -> Iterator[subprocess.Popen]:
    """Yield a process that forks imports on request and kills them when told (FORKING_IMPORTER)."""
    process = subprocess.Popen(
        [sys.executable, "-c", FORKING_IMPORTER], cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready", "the forking importer did not start"
        yield process
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def run_import(importer: subprocess.Popen, path: Path, csv: Path, kill_after: float) -> tuple[str, float]:
    """Import `csv` into `path` in a forked child killed after `kill_after` seconds; return (outcome, seconds)."""
    importer.stdin.write(f"sqlite:///{path}\t{csv}\t{kill_after}\n")
    importer.stdin.flush()
    outcome, seconds = importer.stdout.readline().split()
    return outcome, float(seconds)


def test_an_import_killed_at_any_moment_leaves_a_sound_database_with_all_of_it_or_none(
    sqlite_template, import_file, importer, tmp_path
):
    whole = tmp_path / "whole.db"
    shutil.copy(sqlite_template, whole)
    subprocess.run([sys.executable, "-m", "db", "--url", f"sqlite:///{whole}", "import", str(import_file)],
                   cwd=REPO_ROOT, check=True, capture_output=True)
    complete, empty = counts(whole), counts(sqlite_template)
    assert complete["sessions"] > 1000 and empty["sessions"] == 0
    unkilled = tmp_path / "unkilled.db"
    shutil.copy(sqlite_template, unkilled)
    outcome, duration = run_import(importer, unkilled, import_file, kill_after=600)
    assert outcome == "finished" and counts(unkilled) == complete

    rng = random.Random(SEED)
    outcomes = []
    for trial in range(TRIALS):
        path = tmp_path / f"trial{trial}.db"
        shutil.copy(sqlite_template, path)
        # One kill in each twentieth of the import's duration, stretched by a fifth so that the last few usually
        # land after the commit, however the machine's load sways.
        kill_after = SPREAD * duration * (trial + rng.random()) / TRIALS
        outcome, _ = run_import(importer, path, import_file, kill_after)
        checked, broken_keys = integrity(path)
        assert checked == [("ok",)], f"trial {trial}, killed after {kill_after:.3f} s: {checked}"
        assert broken_keys == [], f"trial {trial}: foreign keys broken: {broken_keys}"
        found = counts(path)
        assert found in (empty, complete), (
            f"trial {trial}, killed after {kill_after:.3f} s of {duration:.3f} s, holds part of the import: "
            f"{found} (none: {empty}, all: {complete})"
        )
        outcomes.append(f"{outcome}: {'all' if found == complete else 'none'}")
    assert any(o.startswith("killed") for o in outcomes), f"no import was killed before it finished: {outcomes}"
