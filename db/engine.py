"""The database engine, built from DATABASE_URL, and the migrations that shape it."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, NullPool, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlmodel import Session

import db.report_models  # noqa: F401  (registers the patient-reported tables on SQLModel.metadata, issue #17)
from db import roles, rollups

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_URL = "sqlite:///data/needle_outcomes.db"
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15_000  # how long a write waits for another writer; PostgreSQL's lock_timeout is the same
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


class UnusableDatabaseURL(ValueError):
    """The database URL cannot be used: not a URL, or a database or driver this program does not support."""


class NoDatabase(LookupError):
    """The URL names no database of this program (a mistyped SQLite path, say); nothing was created."""


URL_EXAMPLES = "sqlite:///path/to/file.db or postgresql://user:password@host:5432/database"
# The drivers installed with the app (requirements.txt); `postgresql://` is psycopg's in SQLAlchemy 2.
DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}


def database_url() -> str:
    """Return the configured database URL (DATABASE_URL, else the embedded SQLite file)."""
    return os.environ.get("DATABASE_URL") or DEFAULT_URL


def shown_url(url: str) -> str:
    """Return a database URL fit to print: its password, if any, replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def engine_url(url: str) -> str:
    """Return `url` as the engine takes it; raise UnusableDatabaseURL with a one-line reason for one it cannot use.

    `postgres://` is read as `postgresql://`: libpq, psql and many hosting services write it, and it names the same
    server; SQLAlchemy 1.4 and later refuse the old alias with an error about a missing plugin.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnusableDatabaseURL(
            f"database URL {shown_url(url)!r} is not a database URL; expected {URL_EXAMPLES}"
        ) from None
    if parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in DRIVERS:
        raise UnusableDatabaseURL(
            f"database URL {shown_url(url)!r}: {backend} databases are not supported; use SQLite or PostgreSQL "
            f"({URL_EXAMPLES})"
        )
    if parsed.get_driver_name() != DRIVERS[backend]:
        raise UnusableDatabaseURL(
            f"database URL {shown_url(url)!r}: the {parsed.get_driver_name()} driver is not installed; write "
            f"{backend}:// or {backend}+{DRIVERS[backend]}://"
        )
    return parsed.render_as_string(hide_password=False)


def require_database(url: str) -> None:
    """Raise NoDatabase unless `url` holds this program's schema; never creates a database (a SQLite file, say)."""
    url = engine_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            return  # in memory, or a URI with its own mode: SQLite opens what it is told
        path = Path(parsed.database)
        if not path.is_file():
            raise NoDatabase(f"no database at {path}: run `python -m db init` first, or check --url / DATABASE_URL")
        # Read-only and outside SQLAlchemy: a file that is not a database must not be turned into one.
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone()
        except sqlite3.DatabaseError as error:
            raise NoDatabase(f"{path}: not a Needle Outcomes database ({error})") from None
        finally:
            connection.close()
    else:
        engine = create_engine(url, hide_parameters=True, poolclass=NullPool)
        try:
            found = inspect(engine).has_table("alembic_version")
        finally:
            engine.dispose()
    if not found:
        raise NoDatabase(f"{shown_url(url)} holds no Needle Outcomes schema: run `python -m db init` first")


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
            config = alembic_config(url)
            config.attributes["connection"] = connection
            before = _revision(connection)
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


def _revision(connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def has_schema(engine: Engine) -> bool:
    """Return whether the database already holds the sessions table."""
    return inspect(engine).has_table("sessions")
