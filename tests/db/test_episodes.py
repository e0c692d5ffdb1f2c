"""Episodes of care (issue #14, item 5): numbered per patient and condition, started and discharged, and a session
long after the last one, or after a discharge, never put into an episode silently; on every backend."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from analytics import outcomes
from clinic.vocabulary import EPISODE_STATUSES
from db import corrections, episodes, queries
from db.access import AccessDenied, Actor
from db.engine import write_session
from db.episodes import Answer, EpisodeUndecided
from db.models import AuditEvent, Episode, Patient, TreatmentSession
from db.validation import InvalidInput
from db.writes import record_session
from tests.db.factories import ADMIN, TODAY, clinical_counts, session_input

CLINICIAN = Actor(id=None, username="clin", role="clinician")
MANAGER = Actor(id=None, username="mgr", role="manager")


def record(engine, answer: Answer | None = None, gap_days: int | None = None, **fields) -> tuple[int, int]:
    """Record a neck-pain session of P1 (fields override); return (its episode's number, its session number)."""
    entry = session_input(**({"condition": "neck_pain"} | fields))
    with write_session(engine) as session:
        row = record_session(session, actor=CLINICIAN, entry=entry, answer=answer, gap_days=gap_days)
        return session.get(Episode, row.episode_id).number, row.session_number


def undecided(engine, **fields) -> episodes.Question:
    """Return the question recording this session raises; assert that nothing was written."""
    before = clinical_counts(engine), audit_count(engine)
    with pytest.raises(EpisodeUndecided) as raised:
        record(engine, **fields)
    assert (clinical_counts(engine), audit_count(engine)) == before
    return raised.value.question


def audit_count(engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def episode_rows(engine) -> list[tuple]:
    with Session(engine) as session:
        return [tuple(row) for row in session.execute(
            select(Episode.condition, Episode.number, Episode.started_on, Episode.discharged_on, Episode.status)
            .order_by(Episode.id))]


def patient_id(engine, pseudonym: str = "P1") -> int:
    with Session(engine) as session:
        return session.scalars(select(Patient.id).where(Patient.pseudonym == pseudonym)).one()


def discharge(engine, status: str = "goal_met", on: str = "2025-02-20", actor: Actor = CLINICIAN) -> None:
    with write_session(engine) as session:
        episode_id = session.scalars(select(Episode.id).order_by(Episode.number.desc())).first()
        episodes.discharge_episode(session, actor=actor, episode_id=episode_id, status=status,
                                   discharged_on=date.fromisoformat(on), today=TODAY)


# -- recording a session after a long gap ---------------------------------------------------------------------------


def test_a_session_more_than_90_days_after_the_last_asks_with_the_gap_in_days_and_saves_nothing(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    question = undecided(engine, session_date="2025-07-15")
    # 10 Feb -> 15 Jul 2025: 18 + 31 + 30 + 31 + 30 + 15 days.
    assert question.days == 155 and question.latest.number == 1 and not question.discharged
    assert "155 days after the last session of episode 1 on 2025-02-10, more than 90" in question.sentence()
    assert question.choices() == {True: "Yes: it starts episode 2, a new course of care",
                                  False: "No: it continues episode 1"}


def test_90_days_after_the_last_session_continues_the_episode_and_91_asks(engine):
    record(engine, session_date="2025-02-10")
    assert record(engine, session_date="2025-05-11") == (1, 2)  # 18 + 31 + 30 + 11 = 90 days
    assert undecided(engine, session_date="2025-08-10").days == 91  # 21 + 31 + 30 + 9 = 91 days after 11 May


def test_the_answer_starts_episode_2_at_session_1_or_continues_episode_1(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    assert record(engine, session_date="2025-07-15", answer=Answer(1, start_new=True)) == (2, 1)
    assert record(engine, session_date="2025-07-22") == (2, 2)  # the new course goes on without a question
    assert record(engine, patient_id="P2", session_date="2025-01-10") == (1, 1)
    assert record(engine, patient_id="P2", session_date="2025-07-15", answer=Answer(1, start_new=False)) == (1, 2)
    assert [(c, n, s) for c, n, s, _, _ in episode_rows(engine)] == [
        ("neck_pain", 1, date(2025, 1, 10)), ("neck_pain", 2, date(2025, 7, 15)), ("neck_pain", 1, date(2025, 1, 10))]


def test_an_answer_about_another_episode_is_no_answer(engine):
    record(engine, session_date="2025-01-10")
    assert undecided(engine, session_date="2025-07-15", answer=Answer(2, start_new=True)).latest.number == 1


def test_the_gap_is_configurable_by_argument_and_by_environment(engine, monkeypatch):
    record(engine, session_date="2025-01-10")
    assert undecided(engine, session_date="2025-02-10", gap_days=30).days == 31
    monkeypatch.setenv("EPISODE_GAP_DAYS", "30")
    assert undecided(engine, session_date="2025-02-10").days == 31
    assert record(engine, session_date="2025-02-09") == (1, 2)  # 30 days: no question


@pytest.mark.parametrize("setting", ["0", "ninety", "-5", "1.5"])
def test_a_gap_setting_that_is_not_a_whole_number_of_days_is_refused_in_one_line(monkeypatch, setting):
    monkeypatch.setenv("EPISODE_GAP_DAYS", setting)
    with pytest.raises(ValueError, match=f"^EPISODE_GAP_DAYS: '{setting}' is not a whole number of days"):
        episodes.gap_days()


def test_a_session_separated_by_a_recurrence_is_a_new_episode_with_its_own_baseline_and_outcome(engine):
    # Item 5 of issue #14: a recurrence five months later was session 3 of the first episode.
    for day, pain in (("2025-01-10", 80), ("2025-02-10", 40)):
        record(engine, session_date=day, pain_before=pain)
    record(engine, session_date="2025-07-15", pain_before=70, answer=Answer(1, start_new=True))
    record(engine, session_date="2025-07-29", pain_before=35)
    with Session(engine) as session:
        last = outcomes.last_from_pain(queries.episode_last_pain(session, actor=ADMIN))
    # Two courses, each 50 % better (80 -> 40, 70 -> 35); as one episode it would be one of 56.25 % (80 -> 35).
    assert sorted(last["improvement_pct"]) == [50.0, 50.0]
    assert sorted(last["sessions"]) == [2, 2]


# -- a session before the episode's first ---------------------------------------------------------------------------


def test_a_session_dated_before_the_episodes_first_asks_before_it_becomes_session_1_and_the_baseline(engine):
    # A tester typed 2025 for 2026: the session silently became session 1, and the course's baseline.
    record(engine, session_date="2025-03-01", pain_before=80)
    record(engine, session_date="2025-03-15", pain_before=40)
    question = undecided(engine, session_date="2024-03-08", pain_before=70)
    assert question.before_first and question.latest.number == 1 and question.label == "Is the date right?"
    assert question.sentence() == (
        "This neck pain session on 2024-03-08 comes before the first session of episode 1 on 2025-03-01. Saved, it "
        "becomes session 1 and the episode's baseline: every improvement of the course is then measured from its "
        "pain. If the date is mistyped, correct it and save again.")
    # One answer: the date is right. A new episode dated before the latest one is no course of care.
    assert question.choices() == {False: "Yes: it is the first session of episode 1, and its baseline"}
    undecided(engine, session_date="2024-03-08", answer=Answer(1, start_new=True))
    assert record(engine, session_date="2025-03-08", pain_before=70) == (1, 2)  # the date corrected: no question
    assert record(engine, session_date="2024-03-08", pain_before=70, answer=Answer(1, start_new=False)) == (1, 1)
    with Session(engine) as session:
        last = outcomes.last_from_pain(queries.episode_last_pain(session, actor=ADMIN))
    assert last["improvement_pct"].tolist() == [pytest.approx(100 * (70 - 40) / 70)]  # from the new baseline


def test_a_session_on_the_first_sessions_date_or_in_an_episode_without_sessions_joins_without_a_question(engine):
    record(engine, session_date="2025-03-01")
    record(engine, session_date="2025-03-15")
    assert record(engine, session_date="2025-03-01") == (1, 2)  # the same day: entry order, the baseline stays
    with write_session(engine) as session:
        episodes.start_episode(session, actor=CLINICIAN, patient_id=patient_id(engine), condition="headache",
                               started_on=date(2025, 6, 1), today=TODAY)
    assert record(engine, condition="headache", session_date="2025-05-20") == (1, 1)


# -- discharge -------------------------------------------------------------------------------------------------------


def test_a_session_after_a_discharge_asks_even_after_a_short_gap_and_continuing_reopens_the_episode(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    discharge(engine, "goal_met", "2025-02-20")
    question = undecided(engine, session_date="2025-03-01")
    assert question.discharged and question.days == 19
    assert "episode 1 was discharged on 2025-02-20 (goal met)" in question.sentence()
    assert question.choices()[False] == ("No: it continues episode 1, which is reopened (its discharge on "
                                         "2025-02-20 is withdrawn)")
    before = audit_count(engine)
    assert record(engine, session_date="2025-03-01", answer=Answer(1, start_new=False)) == (1, 3)
    assert episode_rows(engine) == [("neck_pain", 1, date(2025, 1, 10), None, None)]
    with Session(engine) as session:
        reopened = session.scalars(select(AuditEvent).where(AuditEvent.id > before).order_by(AuditEvent.id)).first()
    assert (reopened.action, reopened.entity, json.loads(reopened.before), json.loads(reopened.after)) == (
        "update", "episode", {"discharged_on": "2025-02-20", "status": "goal_met"},
        {"discharged_on": None, "status": None})


def test_a_session_dated_up_to_the_discharge_joins_the_discharged_episode_and_one_after_may_start_a_new_one(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    discharge(engine, "dropped_out", "2025-02-20")
    assert record(engine, session_date="2025-02-20") == (1, 3)  # a late entry within the course
    assert record(engine, session_date="2025-02-21", answer=Answer(1, start_new=True)) == (2, 1)
    assert [row[1:] for row in episode_rows(engine)] == [
        (1, date(2025, 1, 10), date(2025, 2, 20), "dropped_out"), (2, date(2025, 2, 21), None, None)]


def test_discharging_is_audited_and_refuses_a_wrong_status_or_date_naming_the_field(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    refusals = {("nope", "2025-02-20"): "Status: unknown discharge status 'nope'; use one of goal_met, dropped_out, "
                                         "referred_on, other",
                ("goal_met", "2025-02-01"): "Discharged: 2025-02-01 is before the episode's last session on "
                                            "2025-02-10",
                ("goal_met", "2026-01-01"): "Discharged: 2026-01-01 is in the future"}
    for (status, on), message in refusals.items():
        before = episode_rows(engine), audit_count(engine)
        with pytest.raises(InvalidInput) as refused:
            discharge(engine, status, on)
        assert str(refused.value) == message
        assert (episode_rows(engine), audit_count(engine)) == before
    discharge(engine, "referred_on", "2025-02-10")
    with Session(engine) as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (last.action, last.entity, last.patient, json.loads(last.after)) == (
        "update", "episode", "P1", {"discharged_on": "2025-02-10", "status": "referred_on"})
    with pytest.raises(InvalidInput, match="^Status: episode 1 was already discharged on 2025-02-10 \\(referred on\\)"):
        discharge(engine, "goal_met", "2025-02-20")


def session_rows(engine) -> list[tuple]:
    with Session(engine) as session:
        return [tuple(row) for row in session.execute(
            select(TreatmentSession.id, TreatmentSession.session_date, TreatmentSession.session_number,
                   TreatmentSession.deleted_at).order_by(TreatmentSession.id))]


def stored_pain(engine, session_id: int) -> float:
    with Session(engine) as session:
        return session.get(TreatmentSession, session_id).pain_before


def test_a_correction_never_moves_a_session_past_its_episodes_discharge(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    discharge(engine, "goal_met", "2025-02-20")
    second = session_rows(engine)[1][0]
    before = session_rows(engine), episode_rows(engine), audit_count(engine)
    with pytest.raises(InvalidInput) as refused, write_session(engine) as session:
        corrections.correct_session(session, actor=CLINICIAN, session_id=second,
                                    entry=session_input(condition="neck_pain", session_date="2025-02-21"))
    assert str(refused.value) == ("Session date: 2025-02-21 is after episode 1 (neck pain) was discharged on "
                                  "2025-02-20; a session after a discharge belongs to a new episode of care: record "
                                  "it as a new session")
    assert (session_rows(engine), episode_rows(engine), audit_count(engine)) == before
    with write_session(engine) as session:  # up to the day of the discharge it stays in the course
        corrections.correct_session(session, actor=CLINICIAN, session_id=second,
                                    entry=session_input(condition="neck_pain", session_date="2025-02-20"))
    assert session_rows(engine)[1][1:3] == (date(2025, 2, 20), 2)
    with Session(engine) as session, session.begin():  # a discharge stored before it, as older data may hold
        session.execute(update(Episode).values(discharged_on=date(2025, 2, 15)))
    with write_session(engine) as session:  # its values can still be mended, its date kept
        corrections.correct_session(session, actor=CLINICIAN, session_id=second,
                                    entry=session_input(condition="neck_pain", session_date="2025-02-20",
                                                        pain_before=30))
    assert stored_pain(engine, second) == 30


def correct_date(engine, session_id: int, day: str, answer: Answer | None = None) -> None:
    with write_session(engine) as session:
        corrections.correct_session(session, actor=CLINICIAN, session_id=session_id, answer=answer,
                                    entry=session_input(condition="neck_pain", session_date=day))


def test_a_correction_dating_a_later_session_before_the_first_asks_before_it_becomes_the_baseline(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    first, second = (row[0] for row in session_rows(engine))
    before = session_rows(engine), audit_count(engine)
    with pytest.raises(EpisodeUndecided) as raised:
        correct_date(engine, second, "2024-02-10")  # the year mistyped
    assert raised.value.question.before_first
    assert "comes before the first session of episode 1 on 2025-01-10" in raised.value.question.sentence()
    assert (session_rows(engine), audit_count(engine)) == before
    correct_date(engine, second, "2025-01-20")  # within the course: no question
    correct_date(engine, first, "2025-01-05")  # session 1 moved earlier stays the baseline: no question
    correct_date(engine, second, "2024-02-10", answer=Answer(1, start_new=False))
    assert [row[1:3] for row in session_rows(engine)] == [(date(2025, 1, 5), 2), (date(2024, 2, 10), 1)]  # by id


def test_a_deleted_session_dated_after_a_later_discharge_stays_deleted(engine):
    record(engine, session_date="2025-01-10")
    record(engine, session_date="2025-02-10")
    second = session_rows(engine)[1][0]
    with write_session(engine) as session:
        corrections.delete_session(session, actor=CLINICIAN, session_id=second, reason="wrong date")
    discharge(engine, "goal_met", "2025-01-20")  # its last live session is on 2025-01-10
    before = session_rows(engine), episode_rows(engine), audit_count(engine)
    with pytest.raises(InvalidInput, match="^Session date: 2025-02-10 is after episode 1 \\(neck pain\\) was "
                                           "discharged on 2025-01-20;"), write_session(engine) as session:
        corrections.restore_session(session, actor=ADMIN, session_id=second)
    assert (session_rows(engine), episode_rows(engine), audit_count(engine)) == before


def test_only_clinicians_and_admins_start_or_discharge_episodes(engine):
    record(engine, session_date="2025-01-10")
    before = episode_rows(engine), audit_count(engine)
    with pytest.raises(AccessDenied):
        discharge(engine, actor=MANAGER)
    with pytest.raises(AccessDenied), write_session(engine) as session:
        episodes.start_episode(session, actor=MANAGER, patient_id=patient_id(engine), condition="neck_pain",
                               started_on=date(2025, 3, 1))
    assert (episode_rows(engine), audit_count(engine)) == before


def test_starting_an_episode_numbers_it_next_for_its_condition_and_the_next_session_goes_to_it(engine):
    record(engine, session_date="2025-01-10")
    record(engine, condition="headache", session_date="2025-01-11")
    with write_session(engine) as session:
        started = episodes.start_episode(session, actor=CLINICIAN, patient_id=patient_id(engine),
                                         condition="neck_pain", body_region="neck", goal=" Drive without pain ",
                                         started_on=date(2025, 9, 1), today=TODAY)
        assert started.number == 2
    with Session(engine) as session:
        audited = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (audited.action, audited.entity, json.loads(audited.after)) == ("create", "episode", {
        "episode": 2, "condition": "neck_pain", "body_region": "neck", "goal": "Drive without pain",
        "started_on": "2025-09-01", "discharged_on": None, "status": None})
    # Long after episode 1's last session, but the new episode has none yet: no question.
    assert record(engine, session_date="2025-09-02") == (2, 1)
    with Session(engine) as session:
        listed = episodes.patient_episodes(session, actor=CLINICIAN, patient_id=patient_id(engine))
    assert listed[["condition", "number", "sessions", "goal"]].fillna("").values.tolist() == [
        ["headache", 1, 1, ""], ["neck_pain", 1, 1, ""], ["neck_pain", 2, 1, "Drive without pain"]]


def test_starting_an_episode_refuses_a_condition_that_is_not_a_code_a_long_goal_and_a_future_start(engine):
    record(engine, session_date="2025-01-10")
    before = episode_rows(engine), audit_count(engine)
    with pytest.raises(InvalidInput) as refused, write_session(engine) as session:
        episodes.start_episode(session, actor=CLINICIAN, patient_id=patient_id(engine), condition="Neck Pain",
                               goal="g" * 501, started_on=date(2026, 1, 1), today=TODAY)
    assert [(p.field, p.message) for p in refused.value.problems] == [
        ("condition", "'Neck Pain' must be lower-case letters, digits and '_' (at most 64)"),
        ("goal", "is 501 characters long; at most 500 can be stored"),
        ("started_on", "2026-01-01 is in the future")]
    assert (episode_rows(engine), audit_count(engine)) == before


def test_every_discharge_status_of_the_vocabulary_is_admitted_by_the_database(engine):
    for number, status in enumerate(EPISODE_STATUSES, start=1):
        record(engine, patient_id=f"S{number}", session_date="2025-01-10")
        with write_session(engine) as session:
            episode = session.scalars(select(Episode).join(Patient).where(Patient.pseudonym == f"S{number}")).one()
            episodes.discharge_episode(session, actor=CLINICIAN, episode_id=episode.id, status=status,
                                       discharged_on=date(2025, 1, 10), today=TODAY)
    with Session(engine) as session:
        assert sorted(episodes.discharge_statuses(session, actor=MANAGER)) == sorted(EPISODE_STATUSES)
