"""The audit trail is tamper-evident (a hash chain), names the patient of every clinical row, and filters in SQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from db import audit, audit_chain, corrections, exporting, importing
from db.audit import AuditFilter
from db.audit_chain import GENESIS, verify_chain
from db.cli import main
from db.engine import alembic_config, make_engine, migrate, write_session
from db.models import AuditEvent, SideEffect
from db.writes import mark_reviewed, record_session
from tests.db.factories import ADMIN, engine_on, new_postgres_database, session_input

CLINIC_FILE = [
    dict(patient_id="F1", session_date="2025-02-03", pain_before=80),
    dict(patient_id="F1", session_date="2025-02-10", pain_before=60),
    dict(patient_id="F2", session_date="2025-02-04", technique="superficial", pain_before=50),
]


def record(engine, **fields) -> int:
    with write_session(engine) as session:
        return record_session(session, actor=ADMIN, entry=session_input(**fields)).id


def import_entries(engine, rows: list[dict], source: str = "clinic.csv") -> None:
    with write_session(engine) as session:
        importing.import_sessions(session, actor=ADMIN, entries=[session_input(**row) for row in rows],
                                  source=source)


def check(engine) -> audit_chain.ChainCheck:
    with Session(engine) as session:
        return verify_chain(session, actor=ADMIN)


def audit_rows(engine) -> list[dict]:
    with Session(engine) as session:
        return [e.model_dump() for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def tamper(engine, backend: str, statement: str, **values) -> None:
    """Run `statement` on the audit trail as its owner would, with the append-only triggers switched off."""
    with engine.begin() as connection:
        if backend == "sqlite":
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        connection.execute(text(statement), values)


@pytest.fixture
def busy_clinic(engine) -> list[int]:
    """A clinic's first day: sessions recorded, a file imported, one session corrected, deleted and restored."""
    first = record(engine, patient_id="P1", pain_before=80, side_effects=[("syncope", "significant")])
    record(engine, patient_id="P2", pain_before=50)
    import_entries(engine, CLINIC_FILE)
    with write_session(engine) as session:
        corrections.correct_session(session, actor=ADMIN, session_id=first,
                                    entry=session_input(patient_id="P1", pain_before=70,
                                                        side_effects=[("syncope", "significant")]))
        corrections.delete_session(session, actor=ADMIN, session_id=first, reason="twice")
        corrections.restore_session(session, actor=ADMIN, session_id=first)
    with write_session(engine) as session:
        effect = session.scalars(select(SideEffect.id).where(SideEffect.session_id == first)).one()
        mark_reviewed(session, actor=ADMIN, side_effect_id=effect)
    with write_session(engine) as session:
        exporting.export_table(session, actor=ADMIN)
    return [row["id"] for row in audit_rows(engine)]


# -- the chain --------------------------------------------------------------------------------------------------------


def test_every_row_follows_the_one_before_and_the_whole_trail_verifies(engine, busy_clinic):
    rows = audit_rows(engine)
    assert rows[0]["prev_hash"] == GENESIS
    assert [r["prev_hash"] for r in rows[1:]] == [r["row_hash"] for r in rows[:-1]]
    assert all(r["row_hash"] == audit_chain.chain_hash(r["prev_hash"], r) for r in rows)
    result = check(engine)
    assert (result.rows, result.broken_at, result.head) == (len(rows), None, rows[-1]["row_hash"])


def test_bulk_rows_of_an_import_are_chained_like_single_ones(engine):
    record(engine, patient_id="P1")
    import_entries(engine, CLINIC_FILE)
    rows = audit_rows(engine)
    assert [r["action"] for r in rows] == ["create"] * 4 + ["import"]
    assert check(engine).broken_at is None


def test_a_row_changed_behind_the_apps_back_is_named(engine, backend, busy_clinic):
    changed = busy_clinic[3]
    tamper(engine, backend, "UPDATE audit_log SET detail = 'nothing happened' WHERE id = :id", id=changed)
    result = check(engine)
    assert result.broken_at == changed and result.rows == 4
    assert "changed after it was written" in result.reason


@pytest.mark.parametrize("column", ["before", "after", "actor", "at", "patient", "entity_id"])
def test_a_change_to_any_recorded_field_breaks_the_chain(engine, backend, busy_clinic, column):
    changed = busy_clinic[4]
    values = {"before": "'{}'", "after": "'{}'", "actor": "'someone'", "patient": "'P2'", "entity_id": "999",
              "at": "at + interval '1 second'" if backend == "postgresql" else "'2020-01-01 00:00:00.000000'"}
    tamper(engine, backend, f"UPDATE audit_log SET {column} = {values[column]} WHERE id = :id", id=changed)
    assert check(engine).broken_at == changed


def test_a_removed_row_breaks_the_chain_at_the_row_after_it(engine, backend, busy_clinic):
    tamper(engine, backend, "DELETE FROM audit_log WHERE id = :id", id=busy_clinic[2])
    result = check(engine)
    assert result.broken_at == busy_clinic[3]
    assert f"does not follow row {busy_clinic[1]}" in result.reason


