"""What patients report, in the app (issue #17): My diary on the patient's phone, the diary panel on Patient
progress, the alert on the technique page, and the managers' Patient-reported page."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from clinic import patient_reports
from dashboard import diary_data, diary_panel
from db import accounts, patient_search
from db.access import AccessDenied, Actor
from db.engine import make_engine, write_session
from db.report_models import (
    DiaryAnnotation,
    DiaryEntry,
    DiaryEntryVersion,
    PatientSideEffect,
    PgicResponse,
    PsfsActivity,
    PsfsRating,
)
from db.writes import record_session
from tests.app.conftest import APP, log_in
from tests.db.factories import ADMIN, session_input

OTHER_PASSWORD = "second-patient-password"


def session_yesterday(url: str, pseudonym: str = "P0002") -> int:
    """Record a session dated yesterday for the patient (its 24 h diary entry is open all of today); return its id.

    A back-dated session took place at noon of its date (db.patient_reports.session_moment), so now is 12–36 h
    after it, the 24 h window, whatever the time of day."""
    yesterday = date.today() - timedelta(days=1)
    engine = make_engine(url)
    with write_session(engine) as session:
        row = record_session(session, actor=ADMIN, gap_days=36500,
                             entry=session_input(patient_id=pseudonym, session_date=yesterday.isoformat(),
                                                 today=date.today(), condition="neck_pain"))
        session_id = row.id
    engine.dispose()
    return session_id


def session_just_now(url: str, pseudonym: str = "P0002") -> int:
    """Record a session of today for the patient, as a clinician does right after it; return its id.

    Recorded on its date, the session took place when it was recorded (db.patient_reports.session_moment): its
    first diary entry opens 3 hours from now, whatever the time of day."""
    today = datetime.now(UTC).date()  # the session's moment is compared with its date in UTC
    engine = make_engine(url)
    with write_session(engine) as session:
        row = record_session(session, actor=ADMIN, gap_days=36500,
                             entry=session_input(patient_id=pseudonym, session_date=today.isoformat(), today=today,
                                                 condition="neck_pain"))
        session_id = row.id
    engine.dispose()
    return session_id


def stored(url: str, model, **where) -> list:
    """Return the rows of `model` matching `where`, read straight from the database."""
    engine = make_engine(url)
    with Session(engine) as session:
        rows = list(session.scalars(select(model).filter_by(**where)))
    engine.dispose()
    return rows


def patient_record_id(url: str, pseudonym: str) -> int:
    """Return the record id of the patient with this pseudonymous id."""
    engine = make_engine(url)
    with Session(engine) as session:
        found = int(patient_search.patients(session, actor=ADMIN).set_index("patient_id").loc[pseudonym, "id"])
    engine.dispose()
    return found


def fresh_app() -> AppTest:
    """Return the app in a new browser session, nobody logged in (a second user beside a first)."""
    return AppTest.from_file(APP, default_timeout=60).run()


def second_patient(url: str, pseudonym: str = "P0003") -> str:
    """Give a second sample patient an account; return its username."""
    engine = make_engine(url)
    with write_session(engine) as session:
        accounts.add_user(session, actor=ADMIN, username="patient_two", role="patient", password=OTHER_PASSWORD,
                          patient_pseudonym=pseudonym)
    engine.dispose()
    return "patient_two"


def record_entry_in_taps(at, session_id: int, soreness: int = 4, effect: str = "bruising",
                         severity: str = "significant"):
    """Fill in the 24 h entry as a patient would: the number, one effect, its severity; then Save."""
    key = f"diary_{session_id}_24"
    at.segmented_control(key=f"{key}_soreness").set_value(soreness).run()
    at.pills(key=f"{key}_effects").set_value([effect]).run()
    at.radio(key=f"{key}_{effect}_severity").set_value(severity).run()
    at.button(key=f"{key}_save").click().run()
    return at


def as_read(markdown: str) -> str:
    """Return a message as the user reads it: typed values are shown literally, their markdown escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def texts(at) -> str:
    """Return every message, caption and markdown on the page as the user reads them, one a line."""
    return "\n".join(as_read(m.value) for m in [*at.markdown, *at.caption, *at.success, *at.info, *at.error])


def test_a_patient_with_an_entry_due_lands_on_their_diary_and_records_it(as_role, seeded_url):
    session_id = session_yesterday(seeded_url)
    at = as_role("patient")
    assert [t.value for t in at.title] == ["My diary"]
    assert "The next day (24 h)" in texts(at)
    record_entry_in_taps(at, session_id)
    assert "Saved" in at.success[0].value
    [entry] = stored(seeded_url, DiaryEntry, session_id=session_id)
    assert (entry.window_h, entry.soreness) == (24, 4)
    assert "soreness **4 of 10**" in texts(at) and "Bruising (bad)" in texts(at)
    assert "Nothing to fill in now" in at.success[-1].value or not any(
        b.key == f"diary_{session_id}_24_save" for b in at.button)


