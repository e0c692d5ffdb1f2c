"""Tests that sessions are validated, numbered by date and stored whole or not at all, on every backend."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db import corrections, importing, numbering
from db.engine import write_session
from db.fields import AUDITED_FIELDS, SESSION_FIELDS
from db.models import AuditEvent, SideEffect, TreatmentSession
from db.validation import InvalidInput, longer_than, validate_session
from db.writes import record_session
from tests.db.factories import (
    ADMIN,
    DATE_IS_RIGHT,
    TODAY,
    clinical_counts,
    record,
    session_input,
    stored_sessions,
    tables_with_rows,
)

# record_session and session numbers


def numbers_by_note(engine) -> dict[str, int]:
    """Return each stored session's number, keyed by its note."""
    stored = stored_sessions(engine)
    return dict(zip(stored["notes"], stored["session_number"], strict=True))


@pytest.mark.parametrize(("typed", "refusal"), [
    ("P-07", "P-07 is already a patient: choose them in the Patient list"),
    ("p-07", "p-07 is the id of patient P-07 in other capitals: choose P-07 in the Patient list"),
])
def test_a_new_patient_whose_id_is_a_stored_patients_is_refused_and_nothing_is_written(engine, typed, refusal):
    record(engine, patient_id="P-07", session_date="2025-03-01", notes="the stored patient's")
    before = clinical_counts(engine)
    with pytest.raises(InvalidInput) as refused, write_session(engine) as session:
        record_session(session, actor=ADMIN, entry=session_input(patient_id=typed, session_date="2025-03-08"),
                       patient_name="Someone Else", new_patient=True)
    assert [str(p) for p in refused.value.problems] == [f"Patient: {refusal}"]
    assert clinical_counts(engine) == before


def test_a_new_patient_with_a_new_id_and_a_stored_patient_chosen_by_id_are_both_saved(engine):
    record(engine, patient_id="P-07", session_date="2025-03-01")
    with write_session(engine) as session:
        new = record_session(session, actor=ADMIN, entry=session_input(patient_id="P-08"), new_patient=True)
        again = record_session(session, actor=ADMIN, entry=session_input(patient_id="P-07", session_date="2025-03-08"))
        assert (new.session_number, again.session_number) == (1, 2)


def test_sessions_are_numbered_1_2_3_in_date_order(engine):
    numbers = [
        record(engine, session_date=f"2025-03-0{day}", notes=f"day {day}")["session_number"] for day in (1, 5, 9)
    ]
    assert numbers == [1, 2, 3]
    assert numbers_by_note(engine) == {"day 1": 1, "day 5": 2, "day 9": 3}


def test_a_back_dated_session_renumbers_the_episode(engine):
    record(engine, session_date="2025-03-05", notes="second")
    record(engine, session_date="2025-03-09", notes="third")
    back_dated = record(engine, session_date="2025-03-01", notes="first", answer=DATE_IS_RIGHT)
    assert back_dated["session_number"] == 1
    assert numbers_by_note(engine) == {"first": 1, "second": 2, "third": 3}


def test_a_session_back_dated_between_two_others_takes_the_middle_number(engine):
    record(engine, session_date="2025-03-01", notes="a")
    record(engine, session_date="2025-03-09", notes="c")
    assert record(engine, session_date="2025-03-05", notes="b")["session_number"] == 2
    assert numbers_by_note(engine) == {"a": 1, "b": 2, "c": 3}


def test_two_sessions_on_one_date_keep_their_entry_order(engine):
    record(engine, session_date="2025-03-05", notes="morning")
    record(engine, session_date="2025-03-05", notes="afternoon")
    record(engine, session_date="2025-03-01", notes="earlier", answer=DATE_IS_RIGHT)  # forces a renumbering of the two
    assert numbers_by_note(engine) == {"earlier": 1, "morning": 2, "afternoon": 3}


def test_each_patient_and_condition_is_its_own_episode_numbered_from_1(engine):
    record(engine, patient_id="P1", condition="neck_pain", session_date="2025-03-01")
    record(engine, patient_id="P2", condition="neck_pain", session_date="2025-03-02")
    second_condition = record(engine, patient_id="P1", condition="low_back_pain", session_date="2025-03-03")
    same_episode = record(engine, patient_id="P1", condition="neck_pain", session_date="2025-03-04")
    assert second_condition["session_number"] == 1
    assert same_episode["session_number"] == 2
    assert clinical_counts(engine)["episodes"] == 3
    assert clinical_counts(engine)["patients"] == 2