def test_a_row_rewritten_with_a_fresh_hash_breaks_the_chain_at_the_row_after_it(engine, backend, busy_clinic):
    # A forger who recomputes the changed row's own hash still breaks the next row's link.
    target = audit_rows(engine)[2]
    forged = target | {"detail": "forged"}
    tamper(engine, backend, "UPDATE audit_log SET detail = 'forged', row_hash = :h WHERE id = :id",
           h=audit_chain.chain_hash(target["prev_hash"], forged), id=target["id"])
    assert check(engine).broken_at == busy_clinic[3]


def test_an_empty_trail_verifies_with_no_rows(engine):
    assert (check(engine).rows, check(engine).broken_at, check(engine).head) == (0, None, GENESIS)


def test_writers_at_once_keep_one_unbroken_chain(database_url):
    engines = [make_engine(database_url) for _ in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def writer(number: int) -> None:
        try:
            start.wait()
            for save in range(8):
                record(engines[number], patient_id=f"W{number}", session_date=(date(2025, 1, 1) + timedelta(
                    days=save)).isoformat())
                if save % 3 == 0:
                    import_entries(engines[number], [dict(patient_id=f"I{number}", pain_before=40,
                                                          session_date=f"2025-03-{save + 1:02d}")])
        except BaseException as error:  # noqa: BLE001 — reported by the test
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    assert not errors, errors
    result = check(engines[0])
    assert result.broken_at is None, result.reason
    assert result.rows == len(engines) * (8 + 3 * 2)  # each save one row; each import a create and a file row
    for engine in engines:
        engine.dispose()


# -- refusals by the database itself ----------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_replace_into_cannot_overwrite_an_audit_row_on_sqlite(engine, busy_clinic):
    before = audit_rows(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(
            "REPLACE INTO audit_log (id, at, actor, action, entity, detail) "
            "VALUES (:id, '2025-01-01 00:00:00.000000', 'someone', 'login', 'user', 'rewritten')"),
            {"id": before[1]["id"]})
    assert audit_rows(engine) == before


def test_an_upsert_cannot_overwrite_an_audit_row(engine, busy_clinic):
    before = audit_rows(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO audit_log (id, at, actor, action, entity, detail) "
            "VALUES (:id, '2025-01-01 00:00:00+00', 'someone', 'login', 'user', 'rewritten') "
            "ON CONFLICT (id) DO UPDATE SET detail = excluded.detail"), {"id": before[1]["id"]})
    assert audit_rows(engine) == before


# -- the patient of every clinical row --------------------------------------------------------------------------------


def test_every_clinical_row_names_its_patient_and_the_others_none(engine, busy_clinic):
    rows = audit_rows(engine)
    clinical = [(r["action"], r["entity"], r["patient"]) for r in rows if r["entity"] in ("session", "side_effect")]
    assert clinical == [
        ("create", "session", "P1"), ("create", "session", "P2"),
        ("create", "session", "F1"), ("create", "session", "F1"), ("create", "session", "F2"),
        ("update", "session", "P1"), ("delete", "session", "P1"), ("restore", "session", "P1"),
        ("update", "side_effect", "P1"),
    ]
    assert {r["patient"] for r in rows if r["entity"] == "file"} == {None}


def test_an_update_by_reimport_names_its_patient(engine):
    import_entries(engine, CLINIC_FILE)
    changed = [CLINIC_FILE[0], CLINIC_FILE[1] | {"pain_before": 55}, CLINIC_FILE[2]]
    with write_session(engine) as session:
        importing.import_sessions(session, actor=ADMIN, entries=[session_input(**row) for row in changed],
                                  source="fixed.csv", take_file_values=True)
    update = [r for r in audit_rows(engine) if r["action"] == "update"]
    assert [(r["entity"], r["patient"]) for r in update] == [("session", "F1")]
    assert check(engine).broken_at is None


# -- the audit page's query -------------------------------------------------------------------------------------------


def listed(engine, **where) -> list[tuple]:
    with Session(engine) as session:
        frame = audit.events(session, actor=ADMIN, where=AuditFilter(**where))
    return list(zip(frame["action"], frame["entity"], frame["patient"].fillna(""), strict=True))


def test_the_trail_is_filtered_by_patient_user_action_and_dates(engine, busy_clinic):
    assert listed(engine, patient="P1") == [
        ("update", "side_effect", "P1"), ("restore", "session", "P1"), ("delete", "session", "P1"),
        ("update", "session", "P1"), ("create", "session", "P1"),
    ]
    assert listed(engine, patient="P1", action="update") == [("update", "side_effect", "P1"),
                                                             ("update", "session", "P1")]
    assert len(listed(engine, user=ADMIN.username)) == len(busy_clinic)
    assert listed(engine, user="someone else") == []
    today = date.today()
    assert len(listed(engine, since=today - timedelta(days=1), until=today)) == len(busy_clinic)
    assert listed(engine, since=today + timedelta(days=1)) == []
    assert listed(engine, until=today - timedelta(days=1)) == []


