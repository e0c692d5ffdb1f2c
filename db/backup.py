"""`python -m db backup FILE` and `restore FILE`: a consistent copy of the whole database, and back.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page in one step inside one read
transaction, so the copy is the database as of one moment while the app goes on writing (WAL lets writers
proceed). The copy is a single self-contained file (journal mode DELETE), checked with `PRAGMA integrity_check`.

PostgreSQL: `pg_dump --format=custom`, which dumps inside one REPEATABLE READ transaction, so it too is a
consistent snapshot taken while the app runs. It needs `pg_dump`, `pg_restore` and `psql` of the server's major
version or newer (Debian's `postgresql-client`): found on PATH, under /usr/lib/postgresql/*/bin (the highest
version), or in the directory named by POSTGRES_BINDIR. The password, if the URL has one, goes to them through
PGPASSWORD, never on the command line. A restore drops and recreates the `public` schema and loads the dump in one
transaction (`psql --single-transaction`), so a failed restore leaves the database as it was; the database user
must own the database (as the app's user does when it created it).

A restore first reads the schema version (the Alembic revision) recorded in the backup. The same version as this
program's newest is restored as it is; an older one this program knows is restored and then migrated; a newer or
unknown one is refused before anything is replaced, as is a file that is not a backup of this backend.
Backups are audited as an `export` of the `database`, restores as a `restore` of it (in the restored database).

A backup is written to a temporary file beside the target (mode 0600: it holds clinical records), synced, and then,
in one unit of work, its audit row is added and the file renamed into place: a failure at any step removes the
temporary file, leaves any earlier file at the target as it was, and reports that nothing was saved; success
leaves the complete file and its audit row.

On PostgreSQL the app's restricted role (db/roles.py) is granted its privileges again after a restore, which
recreates the tables without them.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from db import audit, roles
from db.access import Actor, require_role
from db.engine import DatabaseBusy, alembic_config, engine_url, make_engine, migrate, write_session

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
TOOL_TIMEOUT_S = 3600


class BackupRefused(ValueError):
    """A backup or restore was refused or failed; the message says why. A refused restore has changed nothing."""


def schema_versions(url: str) -> list[str]:
    """Return this program's schema versions (Alembic revisions), oldest first; the last is the current one."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def _check_version(url: str, version: str | None, path: Path) -> bool:
    """Return whether a backup at `version` needs migrating after restore; refuse a version this program lacks."""
    versions = schema_versions(url)
    if not version:
        raise BackupRefused(f"{path.name}: not a Needle Outcomes backup (no schema version in it); nothing was changed")
    if version not in versions:
        raise BackupRefused(
            f"{path.name}: the backup's schema version {version} is newer than this program's ({versions[-1]}) or "
            "unknown to it; restore it with the program version that made it. Nothing was changed"
        )
    return version != versions[-1]


def backup(url: str, path: Path, *, actor: Actor) -> str:
    """Write a consistent copy of the database at `url` to `path` (admins), audited; return its schema version.

    All or nothing: on any failure no file is left behind and an earlier file at `path` is kept as it was.
    """
    require_role(actor, ("admin",), "back up the database")
    url = engine_url(url)
    parsed = make_url(url)
    path = Path(path)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise BackupRefused(f"backup of a {parsed.get_backend_name()} database is not supported")
    if not path.parent.is_dir():
        raise BackupRefused(f"{path.parent}: no such directory; nothing was saved")
    if path.is_dir():
        raise BackupRefused(f"{path}: is a directory, not a file name; nothing was saved")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as error:
        raise BackupRefused(f"{path.parent}: cannot write there ({error.strerror}); nothing was saved") from None
    os.close(handle)
    partial = Path(name)
    try:
        if parsed.get_backend_name() == "sqlite":
            version = _sqlite_backup(parsed, partial)
        else:
            version = _pg_backup(parsed, partial)
        _sync(partial)
        _put_in_place(url, partial, path, actor, f"backup to {path.name} (schema {version})")
    except DatabaseBusy:
        raise  # its message says already that nothing was saved
    except (OSError, sqlite3.Error, DBAPIError) as error:
        raise BackupRefused(f"{_cause(error)}; nothing was saved") from error
    finally:
        partial.unlink(missing_ok=True)
    return version


