"""Tests that every change is audited once, in its own transaction, in an append-only table; and soft deletes."""

from __future__ import annotations

import contextlib
import io
import json
import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from clinic.vocabulary import STRICTA_ITEMS
from db import accounts, audit, corrections, csv_format, exporting, importing, patient_search, queries
from db.access import Actor
from db.accounts import UNKNOWN_USER, LoginRefused, login
from db.engine import write_session
from db.models import AuditEvent, User
from db.writes import record_session
from tests.db.factories import ADMIN, session_input

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"

# For logic that is the same on every backend; whatever the database enforces runs on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def staff(engine) -> dict[str, Actor]:
    """Return a clinician and an admin with real accounts (so audit rows carry their ids)."""
    with write_session(engine) as session:
        for username, role in (("clin", "clinician"), ("adm", "admin")):
            accounts.add_user(session, actor=ADMIN, username=username, role=role, password=PASSWORD)
    with Session(engine) as session:
        users = session.scalars(select(User)).all()
        return {u.role: accounts.actor_for(u) for u in users}


def last_audit_id(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


def audit_since(engine: Engine, after_id: int) -> list[dict]:
    """Return the audit rows added after `after_id`, oldest first, before and after parsed from JSON."""
    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id)).all()
        return [
            {"action": e.action, "entity": e.entity, "entity_id": e.entity_id, "actor": e.actor,
             "actor_id": e.actor_id, "before": json.loads(e.before) if e.before else None,
             "after": json.loads(e.after) if e.after else None, "detail": e.detail}
            for e in events
        ]


def record(engine: Engine, actor: Actor, **fields) -> int:
    with write_session(engine) as session:
        return record_session(session, actor=actor, entry=session_input(**fields)).id


def everything(engine: Engine) -> dict[str, list]:
    """Return every row of every table: to show a failed unit of work left no trace at all."""
    with engine.connect() as connection:
        tables = sorted(set(inspect(connection).get_table_names()) - {"alembic_version"})
        return {t: sorted(map(repr, connection.execute(text(f"SELECT * FROM {t}")).all())) for t in tables}


# -- one audit row per change, with the values before and after ------------------------------------------------------


def test_recording_a_session_writes_one_create_row_with_every_value(engine, staff):
    since = last_audit_id(engine)
    session_id = record(
        engine, staff["clinician"], patient_id="P1", session_date="2025-01-10", pain_before=80, pain_after=60,
        muscles=["upper_trapezius", "levator_scapulae"], twitch_response=True, notes="first visit",
        side_effects=[("bruising", "mild"), ("soreness", "mild")],
    )
    assert audit_since(engine, since) == [{
        "action": "create", "entity": "session", "entity_id": session_id, "actor": "clin",
        "actor_id": staff["clinician"].id, "before": None, "detail": "",
        "after": {"patient_id": "P1", "episode": 1, "session_number": 1, "session_date": "2025-01-10",
                  "technique": "deep",
                  "muscles": "upper_trapezius;levator_scapulae", "twitch_response": True, "pain_scale": "vas_100",
                  "pain_before": 80.0, "pain_after": 60.0, "notes": "first visit",
                  "side_effects": "bruising:mild;soreness:mild", **dict.fromkeys(STRICTA_ITEMS)},
    }]


def test_a_correction_writes_one_update_row_with_only_the_changed_values_before_and_after(engine, staff):
    session_id = record(engine, staff["clinician"], pain_before=80, notes="as typed")
    since = last_audit_id(engine)
    with write_session(engine) as session:
        corrections.correct_session(session, actor=staff["clinician"], session_id=session_id,
                                    entry=session_input(pain_before=60, notes="as meant"))
    assert audit_since(engine, since) == [{
        "action": "update", "entity": "session", "entity_id": session_id, "actor": "clin",
        "actor_id": staff["clinician"].id, "detail": "",
        "before": {"pain_before": 80.0, "notes": "as typed"}, "after": {"pain_before": 60.0, "notes": "as meant"},
    }]


