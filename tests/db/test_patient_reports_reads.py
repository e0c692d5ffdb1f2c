"""Reads of what patients report (db.report_queries, and the alerts in db.queries.serious_events): what is due,
who may read whose reports, and what managers get (pseudonymous aggregate inputs only)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import update
from sqlmodel import Session

from db import patient_reports as reports
from db import queries, report_queries
from db.access import AccessDenied
from db.engine import write_session
from db.models import Patient
from db.validation import validate_session
from db.writes import record_session
from tests.db import test_patient_reports as base
from tests.db.factories import TODAY
from tests.db.test_patient_reports import ADMIN, CLINICIAN, MANAGER, NOON, entry_of_a, write

clinic = base.clinic  # the fixture: patients A and B, a session each

AGGREGATE_READS = ("diary_soreness", "reported_effects", "pgic_answers", "psfs_ratings")


def due(clinic, hours: float, actor=None) -> pd.DataFrame:
    with Session(clinic.engine) as session:
        return report_queries.due_entries(session, actor=actor or clinic.a, patient_id=clinic.a.patient_id,
                                          now=NOON + timedelta(hours=hours))


def diary_due(frame: pd.DataFrame) -> list[tuple[int, str]]:
    rows = frame[frame["kind"] == "diary"]
    return list(zip(rows["window_h"].astype(int), rows["status"], strict=True))


def test_the_diary_windows_are_due_as_they_open_and_drop_out_once_filled_or_closed(clinic):
    assert diary_due(due(clinic, 5)) == [(6, "due"), (24, "soon"), (48, "soon"), (72, "soon")]
    entry_of_a(clinic, hours=5)
    assert diary_due(due(clinic, 20)) == [(24, "due"), (48, "soon"), (72, "soon")]
    assert diary_due(due(clinic, 70)) == [(72, "due")]  # the 24 and 48 h windows closed unfilled
    assert diary_due(due(clinic, 96)) == []


def test_pgic_is_due_until_answered_after_the_latest_session_and_psfs_at_the_start(clinic):
    first = due(clinic, 100)
    assert list(first["kind"]) == ["pgic", "psfs_activities"]
    assert first["session_id"].tolist()[0] == clinic.session_a  # the session the answer comes after
    assert first["session_id"].dtype == "Int64"  # whole numbers beside the kinds that have none
    write(clinic.engine, reports.record_pgic, actor=clinic.a, episode_id=clinic.episode_a, score=3,
          now=NOON + timedelta(hours=99))
    activity = write(clinic.engine, reports.name_psfs_activity, actor=clinic.a, episode_id=clinic.episode_a,
                     position=1, name="Lifting")
    assert list(due(clinic, 100)["kind"]) == ["psfs_activities", "psfs_rating"]
    write(clinic.engine, reports.rate_psfs_activity, actor=clinic.a, activity_id=activity, score=4,
          now=NOON + timedelta(hours=100))
    assert list(due(clinic, 101)["kind"]) == []
    assert list(due(clinic, 100 + 14 * 24)["kind"]) == ["psfs_rating"]


def test_a_patient_reads_their_own_reports_without_the_clinicians_annotations(clinic):
    entry_id = entry_of_a(clinic)
    write(clinic.engine, reports.annotate_entry, actor=CLINICIAN, entry_id=entry_id, text="expected")
    with Session(clinic.engine) as session:
        own = report_queries.patient_reports(session, actor=clinic.a, patient_id=clinic.a.patient_id)
        seen = report_queries.patient_reports(session, actor=CLINICIAN, patient_id=clinic.a.patient_id)
    assert list(own["diary"]["entry_id"]) == [entry_id] and own["diary"]["hours_after"].iloc[0] == 24
    assert list(own["effects"]["code"]) == ["bruising"]
    assert own["annotations"].empty and list(seen["annotations"]["text"]) == ["expected"]


@pytest.mark.parametrize("read", ["due_entries", "patient_reports"])
def test_a_second_patient_and_a_manager_read_nothing_of_the_first_patients_reports(clinic, read):
    entry_of_a(clinic)
    with Session(clinic.engine) as session:
        for actor in (clinic.b, MANAGER):
            with pytest.raises(AccessDenied):
                getattr(report_queries, read)(session, actor=actor, patient_id=clinic.a.patient_id)


@pytest.mark.parametrize("read", AGGREGATE_READS)
def test_patients_read_no_aggregate_input_and_managers_get_no_names(clinic, read):
    with write_session(clinic.engine) as session:
        session.execute(update(Patient).where(Patient.pseudonym == "PA").values(name="Alice Example"))
    entry_of_a(clinic, note="my neighbour Alice Example helped")
    write(clinic.engine, reports.record_pgic, actor=clinic.a, episode_id=clinic.episode_a, score=2)
    with Session(clinic.engine) as session:
        with pytest.raises(AccessDenied):
            getattr(report_queries, read)(session, actor=clinic.a)
        result = getattr(report_queries, read)(session, actor=MANAGER)
    frames = result.values() if isinstance(result, dict) else [result]
    text = "\n".join(frame.to_csv() for frame in frames)
    assert "Alice" not in text and "note" not in text


def test_diary_soreness_gives_each_entry_with_its_session_technique_and_hours_after(clinic):
    entry_of_a(clinic, hours=30, soreness=4)
    entry_of_a(clinic, hours=70, soreness=1, effects=[])
    with Session(clinic.engine) as session:
        frame = report_queries.diary_soreness(session, actor=MANAGER)
    assert list(frame.columns) == ["entry_id", "session_id", "episode_id", "patient_id", "technique", "adjuncts",
                                   "window_h", "soreness", "hours_after"]
    assert frame[["patient_id", "technique", "window_h", "soreness", "hours_after"]].values.tolist() == [
        ["PA", "deep", 24, 4, 30.0], ["PA", "deep", 72, 1, 70.0]]


def test_a_session_recorded_on_its_day_is_timed_from_its_recording_and_others_from_noon():
    recorded = NOON.replace(hour=9, minute=30)
    assert reports.session_moment(NOON.date(), recorded) == recorded
    assert reports.session_moment(NOON.date(), recorded + timedelta(days=40)) == NOON
    assert reports.session_moment(NOON.date(), None) == NOON


def test_patient_reported_significant_effects_alert_beside_recorded_ones_until_reviewed(clinic):
    with write_session(clinic.engine) as session:
        record_session(session, actor=ADMIN, entry=validate_session({
            "patient_id": "PB", "session_date": "2025-01-12", "technique": "deep", "pain_before": 50,
            "side_effects": [("syncope", "serious")], "today": TODAY}))
    entry_of_a(clinic, effects=[("faintness", "significant"), ("bruising", "mild")])
    with Session(clinic.engine) as session:
        alerts = queries.serious_events(session, actor=MANAGER)
    assert list(alerts.columns) == ["side_effect_id", "session_date", "technique", "code", "severity", "clinician",
                                    "patient_id", "source"]
    assert alerts[["code", "severity", "patient_id", "source"]].values.tolist() == [
        ["syncope", "serious", "PB", "clinician"], ["faintness", "significant", "PA", "patient"]]
    patient_effect = int(alerts["side_effect_id"].iloc[1])
    write(clinic.engine, reports.review_patient_effect, actor=MANAGER, effect_id=patient_effect)
    with Session(clinic.engine) as session:
        assert list(queries.serious_events(session, actor=MANAGER)["source"]) == ["clinician"]


def test_effects_inputs_count_a_code_once_per_session_at_its_worst(clinic):
    entry_of_a(clinic, hours=6, effects=[("bruising", "mild")])
    entry_of_a(clinic, hours=24, effects=[("bruising", "significant")])
    with Session(clinic.engine) as session:
        inputs = report_queries.reported_effects(session, actor=MANAGER)
    assert inputs["sessions"][["patient_id", "technique", "entries"]].values.tolist() == [["PA", "deep", 2]]
    assert inputs["patient"][["code", "severity"]].values.tolist() == [["bruising", "significant"]]
    assert inputs["clinician"].empty