def _cause(error: BaseException) -> str:
    """Return the first line of what went wrong, without Python's `[Errno N]` prefix."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]


def _has_chained_audit(connection) -> bool:
    """Return whether the database has the audit trail of this schema (a backup may be of an older one)."""
    inspector = inspect(connection)
    return inspector.has_table("audit_log") and "row_hash" in {c["name"] for c in inspector.get_columns("audit_log")}


def _sync(path: Path) -> None:
    """Flush a finished file to the disk, so the rename never publishes a file the disk does not hold yet."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _put_in_place(url: str, partial: Path, path: Path, actor: Actor, detail: str) -> None:
    """Rename the finished copy to `path` and audit it in one unit of work: both happen, or neither does."""
    previous = path.with_name(f".{path.name}.{secrets.token_hex(4)}.previous")
    try:
        os.link(path, previous)  # the earlier file, to put back if the audit row is not committed
    except OSError:
        previous = None  # none there (or no hard links on this file system)
    engine = make_engine(url)
    placed = False
    try:
        with write_session(engine) as session:
            if _has_chained_audit(session.connection()):
                audit.record(session, actor, "export", "database", detail=detail)
            os.replace(partial, path)
            placed = True
    except BaseException:
        if placed:  # renamed, but the audit row was not committed: undo the rename
            if previous is not None:
                os.replace(previous, path)
            else:
                path.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
        if previous is not None:
            previous.unlink(missing_ok=True)


def restore(url: str, path: Path, *, actor: Actor) -> str:
    """Replace the database at `url` with the backup at `path` (admins), migrating an older one; return a summary."""
    require_role(actor, ("admin",), "restore the database")
    url = engine_url(url)
    path = Path(path)
    if not path.is_file():
        raise BackupRefused(f"{path}: no such file")
    parsed = make_url(url)
    with open(path, "rb") as file:
        magic = file.read(len(SQLITE_MAGIC))
    app_roles: list[str] = []
    if parsed.get_backend_name() == "sqlite":
        if not magic.startswith(SQLITE_MAGIC):
            raise BackupRefused(f"{path.name}: not a SQLite backup (this database is SQLite); nothing was changed")
        version = _sqlite_restore(url, parsed, path)
    elif parsed.get_backend_name() == "postgresql":
        if not magic.startswith(PG_DUMP_MAGIC):
            raise BackupRefused(
                f"{path.name}: not a pg_dump custom-format backup (this database is PostgreSQL); nothing was changed"
            )
        app_roles = _with_connection(url, roles.app_roles)  # the restore drops their grants with the old tables
        version = _pg_restore(url, parsed, path)
    else:
        raise BackupRefused(f"restore into a {parsed.get_backend_name()} database is not supported")
    migrated = _check_version(url, version, path)
    if migrated:
        migrate(url)
    if app_roles:
        _with_connection(url, lambda connection: roles.grant_again(connection, app_roles))
    schema = f"schema {version}, migrated to {schema_versions(url)[-1]}" if migrated else f"schema {version}"
    _audit(url, actor, "restore", f"restored from {path.name} ({schema})")
    return f"restored {path.name} ({schema})"