def test_a_correction_that_changes_nothing_writes_no_audit_row(engine, staff):
    session_id = record(engine, staff["clinician"], pain_before=80)
    since = last_audit_id(engine)
    with write_session(engine) as session:
        corrections.correct_session(session, actor=staff["clinician"], session_id=session_id,
                                    entry=session_input(pain_before=80))
    assert audit_since(engine, since) == []


def test_a_delete_writes_one_row_with_the_values_before_and_the_reason(engine, staff):
    session_id = record(engine, staff["clinician"], pain_before=80, side_effects=[("bruising", "mild")])
    since = last_audit_id(engine)
    with write_session(engine) as session:
        corrections.delete_session(session, actor=staff["clinician"], session_id=session_id,
                                   reason="  recorded for the wrong patient ")
    [row] = audit_since(engine, since)
    assert row == {
        "action": "delete", "entity": "session", "entity_id": session_id, "actor": "clin",
        "actor_id": staff["clinician"].id, "after": None, "detail": "recorded for the wrong patient",
        "before": {"session_date": "2025-01-10", "technique": "deep", "muscles": "", "twitch_response": None,
                   "pain_scale": "vas_100", "pain_before": 80.0, "pain_after": None, "notes": "",
                   "side_effects": "bruising:mild", **dict.fromkeys(STRICTA_ITEMS)},
    }


def test_a_restore_writes_one_row_with_the_values_after(engine, staff):
    session_id = record(engine, staff["clinician"], pain_before=80)
    with write_session(engine) as session:
        corrections.delete_session(session, actor=staff["clinician"], session_id=session_id, reason="oops")
    since = last_audit_id(engine)
    with write_session(engine) as session:
        corrections.restore_session(session, actor=staff["admin"], session_id=session_id)
    [row] = audit_since(engine, since)
    assert (row["action"], row["entity_id"], row["actor"], row["before"]) == ("restore", session_id, "adm", None)
    assert row["after"]["pain_before"] == 80.0 and row["after"]["session_date"] == "2025-01-10"


def import_entries(*rows: dict) -> list:
    return [session_input(**row) for row in rows]


CLINIC_FILE = [
    dict(patient_id="P1", session_date="2025-02-03", pain_before=80, notes="one"),
    dict(patient_id="P1", session_date="2025-02-10", pain_before=60, side_effects=[("bruising", "mild")]),
    dict(patient_id="P2", session_date="2025-02-04", technique="superficial", pain_before=50),
]


def test_an_import_writes_one_create_row_per_new_session_and_one_row_for_the_file(engine, staff):
    since = last_audit_id(engine)
    with write_session(engine) as session:
        importing.import_sessions(session, actor=staff["clinician"], entries=import_entries(*CLINIC_FILE),
                                  source="clinic.csv")
    rows = audit_since(engine, since)
    assert [(r["action"], r["entity"]) for r in rows] == [("create", "session")] * 3 + [("import", "file")]
    assert rows[-1]["detail"] == "clinic.csv: 3 added, 0 updated, 0 unchanged"
    assert {r["actor"] for r in rows} == {"clin"}
    with Session(engine) as session:
        stored = queries.all_sessions(session, actor=ADMIN).set_index("session_id")
    for row, source in zip(rows[:3], CLINIC_FILE, strict=True):
        assert row["before"] is None
        assert stored.loc[row["entity_id"], "session_date"].isoformat() == source["session_date"]
        assert row["after"]["session_date"] == source["session_date"]
        assert row["after"]["pain_before"] == float(source["pain_before"])
        assert row["after"]["side_effects"] == ";".join(f"{c}:{s}" for c, s in source.get("side_effects", []))
    assert rows[0]["after"]["notes"] == "one"


