"""Writes of what patients report (db.patient_reports): who may write what, audited, one transaction, history kept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from db import patient_reports as reports
from db.access import AccessDenied, Actor
from db.engine import write_session
from db.models import AuditEvent, Patient
from db.report_models import (
    DiaryAnnotation,
    DiaryEntry,
    DiaryEntryVersion,
    PatientSideEffect,
    PgicResponse,
    PsfsActivity,
    PsfsRating,
)
from tests.db.factories import record

SESSION_DAY = "2025-01-10"  # recorded later (imported): the session took place at noon UTC of its date
NOON = datetime(2025, 1, 10, 12, tzinfo=UTC)
CLINICIAN = Actor(id=None, username="clin", role="clinician")
MANAGER = Actor(id=None, username="boss", role="manager")
ADMIN = Actor(id=None, username="root", role="admin")


@dataclass
class Clinic:
    engine: Engine
    session_a: int  # patient A's session
    session_b: int  # patient B's session
    episode_a: int
    a: Actor  # patient A's account
    b: Actor  # patient B's account


@pytest.fixture
def clinic(engine) -> Clinic:
    first = record(engine, patient_id="PA", session_date=SESSION_DAY)
    second = record(engine, patient_id="PB", session_date=SESSION_DAY)
    with Session(engine) as session:
        ids = dict(session.execute(select(Patient.pseudonym, Patient.id)).all())
    return Clinic(engine, first["id"], second["id"], first["episode_id"],
                  Actor(id=None, username="pa", role="patient", patient_id=ids["PA"]),
                  Actor(id=None, username="pb", role="patient", patient_id=ids["PB"]))


def write(engine: Engine, function, **arguments):
    """Run one write in its own unit of work; return the new row's id (or None)."""
    with write_session(engine) as session:
        row = function(session, **arguments)
        return getattr(row, "id", None)


def count(engine: Engine, table) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(table))


def audit_rows(engine: Engine, entity: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.entity == entity).order_by(AuditEvent.id)))


def entry_of_a(clinic: Clinic, hours: float = 24, **values) -> int:
    arguments = {"soreness": 5, "effects": [("bruising", "mild")]} | values
    return write(clinic.engine, reports.record_diary_entry, actor=clinic.a, session_id=clinic.session_a,
                 now=NOON + timedelta(hours=hours), **arguments)


def test_a_patient_records_an_entry_in_the_window_its_real_time_falls_in_audited(clinic):
    late = entry_of_a(clinic, hours=40)  # the 24 h entry made at 40 h belongs to the 48 h window
    with Session(clinic.engine) as session:
        entry = session.get(DiaryEntry, late)
        assert (entry.window_h, entry.soreness, entry.recorded_at) == (48, 5, NOON + timedelta(hours=40))
        assert session.scalars(select(PatientSideEffect.code)).all() == ["bruising"]
    [row] = audit_rows(clinic.engine, "diary_entry")
    assert (row.action, row.actor, row.patient) == ("create", "pa", "PA")
    assert json.loads(row.after)["side_effects"] == "bruising:mild"


@pytest.mark.parametrize(("hours", "expected"), [(2.9, "not due yet"), (96, "is closed")])
def test_an_entry_outside_the_diary_hours_is_refused(clinic, hours, expected):
    with pytest.raises(ValueError, match=f"^window_h: .*{expected}"):
        entry_of_a(clinic, hours=hours)
    assert count(clinic.engine, DiaryEntry) == 0


def test_a_window_given_must_be_the_one_the_time_falls_in_and_is_filled_once(clinic):
    with pytest.raises(ValueError, match="^window_h: an entry 30 h after the session belongs to the 24 h window"):
        entry_of_a(clinic, hours=30, window_h=48)
    entry_of_a(clinic, hours=30, window_h=24)
    with pytest.raises(ValueError, match="^window_h: the 24 h entry of this session is recorded already"):
        entry_of_a(clinic, hours=31)


@pytest.mark.parametrize(("values", "message"), [
    ({"soreness": 11}, "^soreness: must be from 0 to 10, not 11$"),
    ({"soreness": 2.5}, "^soreness: must be a whole number"),
    ({"effects": [("pneumothorax", "mild")]}, "^side_effects: 'pneumothorax' is not on the patient's checklist$"),
    ({"effects": [("bruising", "awful")]}, "^side_effects: 'awful' is not a severity"),
    ({"effects": [("bruising", "mild"), ("bruising", "serious")]}, "^side_effects: each side effect once"),
    ({"effects": [("other", "mild")]}, "^note: say what the other side effect was$"),
    ({"note": "x" * 1001}, "^note: "),
])
def test_bad_input_is_refused_in_one_line_naming_the_field_and_nothing_is_written(clinic, values, message):
    with pytest.raises(ValueError, match=message):
        entry_of_a(clinic, **values)
    assert (count(clinic.engine, DiaryEntry), count(clinic.engine, PatientSideEffect)) == (0, 0)
    assert audit_rows(clinic.engine, "diary_entry") == []