def test_a_patient_reads_their_side_effect_back_in_the_words_they_chose_not_the_clinical_class(as_role, seeded_url):
    session_id = session_yesterday(seeded_url)
    at = record_entry_in_taps(as_role("patient"), session_id, effect="headache", severity="significant")
    session_day = diary_panel.day(date.today() - timedelta(days=1))  # the sample data has entries of its own
    [read_back] = [line for line in texts(at).splitlines() if f"after the session of {session_day}" in line]
    assert "Headache (bad)" in read_back  # "Bad: I needed a doctor or had to stop what I normally do"
    assert "significant" not in read_back


@pytest.mark.parametrize(("severity", "told"), [("significant", True), ("serious", True), ("mild", False)])
def test_a_patient_who_saves_a_side_effect_that_needed_a_doctor_is_told_what_to_do_now(as_role, seeded_url, severity,
                                                                                      told):
    session_id = session_yesterday(seeded_url)
    at = record_entry_in_taps(as_role("patient"), session_id, effect="headache", severity=severity)
    assert at.success[0].value == "Saved. Thank you! Your physio will see it."
    advice = [as_read(i.value) for i in at.info if "contact your doctor" in i.value]
    if told:
        assert advice == ["If you feel unwell now or it gets worse, do not wait for your physio: contact your doctor. "
                          "In an emergency, call your emergency number."]
    else:  # a mild one passed by itself: nothing to alarm the patient with
        assert advice == []


def test_a_patient_is_notified_of_a_saved_entry_once_and_the_result_stays_at_the_top(as_role, seeded_url):
    session_id = session_yesterday(seeded_url)
    at = record_entry_in_taps(as_role("patient"), session_id, effect="headache", severity="significant")
    # Shown over the page too: on a phone the patient has scrolled down to Save, away from the top (browser test).
    assert [as_read(t.value) for t in at.toast] == [
        "Saved. Thank you! Your physio will see it.",
        "If you feel unwell now or it gets worse, do not wait for your physio: contact your doctor. "
        "In an emergency, call your emergency number."]
    at.run()  # any later rerun: the notification is not given again, the result stays at the top
    assert not at.exception and list(at.toast) == []
    assert at.success[0].value == "Saved. Thank you! Your physio will see it."


def test_a_patient_is_told_when_their_next_entry_opens_in_words_true_where_they_are(as_role, seeded_url):
    session_just_now(seeded_url)  # its first entry opens 3 h after it: nothing due until then
    at = as_role("patient")
    at.switch_page("views/my_diary.py").run()
    [message] = [as_read(m.value) for m in at.success if "Nothing to fill in now" in m.value]
    assert message.endswith("Your next diary question opens in about 3 hours.")
    assert "UTC" not in texts(at)


@pytest.mark.parametrize(("from_now", "words"), [
    (timedelta(minutes=40), "within the hour"), (timedelta(minutes=70), "in about an hour"),
    (timedelta(hours=2, minutes=59), "in about 3 hours"), (timedelta(hours=24), "in about 24 hours"),
    (timedelta(hours=50), "in about 2 days")])
def test_when_an_entry_opens_reads_as_a_time_from_now_not_a_clock_time_in_another_zone(from_now, words):
    now = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)  # pinned: the words depend on the gap only
    assert patient_reports.opens_in(now + from_now, now) == words


def test_an_entry_without_its_number_or_a_severity_is_refused_naming_what_is_missing(as_role, seeded_url):
    session_id = session_yesterday(seeded_url)
    at = as_role("patient")
    at.button(key=f"diary_{session_id}_24_save").click().run()
    assert "Soreness: tap a number" in as_read(at.error[0].value)
    at.segmented_control(key=f"diary_{session_id}_24_soreness").set_value(3).run()
    at.pills(key=f"diary_{session_id}_24_effects").set_value(["headache"]).run()
    at.button(key=f"diary_{session_id}_24_save").click().run()
    assert "Headache: tap how bad it was" in as_read(at.error[0].value)
    assert stored(seeded_url, DiaryEntry, session_id=session_id) == []


def test_a_patient_corrects_their_entry_within_a_day_and_sees_what_it_said_before(as_role, seeded_url):
    session_id = session_yesterday(seeded_url)
    at = record_entry_in_taps(as_role("patient"), session_id, soreness=6)
    [entry] = stored(seeded_url, DiaryEntry, session_id=session_id)
    key = f"correct_{entry.id}"
    at.segmented_control(key=f"{key}_soreness").set_value(2).run()
    at.button(key=f"{key}_save").click().run()
    assert "Changed" in at.success[0].value
    assert stored(seeded_url, DiaryEntry, session_id=session_id)[0].soreness == 2
    [version] = stored(seeded_url, DiaryEntryVersion, entry_id=entry.id)
    assert version.soreness == 6
    assert re.search(r"First saved .*soreness 6 of 10 · Bruising \(bad\)", texts(at))