def test_reimporting_audits_the_file_only_and_a_changed_row_as_one_update(engine, staff):
    with write_session(engine) as session:
        importing.import_sessions(session, actor=staff["clinician"], entries=import_entries(*CLINIC_FILE),
                                  source="clinic.csv")
    since = last_audit_id(engine)
    with write_session(engine) as session:
        importing.import_sessions(session, actor=staff["clinician"], entries=import_entries(*CLINIC_FILE),
                                  source="clinic.csv")
    [same] = audit_since(engine, since)
    assert (same["action"], same["detail"]) == ("import", "clinic.csv: 0 added, 0 updated, 3 unchanged")

    changed = [CLINIC_FILE[0], CLINIC_FILE[1] | {"pain_before": 55}, CLINIC_FILE[2]]
    since = last_audit_id(engine)
    with write_session(engine) as session:
        importing.import_sessions(session, actor=staff["clinician"], entries=import_entries(*changed),
                                  source="fixed.csv")
    update, file_row = audit_since(engine, since)
    with Session(engine) as session:
        stored = queries.all_sessions(session, actor=ADMIN)
    second = int(stored.loc[stored["session_date"].astype(str) == "2025-02-10", "session_id"].iloc[0])
    assert update == {
        "action": "update", "entity": "session", "entity_id": second, "actor": "clin",
        "actor_id": staff["clinician"].id, "before": {"pain_before": 60.0}, "after": {"pain_before": 55.0},
        "detail": "import fixed.csv",
    }
    assert (file_row["action"], file_row["detail"]) == ("import", "fixed.csv: 0 added, 1 updated, 2 unchanged")


def test_an_export_writes_one_row_saying_how_many_sessions_left(engine, staff):
    record(engine, staff["clinician"], session_date="2025-01-10")
    record(engine, staff["clinician"], session_date="2025-01-17")
    since = last_audit_id(engine)
    with write_session(engine) as session:
        table = exporting.export_table(session, actor=staff["clinician"])
    assert len(table) == 2
    assert audit_since(engine, since) == [{
        "action": "export", "entity": "file", "entity_id": None, "actor": "clin",
        "actor_id": staff["clinician"].id, "before": None, "after": None, "detail": "2 sessions",
    }]


def test_logins_failed_logins_and_back_offs_write_one_row_each(engine, staff):
    clin = staff["clinician"]
    attempts = [
        ("clin", PASSWORD, ("login", clin.id, "clin", clin.id, "")),
        ("clin", "wrong", ("login_failed", clin.id, "clin", clin.id, "wrong password")),
        ("who_is_this", PASSWORD, ("login_failed", None, UNKNOWN_USER, None, "unknown user")),
    ]
    for username, password, expected in attempts:
        since = last_audit_id(engine)
        with contextlib.suppress(LoginRefused):
            login(engine, username, password, now=lambda: T0)
        rows = audit_since(engine, since)
        assert [(r["action"], r["entity_id"], r["actor"], r["actor_id"], r["detail"]) for r in rows] == [expected]
        assert rows[0]["entity"] == "user" and rows[0]["before"] is rows[0]["after"] is None

    for _ in range(4):  # one failure so far; from the fifth in a row, the next check waits first
        with pytest.raises(LoginRefused):
            login(engine, "clin", "wrong", now=lambda: T0, sleep=lambda seconds: None)
    since = last_audit_id(engine)
    with pytest.raises(LoginRefused):
        login(engine, "clin", "wrong", now=lambda: T0, sleep=lambda seconds: None)
    login(engine, "clin", PASSWORD, now=lambda: T0, sleep=lambda seconds: None)
    assert [r["detail"] for r in audit_since(engine, since)] == [
        "wrong password after a 1 s back-off; next check waits 2 s", "after a 2 s back-off"]