def test_a_session_is_stored_with_its_values_and_side_effects(engine):
    row = record(
        engine,
        pain_scale="nrs_10",
        pain_before=7,
        pain_after=4,
        technique="electrical",
        clinician="clin_a",
        twitch_response=True,
        muscles=["trapezius", "levator_scapulae"],
        notes="first visit",
        side_effects=[("bruising", "mild"), ("syncope", "significant")],
    )
    stored = stored_sessions(engine).iloc[0]
    assert (stored["pain_scale"], stored["pain_before"], stored["pain_after"]) == ("nrs_10", 7, 4)
    assert (stored["technique"], stored["twitch_response"]) == ("electrical", True)
    assert stored["muscles"] == "trapezius;levator_scapulae"
    assert stored["session_date"] == date(2025, 1, 10)
    assert stored["side_effects"] == {("bruising", "mild"), ("syncope", "significant")}
    assert stored["id"] == row["id"]
    assert clinical_counts(engine)["users"] == 1


def test_sessions_are_numbered_per_episode_by_date_then_entry_order():
    sessions = [(7, date(2025, 3, 9), 1, "c"), (7, date(2025, 3, 1), 6, "b"), (8, date(2025, 1, 1), 9, "x"),
                (7, date(2025, 3, 1), 5, "a")]
    assert numbering.in_date_order(sessions) == {"a": 1, "b": 2, "c": 3, "x": 1}


def test_two_sessions_can_swap_numbers_while_the_database_holds_them_unique(engine):
    first, second = record(engine, session_date="2025-03-01")["id"], record(engine, session_date="2025-03-05")["id"]
    with write_session(engine) as session, numbering.renumbering(session, {first: 2, second: 1}):
        pass
    assert numbers_by_id(engine) == {first: 2, second: 1}


def test_a_back_dated_session_renumbers_its_episode_alike_recorded_or_imported(engine):
    for patient, write in (("P1", "record"), ("P2", "import")):
        record(engine, patient_id=patient, session_date="2025-03-05", notes="second")
        late = session_input(patient_id=patient, session_date="2025-03-01", notes="first")
        with write_session(engine) as session:
            if write == "record":
                record_session(session, actor=ADMIN, entry=late, answer=DATE_IS_RIGHT)
            else:
                importing.import_sessions(session, actor=ADMIN, entries=[late])
    stored = stored_sessions(engine)
    assert [(r.patient_id, r.notes, r.session_number) for r in stored.itertuples()] == [
        ("P1", "first", 1), ("P1", "second", 2), ("P2", "first", 1), ("P2", "second", 2)]


def test_a_session_recorded_and_the_same_session_imported_store_and_audit_the_same_fields(engine):
    fields = dict(session_date="2025-03-01", pain_scale="nrs_10", pain_before=7, pain_after=4, technique="electrical",
                  twitch_response=True, muscles=["trapezius", "levator_scapulae"], notes="first visit",
                  side_effects=[("bruising", "mild"), ("syncope", "significant")])
    record(engine, patient_id="P1", **fields)
    with write_session(engine) as session:
        importing.import_sessions(session, actor=ADMIN, entries=[session_input(patient_id="P2", **fields)])
    recorded, imported = (row[list(SESSION_FIELDS)].to_dict() for _, row in stored_sessions(engine).iterrows())
    assert recorded == imported
    with Session(engine) as session:
        afters = session.scalars(select(AuditEvent.after).where(AuditEvent.action == "create")).all()
    recorded, imported = ({name: json.loads(after)[name] for name in AUDITED_FIELDS} for after in afters)
    assert recorded == imported and recorded["side_effects"] == "bruising:mild;syncope:significant"


def test_a_name_or_reason_too_long_to_store_is_refused_in_the_words_of_validation_longer_than(engine):
    with pytest.raises(InvalidInput) as refused, write_session(engine) as session:
        record_session(session, actor=ADMIN, entry=session_input(), patient_name="x" * 1_500)
    assert str(refused.value) == f"Patient name: {longer_than('x' * 1_500, 128)}"
    saved = record(engine)
    with pytest.raises(ValueError) as refused, write_session(engine) as session:
        corrections.delete_session(session, actor=ADMIN, session_id=saved["id"], reason="r" * 1_500)
    assert str(refused.value) == f"Reason: {longer_than('r' * 1_500, 500)}" == (
        "Reason: is 1,500 characters long; at most 500 can be stored")


