"""Tests that a backup is a consistent copy taken while the app writes, and that restore checks the schema first."""

from __future__ import annotations

import errno
import shutil
import sqlite3
import threading
import time

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from db import backup
from db.backup import BackupRefused
from db.cli import main
from db.engine import BUSY_MESSAGE, DatabaseBusy, alembic_config, make_engine, write_session
from db.models import AuditEvent, TreatmentSession
from db.writes import record_session
from tests.db.factories import ADMIN, another_database, engine_on, import_frame, interchange_rows, session_input

ROWS = [
    dict(patient_id="B1", session_date="2025-03-01", technique="deep", pain_before="70", side_effects="bruising:mild",
         muscles="upper_trapezius;levator_scapulae;splenius_capitis"),
    dict(patient_id="B1", session_date="2025-03-08", technique="deep", pain_before="50", notes="Zoë – naïve ✓"),
    dict(patient_id="B2", session_date="2025-03-02", technique="superficial", pain_scale="nrs_10", pain_before="6"),
]


def session_ids(url: str) -> set[int]:
    with engine_on(url) as engine, Session(engine) as session:
        return set(session.scalars(select(TreatmentSession.id)))


def schema_version(url: str) -> str:
    with engine_on(url) as engine, engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def audit_details(url: str, action: str) -> list[str]:
    with engine_on(url) as engine, Session(engine) as session:
        stmt = select(AuditEvent.detail).where(AuditEvent.action == action, AuditEvent.entity == "database")
        return list(session.scalars(stmt))


def sqlite_path(url: str) -> str:
    return make_url(url).database


def test_a_backup_taken_while_another_thread_writes_restores_every_committed_session(request, engine, backend,
                                                                                      database_url, tmp_path):
    import_frame(engine, interchange_rows(*ROWS))
    committed: list[int] = []
    lock, stop = threading.Lock(), threading.Event()
    errors: list[BaseException] = []

    def write_sessions() -> None:
        writer = make_engine(database_url)
        try:
            for i in range(10_000):
                if stop.is_set():
                    return
                with write_session(writer) as session:
                    row = record_session(session, actor=ADMIN, entry=session_input(patient_id=f"W{i % 7}",
                                                                                   pain_before=i % 100))
                    session_id = row.id
                with lock:  # only now is it committed
                    committed.append(session_id)
        except BaseException as error:  # noqa: BLE001 — reported by the test, not lost in the thread
            errors.append(error)
        finally:
            writer.dispose()

    writer = threading.Thread(target=write_sessions)
    writer.start()
    try:
        while len(committed) < 20 and writer.is_alive():
            time.sleep(0.01)
        with lock:
            before = set(committed)
        path = tmp_path / "during.backup"
        backup.backup(database_url, path, actor=ADMIN)
        time.sleep(0.2)  # the writer goes on after the copy
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not errors, errors
    assert len(committed) > len(before), "the writer kept writing during and after the backup"
    with another_database(request, backend, tmp_path) as restored:
        backup.restore(restored, path, actor=ADMIN)
        if backend == "sqlite":
            with sqlite3.connect(sqlite_path(restored)) as check:
                assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = session_ids(restored)
    first_import = session_ids(database_url) - set(committed)
    assert before | first_import <= ids, "every session committed before the backup is in it"
    assert ids <= set(committed) | first_import, "nothing half-written"


def test_a_sqlite_backup_is_one_self_contained_file_that_passes_integrity_check(sqlite_template, tmp_path):
    live = tmp_path / "live.db"
    shutil.copy(sqlite_template, live)
    database_url = f"sqlite:///{live}"
    with engine_on(database_url) as engine:
        import_frame(engine, interchange_rows(*ROWS))
    path = tmp_path / "copy.db"
    assert backup.backup(database_url, path, actor=ADMIN) == schema_version(database_url)
    with sqlite3.connect(path) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("SELECT count(*) FROM sessions").fetchone()[0] == len(ROWS)
    assert not (tmp_path / "copy.db-wal").exists() and not (tmp_path / "copy.db.partial").exists()


def test_restore_puts_back_the_backed_up_data_and_is_audited(engine, database_url, tmp_path):
    import_frame(engine, interchange_rows(*ROWS))
    kept = session_ids(database_url)
    path = tmp_path / "clinic.backup"
    backup.backup(database_url, path, actor=ADMIN)
    assert audit_details(database_url, "export") == [f"backup to clinic.backup (schema {schema_version(database_url)})"]
    with write_session(engine) as session:
        record_session(session, actor=ADMIN, entry=session_input(patient_id="LATER"))
    assert session_ids(database_url) != kept
    message = backup.restore(database_url, path, actor=ADMIN)
    assert "restored clinic.backup" in message and "migrated" not in message
    assert session_ids(database_url) == kept
    assert len(audit_details(database_url, "restore")) == 1
    with Session(engine) as session:  # the app's own engine still works on the restored database
        assert len(session.scalars(select(TreatmentSession)).all()) == len(ROWS)


def test_restore_refuses_a_backup_with_a_newer_schema_and_changes_nothing(request, engine, backend, database_url,
                                                                           tmp_path):
    import_frame(engine, interchange_rows(*ROWS))
    with another_database(request, backend, tmp_path) as future:
        with engine_on(future) as future_engine, future_engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        path = tmp_path / "future.backup"
        backup.backup(future, path, actor=ADMIN)
    before = session_ids(database_url)
    with pytest.raises(BackupRefused, match="newer than this program's .* Nothing was changed"):
        backup.restore(database_url, path, actor=ADMIN)
    assert session_ids(database_url) == before
    assert audit_details(database_url, "restore") == []