def test_account_changes_write_one_row_each_with_only_the_fields_they_changed_and_never_a_password(engine, staff):
    # The trail says what an admin changed ("role: manager → clinician"), not every field of the account unchanged.
    admin = staff["admin"]
    since = last_audit_id(engine)
    with write_session(engine) as session:
        accounts.add_user(session, actor=admin, username="mia", role="manager", password=PASSWORD,
                          email="mia@Clinic.example")
    with write_session(engine) as session:
        accounts.set_role(session, actor=admin, username="mia", role="clinician")
    with write_session(engine) as session:
        accounts.set_active(session, actor=admin, username="mia", active=False)
    with write_session(engine) as session:
        accounts.set_active(session, actor=admin, username="mia", active=False)  # again: nothing changes
    with write_session(engine) as session:
        accounts.set_active(session, actor=admin, username="mia", active=True)
    with write_session(engine) as session:
        accounts.reset_password(session, actor=admin, username="mia", password="another long password")
    with write_session(engine) as session:
        accounts.set_needling_background(session, actor=admin, username="mia", training="Level 2 (2019)", years=3)
    with write_session(engine) as session:
        accounts.set_needling_background(session, actor=admin, username="mia", training="Level 2 (2019)", years=4)
    with Session(engine) as session:
        mia = session.scalars(select(User).where(User.username == "mia")).one().id
    rows = audit_since(engine, since)
    public = {"username": "mia", "role": "manager", "email": "mia@clinic.example", "patient_id": None}
    assert [(r["action"], r["entity"], r["entity_id"], r["actor"], r["before"], r["after"], r["detail"])
            for r in rows] == [
        ("user_add", "user", mia, "adm", None, public | {"is_active": True}, ""),
        ("update", "user", mia, "adm", {"role": "manager"}, {"role": "clinician"}, ""),
        ("user_disable", "user", mia, "adm", {"is_active": True}, {"is_active": False}, ""),
        ("user_disable", "user", mia, "adm", None, None, "no field changed"),
        ("user_disable", "user", mia, "adm", {"is_active": False}, {"is_active": True}, ""),
        ("user_password_reset", "user", mia, "adm", None, None, ""),
        ("update", "user", mia, "adm", {"needling_training": None, "years_practice": None},
         {"needling_training": "Level 2 (2019)", "years_practice": 3}, "needling background"),
        ("update", "user", mia, "adm", {"years_practice": 3}, {"years_practice": 4}, "needling background"),
    ]
    flat = json.dumps(rows)
    assert "argon2" not in flat and PASSWORD not in flat and "another long password" not in flat
    with Session(engine) as session:  # as the audit page shows them
        shown = audit.events(session, actor=ADMIN, entity="user", entity_id=mia)["changes"].tolist()
    assert shown[:7] == ["years practice: 3 → 4", "needling training: (blank) → Level 2 (2019)\nyears practice: "
                         "(blank) → 3", "", "active: no → yes", "", "active: yes → no", "role: manager → clinician"]


def test_the_audit_trail_reads_newest_first_and_by_record(engine, staff):
    first = record(engine, staff["clinician"], session_date="2025-01-10")
    second = record(engine, staff["clinician"], session_date="2025-01-17")
    with Session(engine) as session:
        newest_first = audit.events(session, actor=ADMIN)
        one = audit.events(session, actor=ADMIN, entity="session", entity_id=first)
    assert list(newest_first["entity_id"][:2]) == [second, first]
    assert list(newest_first["id"]) == sorted(newest_first["id"], reverse=True)
    assert list(one["action"]) == ["create"] and list(one["entity_id"]) == [first]


def test_the_audit_csv_disarms_formula_like_cells_and_reads_back_exactly(engine, staff):
    # A patient id may start with "-", a reason with "=" or an apostrophe: a spreadsheet must show them as text.
    reasons = {"=HYPERLINK(\"http://x\")": "-12", "'twas the wrong day": "P1"}
    for reason, patient in reasons.items():
        session_id = record(engine, staff["clinician"], patient_id=patient)
        with write_session(engine) as session:
            corrections.delete_session(session, actor=staff["clinician"], session_id=session_id, reason=reason)
    with write_session(engine) as session:
        text = audit.export_csv(session, actor=ADMIN, where=audit.AuditFilter(action="delete"), limit=10)
    written = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert set(written["detail"]) == {"'=HYPERLINK(\"http://x\")", "''twas the wrong day"}
    assert "'-12" in set(written["patient"])
    assert {csv_format.unquoted(cell) for cell in written["detail"]} == set(reasons)


# -- the same transaction: a failed unit of work leaves neither the change nor its audit row -------------------------


class Abandoned(Exception):
    """Raised inside a unit of work after the change and its audit row, to make it fail."""


