"""What a failure of `python -m db` means, in one line that names the database or file and what to check.

The library types a failure may be of are imported only to explain one, so `python -m db --help` loads none.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError


class CommandFailed(Exception):
    """A command could not do its work; the message is the one-line reason printed on standard error."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a command that had done part of its work; the message says what was done and what was not."""


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _where(url: str) -> str:
    """Return the database a URL names, in words: the SQLite file, or PostgreSQL's host, port and database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database or "the in-memory database")
    return f"PostgreSQL at {parsed.host or 'the local socket'}:{parsed.port or 5432}"


def _database_reason(error: DBAPIError | sqlite3.Error, url: str) -> str:
    """Return what a database driver's error means, naming the database and what to check."""
    from sqlalchemy.engine import make_url

    cause = getattr(error, "orig", None) or error
    message = _one_line(cause)
    lower = message.lower()
    where = _where(url)
    parsed = make_url(url)
    state = getattr(cause, "sqlstate", None)
    if "readonly database" in lower:
        return f"{where}: the database is read-only (check the permissions of the file and its directory)"
    if state == "25006":
        return f"{where} is read-only (a standby server?): connect to the primary"
    if "unable to open database file" in lower:
        return f"{where}: cannot open the database file (check that its directory exists and is writable)"
    if "database or disk is full" in lower or state == "53100":
        return f"{where}: the disk is full; nothing was saved"
    if "file is not a database" in lower:
        return f"{where}: not a SQLite database"
    if "no such table" in lower or state == "42P01":
        return f"{where} holds no Needle Outcomes schema: run `python -m db init` first"
    if "database" in lower and "does not exist" in lower:
        return (f"{where} has no database {parsed.database!r}: create it (docs/DEPLOYMENT.md, section 1) or check "
                "the URL")
    if "connection refused" in lower:
        return f"{where} refused the connection: is the server running, and is the host and port right?"
    if "resolve host" in lower or "translate host name" in lower or "name or service not known" in lower:
        return f"cannot find the database host {parsed.host!r}: check the URL"
    if "password authentication failed" in lower or state == "28P01":
        return f"{where}: user {parsed.username!r} was refused (wrong password?)"
    if "timeout" in lower and "connect" in lower:
        return f"{where} did not answer in time: check the host, port and firewall"
    if state == "42501":
        return f"permission denied ({message}): this role may not do that; run it as the role that owns the tables"
    if state == "57P03":
        return f"{where} is starting up or shutting down: try again in a moment"
    return f"database error: {message}"


def _file_reason(error: OSError, url: str) -> str:
    """Return what a failed file operation means, naming the file."""
    name = f"{error.filename}: " if error.filename else ""
    words = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EROFS: "read-only file system",
        errno.ENOENT: "no such file or directory",
        errno.ENOTDIR: "a part of the path is not a directory",
        errno.EISDIR: "is a directory",
    }
    return f"{name}{words.get(error.errno, error.strerror or _one_line(error))}"


def _reasons() -> tuple[tuple[type[BaseException], Callable[[BaseException, str], str]], ...]:
    """Return what each kind of failure means, in one line. The first row whose type matches wins: subclasses come
    before their bases (DatabaseBusy and AccessDenied are OSErrors). The refusals (ImportRefused, BackupRefused,
    RoleRefused) are ValueErrors whose text is their reason."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    from db.access import AccessDenied
    from db.engine import DatabaseBusy, NoDatabase, UnusableDatabaseURL

    return (
        (CommandFailed, lambda error, url: str(error)),
        (Interrupted, lambda error, url: str(error)),
        (UnusableDatabaseURL, lambda error, url: str(error)),
        (NoDatabase, lambda error, url: str(error)),
        (DatabaseBusy, lambda error, url: str(error)),
        (AccessDenied, lambda error, url: f"not allowed: {error}"),
        (DBAPIError, _database_reason),
        (sqlite3.Error, _database_reason),  # the sqlite3 module used directly (backup, restore)
        (CommandError, lambda error, url: f"the schema could not be migrated: {error}"),
        (OSError, _file_reason),
        (UnicodeError, lambda error, url: f"text that is not valid UTF-8: {error}"),
        (ValueError, lambda error, url: str(error)),
        (KeyboardInterrupt, lambda error, url: "interrupted: a unit of work in progress was rolled back"),
    )


def reason(error: BaseException, url: str) -> str:
    """Return the one-line reason printed for a failure (an unforeseen one says how to see its traceback)."""
    for kind, explain in _reasons():
        if isinstance(error, kind):
            return _one_line(explain(error, url)) or type(error).__name__
    return (f"unexpected {type(error).__name__}: {_one_line(error)} "
            "(run `python -m db --debug …` to see where; please report it)")
