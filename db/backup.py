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
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url

from db import audit
from db.access import Actor, require_role
from db.engine import alembic_config, make_engine, migrate, write_session

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
    """Write a consistent copy of the database at `url` to `path` (admins); return its schema version."""
    require_role(actor, ("admin",), "back up the database")
    parsed = make_url(url)
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        if parsed.get_backend_name() == "sqlite":
            version = _sqlite_backup(parsed, partial)
        elif parsed.get_backend_name() == "postgresql":
            version = _pg_backup(parsed, partial)
        else:
            raise BackupRefused(f"backup of a {parsed.get_backend_name()} database is not supported")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    _audit(url, actor, "export", f"backup to {path.name} (schema {version})")
    return version


def restore(url: str, path: Path, *, actor: Actor) -> str:
    """Replace the database at `url` with the backup at `path` (admins), migrating an older one; return a summary."""
    require_role(actor, ("admin",), "restore the database")
    path = Path(path)
    if not path.is_file():
        raise BackupRefused(f"{path}: no such file")
    parsed = make_url(url)
    with open(path, "rb") as file:
        magic = file.read(len(SQLITE_MAGIC))
    if parsed.get_backend_name() == "sqlite":
        if not magic.startswith(SQLITE_MAGIC):
            raise BackupRefused(f"{path.name}: not a SQLite backup (this database is SQLite); nothing was changed")
        version = _sqlite_restore(url, parsed, path)
    elif parsed.get_backend_name() == "postgresql":
        if not magic.startswith(PG_DUMP_MAGIC):
            raise BackupRefused(
                f"{path.name}: not a pg_dump custom-format backup (this database is PostgreSQL); nothing was changed"
            )
        version = _pg_restore(url, parsed, path)
    else:
        raise BackupRefused(f"restore into a {parsed.get_backend_name()} database is not supported")
    migrated = _check_version(url, version, path)
    if migrated:
        migrate(url)
    schema = f"schema {version}, migrated to {schema_versions(url)[-1]}" if migrated else f"schema {version}"
    _audit(url, actor, "restore", f"restored from {path.name} ({schema})")
    return f"restored {path.name} ({schema})"


def _audit(url: str, actor: Actor, action: str, detail: str) -> None:
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table("audit_log"):
            return  # a database at a schema older than the audit trail (backed up before migrating it)
        with write_session(engine) as session:
            audit.record(session, actor, action, "database", detail=detail)
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
        raise BackupRefused(f"{source_path}: no such database file")
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
        raise BackupRefused(f"the copy failed its integrity check ({check}); no backup was written")
    if not version:
        raise BackupRefused(f"{source_path}: not a Needle Outcomes database (no schema version); no backup was written")
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
    _run([pg_tool("pg_dump"), "--format=custom", f"--file={target}"], parsed, "pg_dump")
    version = _pg_dump_version(parsed, target)
    if not version:
        raise BackupRefused(f"{parsed.database}: not a Needle Outcomes database (no schema version); no backup written")
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