def changes(staff: dict[str, Actor], live: int, deleted: int) -> dict:
    clin, adm = staff["clinician"], staff["admin"]
    return {
        "record_session": lambda s: record_session(s, actor=clin, entry=session_input(session_date="2025-03-01")),
        "correct_session": lambda s: corrections.correct_session(
            s, actor=clin, session_id=live, entry=session_input(pain_before=10)),
        "delete_session": lambda s: corrections.delete_session(s, actor=clin, session_id=live, reason="oops"),
        "restore_session": lambda s: corrections.restore_session(s, actor=adm, session_id=deleted),
        "import_sessions": lambda s: importing.import_sessions(
            s, actor=clin, entries=import_entries(*CLINIC_FILE), source="clinic.csv"),
        "export_table": lambda s: exporting.export_table(s, actor=clin),
        "add_user": lambda s: accounts.add_user(s, actor=adm, username="mia", role="manager", password=PASSWORD),
        "set_active": lambda s: accounts.set_active(s, actor=adm, username="clin", active=False),
        "reset_password": lambda s: accounts.reset_password(
            s, actor=adm, username="clin", password="a new long password"),
    }


def test_a_unit_of_work_that_fails_after_its_change_is_audited_leaves_neither(engine, staff):
    live = record(engine, staff["clinician"], session_date="2025-01-10", pain_before=80)
    deleted = record(engine, staff["clinician"], session_date="2025-01-17", pain_before=70)
    with write_session(engine) as session:
        corrections.delete_session(session, actor=staff["clinician"], session_id=deleted, reason="twice")
    before = everything(engine)
    for name, change in changes(staff, live, deleted).items():
        with pytest.raises(Abandoned), write_session(engine) as session:
            audited = session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
            change(session)
            assert session.execute(text("SELECT count(*) FROM audit_log")).scalar_one() > audited, name
            raise Abandoned(name)
        assert everything(engine) == before, f"{name} left a trace"


def test_a_database_error_after_the_change_rolls_back_the_change_and_its_audit_row(engine, staff):
    live = record(engine, staff["clinician"], pain_before=80)
    before = everything(engine)
    with pytest.raises(IntegrityError), write_session(engine) as session:
        corrections.correct_session(session, actor=staff["clinician"], session_id=live,
                                    entry=session_input(pain_before=20))
        record_session(session, actor=staff["clinician"], entry=session_input(patient_id="P2"))
        session.add(User(username="clin", role="clinician"))  # taken: the unique key fails at the flush
        session.flush()
    assert everything(engine) == before


def test_a_change_whose_audit_row_the_database_refuses_is_not_stored(engine, staff):
    before = everything(engine)
    with pytest.raises(IntegrityError), write_session(engine) as session:
        record_session(session, actor=staff["clinician"], entry=session_input(patient_id="P2"))
        audit.record(session, staff["clinician"], "tamper", "session")  # not an audit action: CHECK fails
    assert everything(engine) == before


# -- append-only -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET detail = 'rewritten'", "UPDATE audit_log SET actor = 'someone else' WHERE id = :id",
     "DELETE FROM audit_log", "DELETE FROM audit_log WHERE id = :id"],
)
def test_the_database_refuses_to_update_or_delete_an_audit_row(engine, staff, statement):
    record(engine, staff["clinician"])
    before = everything(engine)["audit_log"]
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement), {"id": last_audit_id(engine)})
    assert everything(engine)["audit_log"] == before


def test_emptying_the_whole_audit_trail_at_once_is_refused(engine, staff, backend):
    # PostgreSQL's TRUNCATE skips row triggers (migration 0005 adds a statement trigger); SQLite has no TRUNCATE,
    # and its whole-table DELETE is what would empty it.
    statement = "TRUNCATE audit_log" if backend == "postgresql" else "DELETE FROM audit_log"
    record(engine, staff["clinician"])
    before = everything(engine)["audit_log"]
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert everything(engine)["audit_log"] == before


def test_the_orm_cannot_change_or_remove_an_audit_row_either(engine, staff):
    record(engine, staff["clinician"])
    before = everything(engine)["audit_log"]
    with pytest.raises(DBAPIError, match="append-only"), write_session(engine) as session:
        session.scalars(select(AuditEvent)).first().detail = "rewritten"
    with pytest.raises(DBAPIError, match="append-only"), write_session(engine) as session:
        session.delete(session.scalars(select(AuditEvent)).first())
    assert everything(engine)["audit_log"] == before