def test_restore_of_an_older_schema_migrates_it_to_the_current_one(request, backend, database_url, tmp_path):
    head = schema_version(database_url)
    with another_database(request, backend, tmp_path) as old:
        with engine_on(old) as old_engine, old_engine.begin() as connection:  # empty, then at the first version
            if backend == "postgresql":
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            else:
                for name in inspect(old_engine).get_table_names():
                    connection.execute(text(f'DROP TABLE "{name}"'))
        command.upgrade(alembic_config(old), "0001")
        assert schema_version(old) == "0001" != head
        path = tmp_path / "old.backup"
        backup.backup(old, path, actor=ADMIN)
    message = backup.restore(database_url, path, actor=ADMIN)
    assert f"schema 0001, migrated to {head}" in message
    assert schema_version(database_url) == head
    with engine_on(database_url) as engine:
        assert "failed_logins" in {c["name"] for c in inspect(engine).get_columns("users")}  # a later migration


def test_restore_refuses_a_file_that_is_not_a_backup(engine, database_url, tmp_path):
    import_frame(engine, interchange_rows(*ROWS))
    before = session_ids(database_url)
    path = tmp_path / "sessions.csv"
    path.write_text("patient_id,session_date\n")
    with pytest.raises(BackupRefused, match="nothing was changed"):
        backup.restore(database_url, path, actor=ADMIN)
    assert session_ids(database_url) == before


def test_only_an_admin_may_back_up_or_restore(database_url, tmp_path):
    from db.access import AccessDenied, Actor

    clinician = Actor(id=None, username="c", role="clinician")
    with pytest.raises(AccessDenied):
        backup.backup(database_url, tmp_path / "x.backup", actor=clinician)
    with pytest.raises(AccessDenied):
        backup.restore(database_url, tmp_path / "x.backup", actor=clinician)
    assert not (tmp_path / "x.backup").exists()


def test_cli_backup_and_restore(capsys, engine, database_url, tmp_path):
    import_frame(engine, interchange_rows(*ROWS))
    path = tmp_path / "cli.backup"
    assert main(["--url", database_url, "backup", str(path)]) == 0
    assert "backup written" in capsys.readouterr().err
    assert main(["--url", database_url, "restore", str(path)]) == 0
    assert "restored cli.backup" in capsys.readouterr().err
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup")
    assert main(["--url", database_url, "restore", str(junk)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "junk.backup" in err[0]


# -- truthful and atomic: a complete file and its audit row, or neither (issue 11) ---------------------------------


def leftovers(directory) -> list[str]:
    """Return the names of files a backup may leave behind while it works (temporary or kept copies)."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".partial", ".previous")))


def test_a_backup_into_a_missing_directory_is_refused_in_one_line(capsys, engine, database_url, tmp_path):
    path = tmp_path / "no such directory" / "clinic.backup"
    assert main(["--url", database_url, "backup", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path.parent}: no such directory; nothing was saved"]
    assert not path.parent.exists() and audit_details(database_url, "export") == []


def test_a_backup_whose_audit_row_cannot_be_written_leaves_the_earlier_file_and_says_nothing_was_saved(
        monkeypatch, capsys, engine, database_url, tmp_path):
    import_frame(engine, interchange_rows(*ROWS))
    path = tmp_path / "clinic.backup"
    path.write_bytes(b"last night's backup")

    def busy(*_args, **_kwargs):
        raise DatabaseBusy(BUSY_MESSAGE)

    monkeypatch.setattr(backup.audit, "record", busy)
    assert main(["--url", database_url, "backup", str(path)]) == 1
    assert capsys.readouterr().err == f"error: {BUSY_MESSAGE}\n"
    assert path.read_bytes() == b"last night's backup", "the message says nothing was saved: nothing was"
    assert leftovers(tmp_path) == [] and audit_details(database_url, "export") == []


def test_a_backup_whose_commit_fails_after_the_rename_puts_the_earlier_file_back(engine, database_url, tmp_path):
    from sqlalchemy import event
    from sqlalchemy.orm import Session as OrmSession

    path = tmp_path / "clinic.backup"
    path.write_bytes(b"last night's backup")

    def commit_fails(session) -> None:  # the audit row is written and the file renamed; then the commit fails
        raise OSError(errno.EIO, "Input/output error")

    event.listen(OrmSession, "before_commit", commit_fails)
    try:
        with pytest.raises(BackupRefused, match="Input/output error; nothing was saved"):
            backup.backup(database_url, path, actor=ADMIN)
    finally:
        event.remove(OrmSession, "before_commit", commit_fails)
    assert path.read_bytes() == b"last night's backup"
    assert leftovers(tmp_path) == [] and audit_details(database_url, "export") == []


def test_a_full_disk_while_copying_leaves_no_file_and_says_nothing_was_saved(monkeypatch, capsys, engine,
                                                                             database_url, tmp_path):
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(backup, "_sync", full)
    path = tmp_path / "clinic.backup"
    assert main(["--url", database_url, "backup", str(path)]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and line.endswith(": No space left on device; nothing was saved")
    assert not path.exists() and leftovers(tmp_path) == [] and audit_details(database_url, "export") == []


def test_a_successful_backup_replaces_an_earlier_file_and_has_its_audit_row(engine, database_url, tmp_path):
    import_frame(engine, interchange_rows(*ROWS))
    path = tmp_path / "clinic.backup"
    path.write_bytes(b"last night's backup")
    version = backup.backup(database_url, path, actor=ADMIN)
    assert path.read_bytes()[:5] in (backup.SQLITE_MAGIC[:5], backup.PG_DUMP_MAGIC)
    assert oct(path.stat().st_mode & 0o777) == "0o600", "a copy of clinical records is readable by its owner only"
    assert audit_details(database_url, "export") == [f"backup to clinic.backup (schema {version})"]
    assert leftovers(tmp_path) == []