def test_a_patient_cannot_write_an_entry_for_another_patients_session(clinic):
    with pytest.raises(AccessDenied):
        write(clinic.engine, reports.record_diary_entry, actor=clinic.b, session_id=clinic.session_a, soreness=3,
              now=NOON + timedelta(hours=24))
    assert count(clinic.engine, DiaryEntry) == 0


@pytest.mark.parametrize("actor", [CLINICIAN, MANAGER, None])
def test_nobody_but_the_patient_and_an_importing_admin_writes_a_diary(clinic, actor):
    with pytest.raises(AccessDenied):
        write(clinic.engine, reports.record_diary_entry, actor=actor, session_id=clinic.session_a, soreness=3,
              now=NOON + timedelta(hours=24))
    write(clinic.engine, reports.record_diary_entry, actor=ADMIN, session_id=clinic.session_a, soreness=3,
          now=NOON + timedelta(hours=24))
    assert count(clinic.engine, DiaryEntry) == 1


def test_a_correction_within_24_hours_keeps_the_values_before_as_history(clinic):
    entry_id = entry_of_a(clinic, hours=24)
    corrected_at = NOON + timedelta(hours=47)
    write(clinic.engine, reports.correct_diary_entry, actor=clinic.a, entry_id=entry_id, soreness=3,
          note="less than I said", effects=[("headache", "mild")], now=corrected_at)
    with Session(clinic.engine) as session:
        entry = session.get(DiaryEntry, entry_id)
        assert (entry.soreness, entry.note, entry.window_h, entry.corrected_at) == (3, "less than I said", 24,
                                                                                    corrected_at)
        assert entry.recorded_at == NOON + timedelta(hours=24)  # the real time of the entry stays
        [old] = session.scalars(select(DiaryEntryVersion)).all()
        assert (old.version, old.soreness, old.note, old.side_effects) == (1, 5, "", "bruising:mild")
        assert session.scalars(select(PatientSideEffect.code)).all() == ["headache"]
    update = audit_rows(clinic.engine, "diary_entry")[-1]
    assert update.action == "update"
    assert json.loads(update.before) == {"soreness": 5, "note": "", "side_effects": "bruising:mild"}


def test_a_correction_after_24_hours_is_refused_and_changes_nothing(clinic):
    entry_id = entry_of_a(clinic, hours=24)
    with pytest.raises(ValueError, match="^entry_id: an entry can be corrected for 24 h"):
        write(clinic.engine, reports.correct_diary_entry, actor=clinic.a, entry_id=entry_id, soreness=1,
              now=NOON + timedelta(hours=48, seconds=1))
    with Session(clinic.engine) as session:
        assert session.get(DiaryEntry, entry_id).soreness == 5
    assert count(clinic.engine, DiaryEntryVersion) == 0


@pytest.mark.parametrize("who", ["b", "clinician", "admin", "manager"])
def test_nobody_else_corrects_a_patients_entry(clinic, who):
    entry_id = entry_of_a(clinic)
    actor = {"b": clinic.b, "clinician": CLINICIAN, "admin": ADMIN, "manager": MANAGER}[who]
    with pytest.raises(AccessDenied):
        write(clinic.engine, reports.correct_diary_entry, actor=actor, entry_id=entry_id, soreness=0,
              now=NOON + timedelta(hours=25))
    assert count(clinic.engine, DiaryEntryVersion) == 0


def test_an_annotation_is_kept_beside_the_entry_and_never_changes_it(clinic):
    entry_id = entry_of_a(clinic)
    with Session(clinic.engine) as session:
        before = session.get(DiaryEntry, entry_id).model_dump()
    write(clinic.engine, reports.annotate_entry, actor=CLINICIAN, entry_id=entry_id, text="Normal after deep DN")
    with Session(clinic.engine) as session:
        assert session.get(DiaryEntry, entry_id).model_dump() == before
        assert session.scalars(select(DiaryAnnotation.text)).all() == ["Normal after deep DN"]
    assert audit_rows(clinic.engine, "diary_annotation")[0].patient == "PA"
    for actor in (clinic.a, MANAGER):
        with pytest.raises(AccessDenied):
            write(clinic.engine, reports.annotate_entry, actor=actor, entry_id=entry_id, text="mine")
    with pytest.raises(ValueError, match="^text: must not be empty$"):
        write(clinic.engine, reports.annotate_entry, actor=CLINICIAN, entry_id=entry_id, text="  ")