def numbers_by_id(engine) -> dict[int, int]:
    with Session(engine) as session:
        return dict(session.execute(select(TreatmentSession.id, TreatmentSession.session_number)).all())


# what the database itself refuses


def direct_session(**fields) -> TreatmentSession:
    """Return a TreatmentSession built by hand, bypassing validation, valid unless `fields` say otherwise."""
    values = {
        "session_number": 9,
        "session_date": date(2025, 2, 1),
        "technique": "deep",
        "pain_scale": "vas_100",
        "pain_before": 50.0,
    } | fields
    return TreatmentSession(**values)


@pytest.mark.parametrize(
    "bad",
    [
        {"pain_before": 150.0},
        {"pain_scale": "nrs_10", "pain_before": 11.0},
        {"pain_before": -1.0},
        {"pain_after": 101.0},
        {"technique": "acupuncture"},
        {"pain_scale": "likert_5"},
        {"session_number": 0},
        {"episode_id": 987654},
    ],
    ids=["vas-150", "nrs-11", "negative", "after-101", "technique", "scale", "number-0", "no-episode"],
)
def test_the_database_refuses_a_bad_session_and_the_unit_of_work_leaves_nothing(engine, bad):
    with pytest.raises(IntegrityError), write_session(engine) as session:
        good = record_session(session, actor=ADMIN, entry=session_input(patient_id="P9"))
        fields = {"episode_id": good.episode_id} | bad  # the parameter itself is shared by both backends
        session.add(direct_session(**fields))
        session.flush()
    assert tables_with_rows(engine) == {}


def test_the_database_refuses_a_second_session_with_the_same_number_in_an_episode(engine):
    with pytest.raises(IntegrityError), write_session(engine) as session:
        good = record_session(session, actor=ADMIN, entry=session_input())
        session.add(direct_session(episode_id=good.episode_id, session_number=good.session_number))
        session.flush()
    assert clinical_counts(engine)["sessions"] == 0


@pytest.mark.parametrize(("code", "severity"), [("itchy", "mild"), ("bruising", "awful")])
def test_the_database_refuses_an_unknown_side_effect_code_or_severity(engine, code, severity):
    record(engine, notes="kept")
    with pytest.raises(IntegrityError), write_session(engine) as session:
        row = record_session(session, actor=ADMIN, entry=session_input(session_date="2025-02-01"))
        session.add(SideEffect(session_id=row.id, code=code, severity=severity))
        session.flush()
    assert clinical_counts(engine)["sessions"] == 1
    assert clinical_counts(engine)["side_effects"] == 0
    assert stored_sessions(engine)["notes"].tolist() == ["kept"]


def test_the_database_refuses_the_same_side_effect_twice_in_a_session(engine):
    with pytest.raises(IntegrityError), write_session(engine) as session:
        row = record_session(session, actor=ADMIN, entry=session_input(side_effects=[("bruising", "mild")]))
        session.add(SideEffect(session_id=row.id, code="bruising", severity="significant"))
        session.flush()
    assert clinical_counts(engine)["side_effects"] == 0


def test_an_error_after_recording_rolls_the_whole_unit_of_work_back(engine):
    with pytest.raises(RuntimeError), write_session(engine) as session:
        record_session(
            session, actor=ADMIN, entry=session_input(side_effects=[("bruising", "mild")], clinician="clin_a")
        )
        raise RuntimeError("the clinician closed the form")
    assert tables_with_rows(engine) == {}


# validation


def validate_session_problems(data: dict) -> dict[str, str]:
    """Return the problems validate_session finds in `data`, keyed by field (and fail if it finds none)."""
    with pytest.raises(InvalidInput) as refused:
        validate_session(data)
    return {p.field: p.message for p in refused.value.problems}


