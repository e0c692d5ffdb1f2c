"""The database engine, built from DATABASE_URL, and the migrations that shape it.

The database URL's checks are db/urls.py's, exported here too: `python -m db` checks a URL without loading SQLModel.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

import db.report_models  # noqa: F401  (registers the patient-reported tables on SQLModel.metadata, issue #17)
from db import roles, rollups
from db.urls import (  # noqa: F401  (db.engine's names, as before the URL's checks moved to db.urls)
    DEFAULT_URL,
    DRIVERS,
    SQLITE_BUSY_TIMEOUT_MS,
    URL_EXAMPLES,
    NoDatabase,
    UnusableDatabaseURL,
    database_url,
    engine_url,
    require_database,
    shown_url,
)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_LOCK_KEY = 4_207_311  # any fixed number: the PostgreSQL advisory lock that serialises write units of work
# Per app process (each Streamlit replica): enough for the sessions running at once, and with a few replicas well
# inside PostgreSQL's default max_connections of 100. Connections are recycled before proxies or firewalls drop them.
POSTGRES_POOL = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30, "pool_recycle": 1800, "pool_pre_ping": True}
# PostgreSQL errors after which the whole unit of work can simply run again: lock_timeout, serialization failure,
# deadlock.
RETRYABLE_SQLSTATES = {"55P03", "40001", "40P01"}


BUSY_MESSAGE = "the database is busy with other changes: nothing was saved; please try again"


class DatabaseBusy(TimeoutError):
    """Raised when a write waited too long for other writers; nothing was written, and trying again is safe."""


def make_engine(url: str | None = None, *, foreign_keys: bool = True) -> Engine:
    """Return an engine for `url`, with SQLite made safe for concurrent writers (foreign keys enforced)."""
    url = engine_url(url or database_url())
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, hide_parameters=True, **POSTGRES_POOL)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # a URI names its file itself
    engine = create_engine(url, hide_parameters=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    _make_sqlite_transactional(engine, foreign_keys)
    return engine


def _make_sqlite_transactional(engine: Engine, foreign_keys: bool) -> None:
    # SQLAlchemy's documented recipe for pysqlite (see docs/DESIGN.md section 7): take transaction control away from the
    # driver, and begin write units of work with BEGIN IMMEDIATE, because deferred read-then-write transactions
    # fail with "database is locked" under concurrent writers even with a busy timeout.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get("sqlite_write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """Yield a Session for one write unit of work: committed on success, rolled back on any error.

    A write that waits longer than SQLITE_BUSY_TIMEOUT_MS for other writers raises DatabaseBusy (nothing written).
    """
    try:
        with Session(engine.execution_options(sqlite_write=True)) as session, session.begin():
            if engine.dialect.name == "postgresql":
                # Write units of work read then write (next session number, get-or-create patient); under READ
                # COMMITTED two of them for one patient collide on the unique keys. One writer at a time, as
                # SQLite's BEGIN IMMEDIATE gives; the lock is released at commit or rollback, and reads are never
                # blocked. Waiting for it is bounded like SQLite's busy timeout.
                session.execute(text(f"SET LOCAL lock_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
            yield session
            rollups.settle(session)  # the touched episodes' new sums, in the same transaction
    except DBAPIError as error:
        if not _is_busy(error):
            raise
        raise DatabaseBusy(BUSY_MESSAGE) from error


def _is_busy(error: DBAPIError) -> bool:
    """Return whether a database error means only "other writers were in the way" (SQLite busy, lock timeouts)."""
    if getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    message = str(error.orig).lower()
    return "database is locked" in message or "database is busy" in message


def alembic_config(url: str) -> Config:
    """Return the Alembic configuration for the migrations shipped in db/migrations."""
    from alembic.config import Config  # here: only a migration or a backup needs Alembic (0.5 s to import)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str | None = None) -> None:
    """Create the database, or bring it to the newest schema, by running the Alembic migrations."""
    from alembic import command

    url = engine_url(url or database_url())
    # On SQLite, Alembic's batch mode rebuilds a table by copy, drop and rename; with foreign keys on, the drop
    # would cascade into the rows that point at it. So keys are off while migrating, and checked before commit
    # when a revision ran. Every other connection enforces them, so nothing else can break them: the app, which
    # migrates at start, does not read the whole database to find the schema already current (issue #15).
    engine = make_engine(url, foreign_keys=False)
    try:
        with engine.begin() as connection:
            before = _revision(connection)
            if (before,) == _heads():
                return  # current: nothing for Alembic to load or run
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            if _revision(connection) == before:
                return
            if engine.dialect.name == "postgresql":
                roles.grant_again(connection)  # the app's role on the tables a new revision made
            if engine.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration would break {len(broken)} foreign keys; nothing was changed")
    finally:
        engine.dispose()


@functools.cache
def _heads() -> tuple[str, ...]:
    """Return the newest revision of the migrations shipped, read once a process: Alembic reads every revision file
    to find it, 25 ms that every `python -m db` command and every test that runs one paid again."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _revision(connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def has_schema(engine: Engine) -> bool:
    """Return whether the database already holds the sessions table."""
    return inspect(engine).has_table("sessions")