def test_pgic_is_answered_by_the_patient_or_entered_on_their_behalf_and_says_by_whom(clinic):
    write(clinic.engine, reports.record_pgic, actor=clinic.a, episode_id=clinic.episode_a, score=2)
    write(clinic.engine, reports.record_pgic, actor=CLINICIAN, episode_id=clinic.episode_a, score=1,
          before_session_id=clinic.session_a)
    with Session(clinic.engine) as session:
        answers = session.execute(select(PgicResponse.score, PgicResponse.entered_by, PgicResponse.before_session_id)
                                  .order_by(PgicResponse.id)).all()
    assert [tuple(a) for a in answers] == [(2, "patient", None), (1, "clinician", clinic.session_a)]
    for actor in (clinic.b, MANAGER):
        with pytest.raises(AccessDenied):
            write(clinic.engine, reports.record_pgic, actor=actor, episode_id=clinic.episode_a, score=4)
    with pytest.raises(ValueError, match="^score: must be from 1 to 7, not 8$"):
        write(clinic.engine, reports.record_pgic, actor=clinic.a, episode_id=clinic.episode_a, score=8)
    with pytest.raises(ValueError, match="^before_session_id: session .* is not of this episode$"):
        write(clinic.engine, reports.record_pgic, actor=clinic.a, episode_id=clinic.episode_a, score=3,
              before_session_id=clinic.session_b)
    assert len(audit_rows(clinic.engine, "pgic")) == 2


def test_psfs_activities_are_named_once_per_position_and_rated_0_to_10(clinic):
    activity = write(clinic.engine, reports.name_psfs_activity, actor=clinic.a, episode_id=clinic.episode_a,
                     position=1, name="Lifting the shopping")
    write(clinic.engine, reports.rate_psfs_activity, actor=clinic.a, activity_id=activity, score=3)
    write(clinic.engine, reports.rate_psfs_activity, actor=CLINICIAN, activity_id=activity, score=6)
    with pytest.raises(ValueError, match="^position: activity 1 of this episode is named already$"):
        write(clinic.engine, reports.name_psfs_activity, actor=CLINICIAN, episode_id=clinic.episode_a, position=1,
              name="Running")
    with pytest.raises(ValueError, match="^position: must be from 1 to 3, not 4$"):
        write(clinic.engine, reports.name_psfs_activity, actor=clinic.a, episode_id=clinic.episode_a, position=4,
              name="Running")
    with pytest.raises(ValueError, match="^score: must be from 0 to 10, not 11$"):
        write(clinic.engine, reports.rate_psfs_activity, actor=clinic.a, activity_id=activity, score=11)
    for actor in (clinic.b, MANAGER):
        with pytest.raises(AccessDenied):
            write(clinic.engine, reports.rate_psfs_activity, actor=actor, activity_id=activity, score=5)
    with Session(clinic.engine) as session:
        assert session.scalars(select(PsfsRating.entered_by).order_by(PsfsRating.id)).all() == ["patient",
                                                                                               "clinician"]
        assert session.scalar(select(func.count()).select_from(PsfsActivity)) == 1
    assert [e.entity for e in audit_rows(clinic.engine, "psfs_rating")] == ["psfs_rating"] * 2


def test_a_patient_reported_effect_is_reviewed_by_a_manager_once(clinic):
    entry_of_a(clinic, effects=[("faintness", "significant")])
    with Session(clinic.engine) as session:
        effect_id = session.scalar(select(PatientSideEffect.id))
    for actor in (CLINICIAN, clinic.a):
        with pytest.raises(AccessDenied):
            write(clinic.engine, reports.review_patient_effect, actor=actor, effect_id=effect_id)
    write(clinic.engine, reports.review_patient_effect, actor=MANAGER, effect_id=effect_id)
    with pytest.raises(ValueError, match="^side_effect_id: no unreviewed patient-reported side effect"):
        write(clinic.engine, reports.review_patient_effect, actor=MANAGER, effect_id=effect_id)
    assert json.loads(audit_rows(clinic.engine, "patient_side_effect")[0].after)["reviewed"] is True


def test_a_write_that_fails_half_way_leaves_nothing_behind(clinic, monkeypatch):
    def broken_audit(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports.audit, "record", broken_audit)
    with pytest.raises(RuntimeError):
        entry_of_a(clinic, effects=[("bruising", "mild"), ("headache", "mild")])
    assert (count(clinic.engine, DiaryEntry), count(clinic.engine, PatientSideEffect)) == (0, 0)


def test_each_correction_keeps_the_values_it_replaced_from_when_they_held(clinic):
    entry_id = entry_of_a(clinic, hours=24, soreness=6, effects=[])
    first, second = NOON + timedelta(hours=30), NOON + timedelta(hours=40)
    for soreness, moment in ((4, first), (3, second)):
        write(clinic.engine, reports.correct_diary_entry, actor=clinic.a, entry_id=entry_id, soreness=soreness,
              now=moment)
    write(clinic.engine, reports.correct_diary_entry, actor=clinic.a, entry_id=entry_id, soreness=3,
          now=second + timedelta(hours=1))  # the same values again: nothing to keep
    with Session(clinic.engine) as session:
        versions = session.execute(select(DiaryEntryVersion.version, DiaryEntryVersion.soreness,
                                          DiaryEntryVersion.valid_from, DiaryEntryVersion.replaced_at)
                                   .order_by(DiaryEntryVersion.version)).all()
    assert [tuple(v) for v in versions] == [(1, 6, NOON + timedelta(hours=24), first), (2, 4, first, second)]
    assert len(audit_rows(clinic.engine, "diary_entry")) == 3  # created, corrected twice