def problems(**fields) -> dict[str, str]:
    """Return the problems of a valid session changed by `fields` (a field set to None is left out)."""
    data = {
        "patient_id": "P1",
        "session_date": "2025-01-10",
        "technique": "deep",
        "pain_before": 60,
        "today": TODAY,
    } | fields
    return validate_session_problems({k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        pytest.param({"pain_before": 101}, "pain_before", "outside the scale", id="vas-101"),
        pytest.param({"pain_scale": "nrs_10", "pain_before": 11}, "pain_before", "outside the scale", id="nrs-11"),
        pytest.param({"pain_before": -1}, "pain_before", "outside the scale", id="negative"),
        pytest.param(
            {"pain_scale": "nrs_10", "pain_before": 4, "pain_after": -2},
            "pain_after",
            "outside the scale",
            id="after-negative",
        ),
        pytest.param({"pain_after": 100.5}, "pain_after", "outside the scale", id="after-above-vas"),
        pytest.param({"pain_scale": "nrs_10", "pain_before": 4.5}, "pain_before", "whole number", id="nrs-fraction"),
        pytest.param({"pain_before": "sixty"}, "pain_before", "not a number", id="pain-not-number"),
        pytest.param({"pain_scale": "likert_5"}, "pain_scale", "unknown scale", id="unknown-scale"),
        pytest.param({"session_date": "2026-01-01"}, "session_date", "in the future", id="future-date"),
        pytest.param({"session_date": "2025-02-30"}, "session_date", "not a valid date", id="no-such-date"),
        pytest.param({"session_date": "31/01/2025"}, "session_date", "YYYY-MM-DD", id="day-first-date"),
        pytest.param({"technique": "acupuncture"}, "technique", "unknown technique", id="unknown-technique"),
        pytest.param({"patient_id": "P 1"}, "patient_id", "letters, digits", id="patient-id-space"),
        pytest.param({"patient_id": "Pätient"}, "patient_id", "letters, digits", id="patient-id-non-ascii"),
        pytest.param({"patient_id": "P" * 65}, "patient_id", "1–64", id="patient-id-too-long"),
        pytest.param(
            {"side_effects": [("bruising", "mild"), ("bruising", "significant")]},
            "side_effects",
            "more than once",
            id="duplicate-side-effect",
        ),
        pytest.param(
            {"side_effects": [("itchy", "mild")]},
            "side_effects",
            "unknown side effect 'itchy'",
            id="unknown-side-effect",
        ),
        pytest.param(
            {"side_effects": [("bruising", "awful")]}, "side_effects", "unknown severity 'awful'", id="unknown-severity"
        ),
        pytest.param({"condition": "Neck Pain"}, "condition", "lower-case", id="condition-not-a-code"),
    ],
)
def test_validate_session_refuses_bad_input_naming_the_field(fields, field, words):
    found = problems(**fields)
    assert list(found) == [field]
    assert words in found[field]


def test_a_day_first_date_is_refused_with_a_hint_at_the_iso_form():
    message = problems(session_date="31/01/2025")["session_date"]
    assert "day-first" in message and "2025-01-31" in message


def test_today_is_not_in_the_future():
    assert (
        validate_session(
            {
                "patient_id": "P1",
                "session_date": TODAY.isoformat(),
                "technique": "deep",
                "pain_before": 60,
                "today": TODAY,
            }
        ).session_date
        == TODAY
    )


@pytest.mark.parametrize("missing", ["patient_id", "session_date", "technique", "pain_before"])
def test_each_required_field_is_reported_when_missing(missing):
    assert problems(**{missing: None}) == {missing: "is required"}


def test_every_field_problem_is_reported_not_only_the_first():
    found = problems(patient_id="P 1", technique="acupuncture", side_effects=[("itchy", "mild")])
    assert set(found) == {"patient_id", "technique", "side_effects"}
    assert set(validate_session_problems({})) == {"patient_id", "session_date", "technique", "pain_before"}


def test_pain_and_date_problems_of_one_session_are_all_reported():
    found = problems(pain_scale="nrs_10", pain_before=12, pain_after=3.5, session_date="2026-02-01")
    assert set(found) == {"pain_before", "pain_after", "session_date"}


def test_the_problem_text_names_the_field_in_words():
    with pytest.raises(InvalidInput, match="Pain before: 101 is outside the scale"):
        validate_session({"patient_id": "P1", "session_date": "2025-01-10", "technique": "deep", "pain_before": 101})
