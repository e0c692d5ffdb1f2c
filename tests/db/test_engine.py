"""Tests that connections are set up for safe concurrent writers (docs/DESIGN.md section 7), SQLite's in particular."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlmodel import Session

from db.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    NoDatabase,
    UnusableDatabaseURL,
    alembic_config,
    engine_url,
    has_schema,
    make_engine,
    migrate,
    require_database,
    write_session,
)
from tests.db.factories import DATE_IS_RIGHT, engine_on, record, stored_sessions

THREADS = 8
WRITES_PER_THREAD = 20


@pytest.fixture
def sqlite_path(tmp_path):
    path = tmp_path / "engine.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(sqlite_path):
    with engine_on(f"sqlite:///{sqlite_path}") as engine:
        yield engine


def pragma(engine, name: str):
    with engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_connections_enforce_foreign_keys(sqlite_engine):
    assert pragma(sqlite_engine, "foreign_keys") == 1


def test_sqlite_connections_use_the_write_ahead_log(sqlite_engine):
    assert pragma(sqlite_engine, "journal_mode") == "wal"


def test_sqlite_connections_wait_for_a_busy_database_and_sync_fully(sqlite_engine):
    assert pragma(sqlite_engine, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS > 0
    assert pragma(sqlite_engine, "synchronous") == 2  # FULL


def test_migrate_creates_the_schema_and_can_run_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'fresh.db'}"
    migrate(url)
    migrate(url)
    with engine_on(url) as engine:
        assert has_schema(engine)
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_a_current_database_is_left_to_itself_without_alembic_reading_its_revisions(tmp_path, monkeypatch):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'current.db'}"
    migrate(url)

    def upgrade(*_args, **_kwargs):
        raise AssertionError("Alembic ran on a database already at the newest revision")

    monkeypatch.setattr(command, "upgrade", upgrade)
    migrate(url)  # every `python -m db` command and the app's start migrate: 25 ms each when Alembic reads it all


def test_a_new_database_has_no_schema_until_migrated(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert not has_schema(engine)
    finally:
        engine.dispose()


def begin_statements(engine, work) -> list[str]:
    """Return the BEGIN statements sent to the database while `work` runs."""
    sent: list[str] = []

    def remember(_conn, _cursor, statement, *_args) -> None:
        if statement.upper().startswith("BEGIN"):
            sent.append(statement.upper())

    event.listen(engine, "before_cursor_execute", remember)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    return sent


def test_a_write_session_begins_with_begin_immediate(sqlite_engine):
    def read_then_write() -> None:
        with write_session(sqlite_engine) as session:
            session.execute(text("SELECT count(*) FROM sessions")).scalar()
            session.execute(text("INSERT INTO patients (pseudonym, search_id, created_at) "
                                 "VALUES ('P1', 'p1', '2025-01-01')"))

    assert begin_statements(sqlite_engine, read_then_write) == ["BEGIN IMMEDIATE"]


def test_a_read_session_begins_deferred(sqlite_engine):
    def read() -> None:
        with Session(sqlite_engine) as session:
            session.execute(text("SELECT count(*) FROM sessions")).scalar()

    assert begin_statements(sqlite_engine, read) == ["BEGIN DEFERRED"]


def test_a_write_session_holds_the_write_lock_from_its_first_statement(sqlite_engine, sqlite_path):
    other = sqlite3.connect(sqlite_path, timeout=0, isolation_level=None)
    try:
        with write_session(sqlite_engine) as session:
            session.execute(text("SELECT 1")).scalar()  # a read only: a deferred transaction would not lock yet
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_concurrent_read_then_write_units_of_work_for_one_patient_all_commit(engine):
    start = date(2025, 1, 1)
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def clinician(thread: int) -> None:
        barrier.wait()
        for i in range(WRITES_PER_THREAD):
            try:  # record_session reads the episode's last number, then writes: the classic read-then-write
                # A thread may save before the course's first session: the clinician says its date is right.
                record(engine, patient_id="P1", condition="neck_pain", notes=f"{thread}-{i}", answer=DATE_IS_RIGHT,
                       session_date=(start + timedelta(days=(i * THREADS + thread) % 300)).isoformat())
            except BaseException as error:  # noqa: BLE001  (collected and asserted on below)
                errors.append(error)

    threads = [threading.Thread(target=clinician, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = stored_sessions(engine)
    assert len(stored) == THREADS * WRITES_PER_THREAD
    assert list(stored["session_number"]) == list(range(1, THREADS * WRITES_PER_THREAD + 1))
    in_date_order = stored.sort_values(["session_date", "id"])
    assert list(in_date_order["session_number"]) == list(range(1, THREADS * WRITES_PER_THREAD + 1))


@pytest.mark.parametrize(("url", "engine_takes"), [
    ("postgres://clinic:s3cret@db.example:5432/needle", "postgresql+psycopg://clinic:s3cret@db.example:5432/needle"),
    ("postgresql://clinic@db.example/needle", "postgresql://clinic@db.example/needle"),
    ("postgresql+psycopg://clinic@db.example/needle", "postgresql+psycopg://clinic@db.example/needle"),
    ("sqlite:///data/needle_outcomes.db", "sqlite:///data/needle_outcomes.db"),
])
def test_the_engine_takes_postgres_urls_as_postgresql_and_the_rest_as_they_are(url, engine_takes):
    assert engine_url(url) == engine_takes


@pytest.mark.parametrize("url", ["notaurl", "sqlite:/x.db", "mysql://u:p@h/db", "postgresql+asyncpg://h/db",
                                 "oracle://u@h/db"])
def test_an_unusable_url_is_refused_before_any_engine_is_made(url):
    with pytest.raises(UnusableDatabaseURL) as refused:
        make_engine(url)
    assert "\n" not in str(refused.value) and ":p@" not in str(refused.value)


def test_require_database_never_creates_a_sqlite_file(tmp_path):
    path = tmp_path / "missing" / "needle.db"
    with pytest.raises(NoDatabase, match=f"no database at {path}"):
        require_database(f"sqlite:///{path}")
    assert not path.parent.exists()
    migrate(f"sqlite:///{path}")
    require_database(f"sqlite:///{path}")  # there now: no error


def test_only_a_migration_that_ran_checks_every_foreign_key(tmp_path, monkeypatch):
    # The app migrates at every start; reading the whole database there took 0.35 s at a million sessions.
    import db.engine

    statements: list[str] = []

    def recording(url, **kwargs):
        engine = make_engine(url, **kwargs)
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        return engine

    monkeypatch.setattr(db.engine, "make_engine", recording)
    url = f"sqlite:///{tmp_path / 'checked.db'}"
    migrate(url)  # from nothing to the newest schema
    assert any("foreign_key_check" in statement for statement in statements)
    statements.clear()
    migrate(url)  # already current: nothing ran
    assert statements and not any("foreign_key_check" in statement for statement in statements)
    with engine_on(url) as engine:
        assert pragma(engine, "foreign_keys") == 1
