"""The benchmark's databases: a clinic network's data from the sample-data generator, written by `python -m db import`.

The data have the shape of issue 15 at every size: 60 clinicians over 25 months, episodes of care of 2–8 sessions,
about 1.15 episodes per patient, 10 conditions, and every significant side effect left unreviewed (about one per
600 sessions: some 1,700 alerts at a million sessions). A database is built as a clinic would build it: an empty
database at the current schema, one interchange file imported with `python -m db import` (so numbering, the yes/no
answers and side effects are the import's own work), and the admin account added by `db.accounts`.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text

from bench.whole_process import BenchFailed, Measured, run_module
from db import accounts
from db.access import Actor
from db.csv_format import MAX_ROWS
from db.engine import make_engine, migrate, write_session
from sample_data.generate import NETWORK, SEED, generate
from scripts.throwaway_postgres import PostgresServer

SESSIONS_PER_PATIENT = 6.0  # what the generator gives with NETWORK: 5.2 sessions per episode, 1.15 episodes
LOGIN = ("admin", "bench-admin-password")  # the account the benchmark's pages log in as: it has every page
PICKED_AMONG = 200  # the patient page shows the patient with the most sessions among the first ids


def data_start(today: date | None = None) -> date:
    """Return the first day of the data: NETWORK's months then two more end before `today`, so none is ahead."""
    today = today or date.today()
    month = today.year * 12 + today.month - 1 - NETWORK["months"] - 2
    return date(month // 12, month % 12 + 1, 1)


def sample_rows(sessions: int, seed: int = SEED) -> pd.DataFrame:
    """Return generated interchange rows: every session of the patients among the first `sessions` rows."""
    patients = math.ceil(sessions / SESSIONS_PER_PATIENT * 1.05) + 20
    frame = generate(seed=seed, patients=patients, start=data_start(), **NETWORK)
    if len(frame) < sessions:
        raise BenchFailed(f"the generator gave {len(frame)} sessions, fewer than {sessions}")
    wanted = frame["patient_id"].iloc[:sessions].unique()
    return frame[frame["patient_id"].isin(wanted)].reset_index(drop=True)


def interchange_file(directory: Path, sessions: int) -> Path:
    """Return the interchange file of about `sessions` sessions in `directory`, writing it unless it is there."""
    path = directory / f"sessions_{sessions}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        sample_rows(sessions).to_csv(partial, index=False, lineterminator="\n")
        partial.rename(path)
    return path


def parts(path: Path, rows: int = MAX_ROWS) -> list[Path]:
    """Return the interchange file `path` as files of at most `rows` sessions, cut between patients (one import
    takes at most MAX_ROWS, as a clinic importing a network's history would split it); [path] when it fits."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if len(frame) <= rows:
        return [path]
    firsts = frame.drop_duplicates("patient_id").index.to_list() + [len(frame)]
    cuts, start = [], 0
    for first, following in zip(firsts, firsts[1:], strict=False):
        if following - start > rows:
            cuts.append((start, first))
            start = first
    cuts.append((start, len(frame)))
    written = []
    for number, (begin, end) in enumerate(cuts, start=1):
        part = path.with_name(f"{path.stem}_part{number}.csv")
        if not part.exists():
            frame.iloc[begin:end].to_csv(part, index=False, lineterminator="\n")
        written.append(part)
    return written


def import_file(url: str, path: Path) -> Measured:
    """Create the schema, then import the interchange file with one `python -m db import` of its parts (at most
    MAX_ROWS sessions each, one transaction each); return what that process took."""
    migrate(url)
    return run_module("db", ["--url", url, "import", *map(str, parts(path))])


def add_admin(url: str) -> None:
    """Add the admin account the benchmark's pages log in as, as `python -m db users add` does."""
    engine = make_engine(url)
    try:
        with write_session(engine) as session:
            accounts.add_user(session, actor=Actor.command_line(), username=LOGIN[0], role="admin", password=LOGIN[1])
    finally:
        engine.dispose()


def data_shape(url: str) -> dict[str, int]:
    """Return what the database holds: sessions, episodes, patients, clinicians, months, conditions, alerts."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            def one(sql: str):
                return connection.execute(text(sql)).one()

            sessions, clinicians, first, last = one(
                "SELECT count(*), count(DISTINCT clinician_id), min(session_date), max(session_date) "
                "FROM sessions WHERE deleted_at IS NULL")
            episodes, conditions = one("SELECT count(*), count(DISTINCT condition) FROM episodes")
            first, last = date.fromisoformat(str(first)), date.fromisoformat(str(last))
            return {
                "sessions": sessions, "episodes": episodes, "patients": one("SELECT count(*) FROM patients")[0],
                "clinicians": clinicians, "months": (last.year - first.year) * 12 + last.month - first.month + 1,
                "conditions": conditions,
                "unreviewed alerts": one("SELECT count(*) FROM side_effects WHERE reviewed_at IS NULL "
                                         "AND severity IN ('significant', 'serious')")[0],
            }
    finally:
        engine.dispose()


def patient_to_show(url: str) -> str:
    """Return the id of the patient the patient page is timed on: the most sessions among the first ids."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(
                "SELECT p.pseudonym FROM patients p JOIN episodes e ON e.patient_id = p.id "
                "JOIN sessions s ON s.episode_id = e.id "
                f"WHERE p.id <= {PICKED_AMONG} AND s.deleted_at IS NULL "
                "GROUP BY p.id, p.pseudonym ORDER BY count(*) DESC, p.id LIMIT 1"
            )).scalar_one()
    finally:
        engine.dispose()