def test_a_patient_answers_pgic_and_rates_the_activities_of_their_course(as_role, seeded_url):
    session_yesterday(seeded_url)
    at = as_role("patient")
    at.radio(key="pgic_score").set_value(2)
    at.button(key="pgic_save").click().run()
    assert "Saved your answer" in at.success[0].value
    patient = patient_record_id(seeded_url, "P0002")
    answers = stored(seeded_url, PgicResponse, patient_id=patient)
    assert answers[-1].score == 2 and answers[-1].entered_by == "patient"
    ratings = [s for s in at.segmented_control if s.key.startswith("psfs_rate_")]
    assert ratings, "the sample patient's neck-pain course has its activities"
    ratings[0].set_value(7)
    at.button(key="psfs_rate_save").click().run()
    assert "Saved your ratings" in at.success[0].value
    activity = int(ratings[0].key.removeprefix("psfs_rate_"))
    assert stored(seeded_url, PsfsRating, activity_id=activity)[-1].score == 7


def test_a_new_patient_names_the_activities_they_find_hard_with_a_first_rating(anonymous, seeded_url):
    session_yesterday(seeded_url, "P9200")
    username = second_patient(seeded_url, "P9200")
    at = log_in(anonymous, username, OTHER_PASSWORD)
    at.switch_page("views/my_diary.py").run()
    at.text_input(key="psfs_name_1").input("Turning my head to drive")
    at.button(key="psfs_name_save").click().run()  # no rating yet: refused by name, nothing stored
    assert "Activity 1: tap how well you can do it now" in as_read(at.error[0].value)
    at.segmented_control(key="psfs_first_1").set_value(3)
    at.text_input(key="psfs_name_2").input("Sleeping on my side")
    at.segmented_control(key="psfs_first_2").set_value(5)
    at.button(key="psfs_name_save").click().run()
    assert "Saved your activities" in at.success[0].value
    named = stored(seeded_url, PsfsActivity)
    mine = sorted((a.position, a.name, a.entered_by) for a in named if a.name in {"Turning my head to drive",
                                                                                  "Sleeping on my side"})
    assert mine == [(1, "Turning my head to drive", "patient"), (2, "Sleeping on my side", "patient")]
    assert [r.score for a in named if a.name == "Sleeping on my side"
            for r in stored(seeded_url, PsfsRating, activity_id=a.id)] == [5]


def test_the_clinician_sees_the_diary_pgic_and_psfs_and_annotates_an_entry_without_changing_it(anonymous, seeded_url):
    session_id = session_yesterday(seeded_url)
    patient = record_entry_in_taps(log_in(anonymous, "patient"), session_id, soreness=5)
    [entry] = stored(seeded_url, DiaryEntry, session_id=session_id)
    assert "Saved" in patient.success[0].value
    at = log_in(fresh_app(), "clin_ahmed")
    at.switch_page("views/patient_progress.py").run()
    at.selectbox(key="progress_patient").select("P0002").run()
    assert "Between sessions, as the patient reported" in [h.value for h in at.header]
    diary = next(f.value for f in at.dataframe if "Soreness (0–10)" in f.value.columns)
    assert 5 in list(diary["Soreness (0–10)"])
    assert any("Bruising (significant)" in cell for cell in diary["Side effects (patient-reported)"])
    at.selectbox(key="annotate_entry").select(entry.id)
    at.text_area(key="annotate_text").input("Called the patient: bruise fading.")
    at.button(key="annotate_save").click().run()
    assert "Added a note" in at.success[0].value
    [note] = stored(seeded_url, DiaryAnnotation, entry_id=entry.id)
    assert note.text == "Called the patient: bruise fading."
    assert stored(seeded_url, DiaryEntry, id=entry.id)[0].soreness == 5  # the patient's answer is unchanged


def test_a_clinician_records_the_patients_pgic_answer_given_in_the_clinic(app, seeded_url):
    app.switch_page("views/patient_progress.py").run()
    app.selectbox(key="progress_patient").select("P0002").run()
    app.selectbox(key="behalf_pgic").select(3)
    app.button(key="behalf_pgic_save").click().run()
    assert "Saved the patient's PGIC answer." in app.success[0].value
    last = stored(seeded_url, PgicResponse, patient_id=patient_record_id(seeded_url, "P0002"))[-1]
    assert (last.score, last.entered_by) == (3, "clinician")
    app.button(key="behalf_pgic_save").click().run()  # nothing chosen: refused by name, nothing stored
    assert "Your answer: tap the one that fits best" in as_read(app.error[0].value)