def test_a_patient_id_or_username_typed_in_another_case_finds_the_same_rows(engine, busy_clinic):
    assert listed(engine, patient="p1") == listed(engine, patient="P1") != []
    assert listed(engine, user=ADMIN.username.upper()) == listed(engine, user=ADMIN.username) != []
    assert listed(engine, patient="p") == []  # a patient id is still matched whole, not as the start of one


def test_changes_read_as_one_line_per_field_with_old_and_new_values(engine, busy_clinic):
    with Session(engine) as session:
        frame = audit.events(session, actor=ADMIN, where=AuditFilter(patient="P1", action="update"))
    assert frame["changes"].tolist() == ["reviewed: no → yes\nseverity: significant\nside effect: syncope",
                                         "pain before: 80 → 70"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL plans by its statistics
def test_the_filters_use_the_audit_indexes(engine):
    plans = {}
    for name, where in {"patient": AuditFilter(patient="P1"), "user": AuditFilter(user="x"),
                        "dates": AuditFilter(since=date(2025, 1, 1), until=date(2025, 1, 2))}.items():
        statement = audit._filtered(where, 500).compile(engine, compile_kwargs={"literal_binds": True})
        with engine.connect() as connection:
            plans[name] = " ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"))
    assert "ix_audit_patient" in plans["patient"] and "ix_audit_actor" in plans["user"]
    assert "ix_audit_at" in plans["dates"]


# -- the migration, and the command --------------------------------------------------------------------------------


@pytest.fixture
def empty_url(request, backend, tmp_path) -> Iterator[str]:
    """Yield the URL of an empty database (no schema at all) on the test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"old_{uuid.uuid4().hex[:12]}"
    yield new_postgres_database(server, name)
    admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


OLD_ROWS = (  # ids from the tables' own sequences, as the app of revision 0008 wrote them
    "INSERT INTO patients (pseudonym, created_at) VALUES ('OLD1', '2025-01-01 00:00:00+00')",
    "INSERT INTO episodes (patient_id, created_at) SELECT max(id), '2025-01-01 00:00:00+00' FROM patients",
    "INSERT INTO sessions (episode_id, session_number, session_date, technique, muscles, pain_scale, pain_before,"
    " notes, created_at) SELECT max(id), 1, '2025-01-01', 'deep', '', 'vas_100', 50, '', '2025-01-01 00:00:00+00'"
    " FROM episodes",
    "INSERT INTO side_effects (session_id, code, severity) SELECT max(id), 'syncope', 'significant' FROM sessions",
    "INSERT INTO audit_log (at, actor, action, entity, entity_id, after, detail) SELECT '2025-01-01 09:00:00+00',"
    " 'clin', 'create', 'session', max(id), '{\"pain_before\": 50.0}', '' FROM sessions",
    "INSERT INTO audit_log (at, actor, action, entity, entity_id, after, detail) SELECT '2025-01-01 09:01:00+00',"
    " 'mgr', 'update', 'side_effect', max(id), '{\"reviewed\": true}', '' FROM side_effects",
    "INSERT INTO audit_log (at, actor, action, entity, entity_id, after, detail) VALUES"
    " ('2025-01-01 09:02:00+00', 'clin', 'export', 'file', NULL, NULL, '1 sessions'),"
    " ('2025-01-01 09:03:00+00', 'clin', 'update', 'side_effect', 99, NULL, 'replaced since')",
)


def test_the_migration_chains_the_rows_written_before_it_and_fills_their_patients(empty_url):
    command.upgrade(alembic_config(empty_url), "0008")
    with engine_on(empty_url) as engine, engine.begin() as connection:
        for statement in OLD_ROWS:
            connection.execute(text(statement))
    migrate(empty_url)
    with engine_on(empty_url) as engine:
        rows = audit_rows(engine)
        assert [(r["entity"], r["patient"]) for r in rows] == [("session", "OLD1"), ("side_effect", "OLD1"),
                                                               ("file", None), ("side_effect", None)]
        assert check(engine) == audit_chain.ChainCheck(4, rows[-1]["row_hash"])
        record(engine, patient_id="NEW")  # the chain goes on from the migrated rows
        assert check(engine).rows == 5 and check(engine).broken_at is None
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET detail = 'x'"))  # the triggers are back on


def test_audit_verify_prints_one_line_with_the_rows_checked_and_fails_naming_the_broken_row(
        capsys, engine, backend, database_url, busy_clinic):
    assert main(["--url", database_url, "audit", "verify"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"audit trail intact: {len(busy_clinic)} rows checked; chain head ")
    tamper(engine, backend, "UPDATE audit_log SET actor = 'nobody' WHERE id = :id", id=busy_clinic[5])
    assert main(["--url", database_url, "audit", "verify"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: audit trail broken at row {busy_clinic[5]} ")


def test_a_clinician_reads_as_their_username_not_an_account_id(engine):
    import_entries(engine, [dict(patient_id="C1", session_date="2025-02-03", pain_before=80, clinician="clin_x")])
    with Session(engine) as session:
        frame = audit.events(session, actor=ADMIN, where=AuditFilter(patient="C1"))
    assert "clinician: clin_x" in frame["changes"].iloc[0].splitlines()