def _with_connection(url: str, work):
    """Return what `work(connection)` returns, run in one committed transaction on a short-lived engine."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            return work(connection)
    finally:
        engine.dispose()


def _audit(url: str, actor: Actor, action: str, detail: str) -> None:
    engine = make_engine(url)
    try:
        with write_session(engine) as session:
            if _has_chained_audit(session.connection()):  # not in a database restored at an older schema
                audit.record(session, actor, action, "database", detail=detail)
    except Exception as error:
        raise BackupRefused(f"{detail}, but its audit row could not be written: {_cause(error)}") from error
    finally:
        engine.dispose()


# SQLite ------------------------------------------------------------------------------------------------------------


def _sqlite_file(parsed: URL) -> Path:
    if not parsed.database or parsed.database == ":memory:":
        raise BackupRefused("an in-memory SQLite database cannot be backed up or restored")
    return Path(parsed.database)


def _sqlite_version(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _sqlite_backup(parsed: URL, target: Path) -> str:
    source_path = _sqlite_file(parsed)
    if not source_path.is_file():
        raise BackupRefused(f"{source_path}: no such database file; nothing was saved")
    source = sqlite3.connect(source_path, timeout=15)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # all pages in one step: one read transaction, one moment of the database
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        version = _sqlite_version(copy)
    finally:
        copy.close()
        source.close()
    if check != "ok":
        raise BackupRefused(f"the copy failed its integrity check ({check}); nothing was saved")
    if not version:
        raise BackupRefused(f"{source_path}: not a Needle Outcomes database (no schema version); nothing was saved")
    return version


def _sqlite_restore(url: str, parsed: URL, path: Path) -> str:
    target_path = _sqlite_file(parsed)
    backup_file = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            check = backup_file.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise BackupRefused(f"{path.name}: unreadable SQLite file ({error}); nothing was changed") from None
        if check != "ok":
            raise BackupRefused(f"{path.name}: the backup fails its integrity check ({check}); nothing was changed")
        version = _sqlite_version(backup_file)
        _check_version(url, version, path)  # before anything is replaced
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(target_path, timeout=15)
        try:
            # The backup API writes through the live database's own pager and locks, so connections the app has
            # open see the restored pages, unlike a file copy over a database in WAL mode.
            backup_file.backup(target)
        finally:
            target.close()
    finally:
        backup_file.close()
    return version


# PostgreSQL --------------------------------------------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """Return the path of a PostgreSQL client program (pg_dump, pg_restore, psql), the newest installed."""
    override = os.environ.get("POSTGRES_BINDIR")
    if override and (Path(override) / name).is_file():
        return str(Path(override) / name)
    candidates = [p for p in glob.glob(f"/usr/lib/postgresql/*/bin/{name}") if os.access(p, os.X_OK)]
    if candidates:
        return max(candidates, key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parent.parent.name)] or [0])
    found = shutil.which(name)
    if found:
        return found
    raise BackupRefused(f"{name} not found: install the PostgreSQL client programs (Debian: postgresql-client)")


def _pg_env(parsed: URL) -> dict[str, str]:
    env = dict(os.environ)
    for variable, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                            ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value is not None:
            env[variable] = str(value)
    return env


def _run(command: list[str], parsed: URL, what: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(command, env=_pg_env(parsed), input=stdin, capture_output=True, timeout=TOOL_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackupRefused(f"{what} failed: {error}") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise BackupRefused(f"{what} failed: {lines[-1] if lines else f'exit status {done.returncode}'}")
    return done.stdout


def _pg_backup(parsed: URL, target: Path) -> str:
    try:
        _run([pg_tool("pg_dump"), "--format=custom", f"--file={target}"], parsed, "pg_dump")
        version = _pg_dump_version(parsed, target)
    except BackupRefused as refused:
        raise BackupRefused(f"{refused}; nothing was saved") from None
    if not version:
        raise BackupRefused(f"{parsed.database}: not a Needle Outcomes database (no schema version); nothing was saved")
    return version


def _pg_dump_version(parsed: URL, path: Path) -> str | None:
    """Return the schema version stored in a custom-format dump (the data of its alembic_version table)."""
    script = _run([pg_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(path)], parsed,
                  f"reading {path.name}").decode()
    match = re.search(r"^COPY [\w.\"]*alembic_version \(version_num\) FROM stdin;\n(.*?)\n\\\.", script, re.M | re.S)
    return match.group(1).strip().splitlines()[0] if match and match.group(1).strip() else None


def _pg_restore(url: str, parsed: URL, path: Path) -> str:
    try:
        version = _pg_dump_version(parsed, path)
    except BackupRefused as refused:
        raise BackupRefused(f"{path.name}: not a readable pg_dump backup ({refused}); nothing was changed") from None
    _check_version(url, version, path)  # before anything is replaced
    script = _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(path)], parsed,
                  f"reading {path.name}")
    # The whole schema goes, not only the tables in the backup: tables, functions and triggers of a newer schema
    # must not outlive the restore of an older one. (The database's owner may drop and create its public schema.)
    drop = b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n"
    _run([pg_tool("psql"), "--quiet", "--no-psqlrc", "--single-transaction", "--set=ON_ERROR_STOP=1", "--file=-"],
         parsed, f"restoring {path.name}", stdin=drop + script)
    return version