# -- soft delete: gone from every figure, back on restore -----------------------------------------------------------


def clinic_views(engine: Engine, patient_id: int) -> dict[str, object]:
    """Return everything a chart, figure or export is drawn from."""
    with Session(engine) as session:
        moments = queries.technique_moments(session, actor=ADMIN)
        safety = queries.safety_events(session, actor=ADMIN)
        return {
            "patient_sessions": queries.patient_sessions(session, actor=ADMIN, patient_id=patient_id),
            "episodes": queries.episodes(session, actor=ADMIN, patient_id=patient_id),
            "patients": patient_search.patients(session, actor=ADMIN),
            "count_sessions": queries.count_sessions(session, actor=ADMIN),
            "technique_moments": moments,
            "episode_last_pain": queries.episode_last_pain(session, actor=ADMIN).sort_values("episode_id",
                                                                                             ignore_index=True),
            "safety_events": safety.events.sort_values(["technique", "code", "severity"], ignore_index=True),
            "sessions_per_technique": safety.sessions.sort_values("technique", ignore_index=True),
            "serious_events": queries.serious_events(session, actor=ADMIN),
            "outcome_sessions": queries.outcome_sessions(session, actor=ADMIN),
            "export": exporting.export_table(session, actor=ADMIN),  # not committed: the audit row is dropped
        }


def same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return a.reset_index(drop=True).equals(b.reset_index(drop=True))
    return a == b


@pytest.fixture
def small_clinic(engine, staff) -> dict:
    """Three sessions of P1 (the middle one with syncope) and two of P2; return their ids."""
    clin = staff["clinician"]
    p1 = [
        record(engine, clin, patient_id="P1", session_date="2025-01-06", pain_before=80),
        record(engine, clin, patient_id="P1", session_date="2025-01-13", pain_before=70,
               side_effects=[("syncope", "significant")], notes="fainted"),
        record(engine, clin, patient_id="P1", session_date="2025-01-20", pain_before=40),
    ]
    p2 = [record(engine, clin, patient_id="P2", session_date="2025-01-07", pain_before=50),
          record(engine, clin, patient_id="P2", session_date="2025-01-14", pain_before=45)]
    with Session(engine) as session:
        patient = int(patient_search.patients(session, actor=ADMIN).set_index("patient_id").loc["P1", "id"])
    return {"p1": p1, "p2": p2, "patient": patient}


def test_a_soft_deleted_session_leaves_every_list_figure_and_export_and_restore_brings_it_back(
    engine, staff, small_clinic
):
    original = clinic_views(engine, small_clinic["patient"])
    middle = small_clinic["p1"][1]
    with write_session(engine) as session:
        corrections.delete_session(session, actor=staff["clinician"], session_id=middle, reason="wrong patient")
    gone = clinic_views(engine, small_clinic["patient"])

    sessions = gone["patient_sessions"]
    assert middle not in set(sessions["session_id"])
    assert list(sessions["session_number"]) == [1, 2]
    assert list(sessions["session_date"].astype(str)) == ["2025-01-06", "2025-01-20"]
    assert list(gone["episodes"]["sessions"]) == [2]
    assert gone["patients"].set_index("patient_id").loc["P1", "sessions"] == 2
    assert gone["count_sessions"] == original["count_sessions"] - 1 == 4
    assert middle not in set(gone["outcome_sessions"]["session_id"])
    assert len(gone["export"]) == 4 and "2025-01-13" not in set(gone["export"]["session_date"])
    deep = gone["technique_moments"].set_index("session_number")
    assert deep["n"].to_dict() == {1: 2, 2: 2} and deep.loc[2, "sum_pain"] == 40 + 45
    assert gone["sessions_per_technique"].set_index("technique")["sessions"].to_dict() == {"deep": 4}
    assert "syncope" not in set(gone["safety_events"]["code"])
    assert gone["serious_events"].empty

    with write_session(engine) as session:
        corrections.restore_session(session, actor=staff["admin"], session_id=middle)
    back = clinic_views(engine, small_clinic["patient"])
    for name, value in original.items():
        assert same(back[name], value), f"{name} differs after the restore"


