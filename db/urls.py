"""The database URL: which database a command or the app uses, checked before anything connects.

Kept apart from db/engine.py, which loads SQLModel and every table model (0.4 s): the command line checks the URL of
every command here, and `python -m db summary` reads its table with nothing more (issue #15). db.engine exports
all of this module's names as its own.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from sqlalchemy import NullPool, create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_URL = "sqlite:///data/needle_outcomes.db"
SQLITE_BUSY_TIMEOUT_MS = 15_000  # how long a write waits for another writer; PostgreSQL's lock_timeout is the same


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