class Backend:
    """Where the benchmark's databases live: SQLite files in a directory, or databases on a throwaway PostgreSQL."""

    def __init__(self, name: str, directory: Path):
        self.name, self.directory = name, directory
        self.server: PostgresServer | None = None
        if name == "postgresql":
            self.server = PostgresServer()
            self.server.start()

    def url(self, name: str) -> str:
        """Return the URL of database `name` (which may not exist yet)."""
        if self.server is None:
            return f"sqlite:///{self.directory / name}.db"
        return self.server.url(name)

    def exists(self, name: str) -> bool:
        """Return whether a complete database `name` exists."""
        if self.server is None:
            return (self.directory / f"{name}.db").exists()
        with self._admin() as connection:
            found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            return found is not None

    def create_empty(self, name: str) -> str:
        """Create an empty database `name` (dropping any half-built one) and return its URL."""
        self.drop(name)
        if self.server is not None:
            with self._admin() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
        return self.url(name)

    def rename(self, old: str, new: str) -> None:
        """Rename database `old` to `new` (a build becomes visible only once complete)."""
        if self.server is None:
            (self.directory / f"{old}.db").rename(self.directory / f"{new}.db")
            return
        with self._admin() as connection:
            connection.execute(text(f"ALTER DATABASE {old} RENAME TO {new}"))

    def copy(self, name: str, to: str) -> str:
        """Copy database `name` to a new database `to` and return its URL."""
        self.drop(to)
        if self.server is None:
            shutil.copy(self.directory / f"{name}.db", self.directory / f"{to}.db")
            return self.url(to)
        with self._admin() as connection:
            connection.execute(text(f"CREATE DATABASE {to} TEMPLATE {name}"))
        return self.url(to)

    def drop(self, name: str) -> None:
        """Delete database `name`, if it is there."""
        if self.server is None:
            for path in self.directory.glob(f"{name}.db*"):
                path.unlink()
            return
        with self._admin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def finish_build(self, url: str) -> None:
        """Make a freshly imported database ready to read: checkpoint SQLite's log, VACUUM ANALYZE PostgreSQL."""
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                if self.server is None:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                else:  # what autovacuum would do soon after a big import
                    connection.execute(text("VACUUM ANALYZE"))
        finally:
            engine.dispose()

    def version(self) -> str:
        """Return the database's name and version."""
        if self.server is None:
            return f"SQLite {sqlite3.sqlite_version}"
        with self._admin() as connection:
            return "PostgreSQL " + connection.execute(text("SHOW server_version")).scalar_one().split()[0]

    def close(self) -> None:
        """Stop the PostgreSQL server, if one was started."""
        if self.server is not None:
            self.server.stop()

    @contextmanager
    def _admin(self) -> Iterator:
        assert self.server is not None
        engine = create_engine(self.server.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


def database_name(sessions: int) -> str:
    """Return the name of the benchmark's database of `sessions` sessions."""
    return f"needle_bench_{sessions}"


def build_database(backend: Backend, sessions: int, path: Path) -> tuple[str, Measured | None]:
    """Build (or reuse) the database of the interchange file `path`; return its URL and what the import took (None:
    reused)."""
    name = database_name(sessions)
    if backend.exists(name):
        return backend.url(name), None
    partial = f"{name}_partial"
    url = backend.create_empty(partial)
    imported = import_file(url, path)
    add_admin(url)
    backend.finish_build(url)
    backend.rename(partial, name)
    return backend.url(name), imported


def import_into_scratch(backend: Backend, sessions: int, path: Path) -> Measured:
    """Import the interchange file `path` into an empty scratch database, then drop it; return what the import took."""
    name = f"{database_name(sessions)}_import"
    try:
        return import_file(backend.create_empty(name), path)
    finally:
        backend.drop(name)