def numbers(engine: Engine, patient_id: int) -> dict[str, int]:
    with Session(engine) as session:
        sessions = queries.patient_sessions(session, actor=ADMIN, patient_id=patient_id)
    return dict(zip(sessions["session_date"].astype(str), sessions["session_number"], strict=True))


def test_session_numbers_stay_1_to_n_in_date_order_through_deletes_new_sessions_and_restores(engine, staff):
    clin, adm = staff["clinician"], staff["admin"]
    first = record(engine, clin, session_date="2025-01-06")
    record(engine, clin, session_date="2025-01-13")
    third = record(engine, clin, session_date="2025-01-20")
    with Session(engine) as session:
        patient = int(patient_search.patients(session, actor=ADMIN)["id"].iloc[0])
    for session_id in (first, third):
        with write_session(engine) as session:
            corrections.delete_session(session, actor=clin, session_id=session_id, reason="test")
    assert numbers(engine, patient) == {"2025-01-13": 1}
    record(engine, clin, session_date="2025-01-27")
    assert numbers(engine, patient) == {"2025-01-13": 1, "2025-01-27": 2}
    with write_session(engine) as session:
        corrections.restore_session(session, actor=adm, session_id=third)
    assert numbers(engine, patient) == {"2025-01-13": 1, "2025-01-20": 2, "2025-01-27": 3}
    with write_session(engine) as session:
        corrections.restore_session(session, actor=adm, session_id=first)
    assert numbers(engine, patient) == {"2025-01-06": 1, "2025-01-13": 2, "2025-01-20": 3, "2025-01-27": 4}


def test_reimporting_a_file_leaves_a_session_deleted_in_the_app_deleted(engine, staff):
    with write_session(engine) as session:
        importing.import_sessions(session, actor=staff["clinician"], entries=import_entries(*CLINIC_FILE))
    with Session(engine) as session:
        first = int(queries.all_sessions(session, actor=ADMIN)["session_id"].iloc[0])
    with write_session(engine) as session:
        corrections.delete_session(session, actor=staff["clinician"], session_id=first, reason="duplicate")
    with write_session(engine) as session:
        result = importing.import_sessions(session, actor=staff["clinician"], entries=import_entries(*CLINIC_FILE))
    assert (result.inserted, result.deleted) == (0, 1)
    with Session(engine) as session:
        assert queries.count_sessions(session, actor=ADMIN) == 2


# -- a session's history in plain words ------------------------------------------------------------------------------

WHEN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"


@sqlite_only
def test_a_sessions_history_says_who_recorded_corrected_deleted_and_restored_it_in_plain_words(engine, staff):
    clin, adm = staff["clinician"], staff["admin"]
    session_id = record(engine, clin, pain_before=80)
    with write_session(engine) as session:
        corrections.correct_session(session, actor=clin, session_id=session_id, entry=session_input(pain_before=60))
    with write_session(engine) as session:
        corrections.correct_session(session, actor=clin, session_id=session_id,
                                    entry=session_input(pain_before=60, pain_after=30, notes="better"))
    with write_session(engine) as session:
        corrections.delete_session(session, actor=clin, session_id=session_id, reason="wrong patient")
    with write_session(engine) as session:
        corrections.restore_session(session, actor=adm, session_id=session_id)
    with Session(engine) as session:
        history = corrections.session_history(session, actor=clin, session_id=session_id)
    expected = [
        rf"recorded by clin on {WHEN}",
        rf"corrected pain before from 80\.0 to 60\.0 by clin on {WHEN}",
        rf"corrected notes from \(blank\) to better; pain after from \(blank\) to 30\.0 by clin on {WHEN}",
        rf"deleted by clin on {WHEN}: wrong patient",
        rf"restored by adm on {WHEN}",
    ]
    assert len(history) == len(expected)
    for line, pattern in zip(history, expected, strict=True):
        assert re.fullmatch(pattern, line), line
    assert history[1].split(" on ")[1][:10] == datetime.now(UTC).date().isoformat()