def test_a_patient_reported_significant_effect_alerts_marked_as_such_and_a_manager_reviews_it(anonymous, seeded_url):
    session_id = session_yesterday(seeded_url)
    record_entry_in_taps(log_in(anonymous, "patient"), session_id, effect="faintness", severity="serious")
    manager = log_in(fresh_app(), "manager")
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    marked = [as_read(m.value) for m in manager.markdown if "patient-reported" in m.value and yesterday in m.value]
    assert len(marked) == 1 and "Faintness" in marked[0] and "(serious)" in marked[0] and "P0002" in marked[0]
    assert "clinician not recorded" in marked[0]  # the session was recorded without one
    [entry] = stored(seeded_url, DiaryEntry, session_id=session_id)
    [effect] = stored(seeded_url, PatientSideEffect, entry_id=entry.id)
    effect_id = effect.id
    manager.button(key=f"review_patient_{effect_id}").click().run()
    assert not [m.value for m in manager.markdown if "patient-reported" in m.value and yesterday in m.value]
    assert stored(seeded_url, PatientSideEffect, id=effect_id)[0].reviewed_at is not None


@pytest.mark.parametrize("by", ["technique", "adjunct"])
def test_the_managers_page_shows_aggregates_only_with_n_and_the_caveat(as_role, by):
    at = as_role("manager")
    at.switch_page("views/patient_reported.py").run()
    at.segmented_control(key="reported_by").set_value(by).run()
    assert [t.value for t in at.title] == ["Patient-reported"]
    assert "not a trial" in at.caption[0].value
    assert re.search(r"diary entries\*\* after [\d,]+ sessions of [\d,]+ patients", texts(at))
    tables = [f.value for f in at.dataframe]
    assert len(tables) == 5
    soreness = next(t for t in tables if "mean_soreness" in t.columns)
    assert set(soreness["window_h"]) == {24, 48, 72}
    single = soreness["entries"] < 2  # one entry has no interval
    assert (soreness["ci95_low"] <= soreness["mean_soreness"])[~single].all()
    assert soreness["ci95_low"][single].isna().all()
    if by == "adjunct":  # the sample's sessions from before adjuncts were recorded are not counted as having none
        assert "Not recorded" in set(soreness["adjunct"]) and "kept apart from *None*" in texts(at)
    for table in tables:  # no patient is listed: no id column, no pseudonym in any cell
        assert "patient_id" not in table.columns
        assert not table.astype(str).apply(lambda c: c.str.fullmatch(r"P\d{4}")).any().any()


def test_a_second_patient_sees_none_of_the_first_patients_diary_whatever_the_state_or_url(anonymous, seeded_url):
    session_id = session_yesterday(seeded_url)
    record_entry_in_taps(log_in(anonymous, "patient"), session_id, soreness=8)
    [entry] = stored(seeded_url, DiaryEntry, session_id=session_id)
    username = second_patient(seeded_url)
    other = fresh_app()
    other.query_params["patient_id"] = "P0002"
    other.query_params["session_id"] = str(session_id)
    other.session_state[f"correct_{entry.id}_soreness"] = 0
    other.session_state["diary_due"] = 0
    other = log_in(other, username, OTHER_PASSWORD)
    other.switch_page("views/my_diary.py").run()
    assert "soreness **8 of 10**" not in texts(other)
    assert not any(w.key and str(entry.id) in w.key for w in other.segmented_control)
    assert not any(w.key and str(session_id) in w.key for w in other.button)
    intruder = Actor(id=None, username=username, role="patient", patient_id=patient_record_id(seeded_url, "P0003"))
    with pytest.raises(AccessDenied):
        diary_data.record_entry(intruder, session_id, 1, {}, "")
    with pytest.raises(AccessDenied):
        diary_data.correct_entry(intruder, entry.id, 1, {}, "")
    with pytest.raises(AccessDenied):
        diary_data.patient_reports(intruder, int(entry.patient_id))
    assert stored(seeded_url, DiaryEntry, id=entry.id)[0].soreness == 8


def test_a_patient_with_nothing_due_lands_on_their_progress_with_a_link_to_their_diary(as_role):
    at = as_role("patient")
    assert [t.value for t in at.title] == ["My progress"]
    assert [link.label for link in at.get("page_link")] == ["Open my diary"]


@pytest.mark.parametrize(("role", "page"), [("patient", "patient_reported.py"), ("manager", "my_diary.py"),
                                            ("clinician", "my_diary.py"), ("clinician", "patient_reported.py")])
def test_a_role_cannot_open_the_diary_pages_it_does_not_have(as_role, role, page):
    at = as_role(role)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"views/{page}")
