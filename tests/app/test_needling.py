"""The needling record in the app (#16): the session form records it with the patient's last one as its start,
says how complete each saved session is, and the managers' Needling record page shows completeness, the STRICTA
table with its downloads, and dose and outcome."""

from __future__ import annotations

import io
import re
from datetime import date

import pandas as pd
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from dashboard import needling_data, resources
from db.access import AccessDenied, Actor
from db.cli import main
from db.engine import make_engine
from db.models import Episode, Patient, TreatmentSession, User
from db.queries import OutcomeFilter
from tests.app.conftest import download_content, save_button, session_count

NEEDLING = "stricta_"
FULL_ELECTRICAL = {
    "insertions": 6, "depth_mm": 25.0, "needle_diameter_mm": 0.3, "needle_length_mm": 40.0, "twitch_count": 3,
    "retention_s": 600, "estim_hz": 2.0, "estim_pulse_us": 250.0, "estim_ma": 4.5, "estim_minutes": 10.0,
}


def stored(url: str, patient: str) -> list[TreatmentSession]:
    """Return the patient's live sessions as stored, in number order."""
    engine = make_engine(url)
    with Session(engine) as session:
        rows = session.exec(
            select(TreatmentSession).join(Episode, Episode.id == TreatmentSession.episode_id)
            .join(Patient, Patient.id == Episode.patient_id)
            .where(Patient.pseudonym == patient, TreatmentSession.deleted_at.is_(None))
            .order_by(TreatmentSession.session_number)
        ).all()
        session.expunge_all()
    engine.dispose()
    return rows


def as_read(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def record_full_electrical_session(app, patient: str = "P9401"):
    app.radio(key="technique").set_value("electrical").run()  # above the form: shows the stimulation fields
    app.text_input(key="new_patient_id").input(patient)
    app.number_input(key="pain_before").set_value(60.0)
    for name, value in FULL_ELECTRICAL.items():
        app.number_input(key=f"{NEEDLING}{name}").set_value(value)
    app.segmented_control(key=f"{NEEDLING}side").set_value("left")
    app.segmented_control(key=f"{NEEDLING}manipulation").set_value("pistoning_rotation")
    app.pills(key=f"{NEEDLING}adjuncts").set_value(["stretching", "cold_spray"])
    save_button(app).click().run()
    return app


def test_a_full_electrical_session_is_stored_item_by_item_and_called_complete(app, seeded_url):
    record_full_electrical_session(app)
    assert not app.error, [e.value for e in app.error]
    assert app.success[0].value.startswith("Saved session 1 for P9401")
    assert any(c.value.startswith("STRICTA: 13 of 13 applicable items recorded (complete: 100%") for c in app.caption)
    [row] = stored(seeded_url, "P9401")
    assert {name: getattr(row, name) for name in FULL_ELECTRICAL} == FULL_ELECTRICAL
    assert (row.side, row.manipulation, row.adjuncts) == ("left", "pistoning_rotation", "cold_spray;stretching")
    assert row.twitch_response is True  # three twitches: yes


def test_the_next_session_starts_from_the_last_needling_record(app):
    record_full_electrical_session(app)
    # The saved patient stays picked, the entry is blank, and the needling record is the one just saved.
    assert app.number_input(key="pain_before").value is None
    assert {name: app.number_input(key=f"{NEEDLING}{name}").value for name in FULL_ELECTRICAL} == FULL_ELECTRICAL
    assert app.segmented_control(key=f"{NEEDLING}side").value == "left"
    assert sorted(app.pills(key=f"{NEEDLING}adjuncts").value) == ["cold_spray", "stretching"]
    assert any("Last session's needling record" in c.value and "13 of 13" in c.value for c in app.caption)
    assert any(c.value.endswith("session 1: 13 of 13 ✓") for c in app.caption)  # under the patient's chart


def test_a_needling_value_typed_for_one_patient_never_carries_to_the_next(app):
    record_full_electrical_session(app)  # P9401 now has a needling record; the form starts from it
    app.number_input(key=f"{NEEDLING}depth_mm").set_value(99.0)
    app.selectbox(key="record_patient").select("New patient…").run()
    assert app.number_input(key=f"{NEEDLING}depth_mm").value is None  # a new patient starts blank
    assert app.pills(key=f"{NEEDLING}adjuncts").value == []
    app.selectbox(key="record_patient").select("P9401").run()
    assert app.number_input(key=f"{NEEDLING}depth_mm").value == FULL_ELECTRICAL["depth_mm"]  # their own, not 99


def test_electrical_fields_show_for_electrical_needling_only(app):
    assert app.radio(key="technique").value == "deep"
    assert f"{NEEDLING}estim_hz" not in [field.key for field in app.number_input]
    app.radio(key="technique").set_value("electrical").run()
    assert f"{NEEDLING}estim_hz" in [field.key for field in app.number_input]


def test_a_session_without_a_needling_record_is_saved_and_called_incomplete(app, seeded_url):
    app.text_input(key="new_patient_id").input("P9402")
    app.number_input(key="pain_before").set_value(50.0)
    save_button(app).click().run()
    assert app.success
    caption = next(c.value for c in app.caption if c.value.startswith("STRICTA:"))
    assert caption.startswith("STRICTA: 0 of 9 applicable items recorded (incomplete: 0%")
    assert "Not recorded: insertions, side, depth" in caption
    assert any(c.value.endswith("session 1: 0 of 9") for c in app.caption)
    [row] = stored(seeded_url, "P9402")
    assert (row.insertions, row.depth_mm, row.adjuncts, row.estim_hz) == (None, None, None, None)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("depth_mm", 200.0, "Depth: 200 is outside 0–150 mm"),
    ("needle_diameter_mm", 0.05, "Needle diameter: 0.05 is outside 0.1–0.5 mm"),
    ("estim_hz", 300.0, "Stimulation frequency: 300 is outside 0.1–250 Hz"),
    ("insertions", 0, "Insertions: 0 is outside 1–500"),
])
def test_an_out_of_range_needling_value_is_refused_by_name_and_nothing_is_saved(app, seeded_url, name, value,
                                                                               message):
    before = session_count(seeded_url)
    app.radio(key="technique").set_value("electrical").run()
    app.text_input(key="new_patient_id").input("P9403")
    app.number_input(key="pain_before").set_value(50.0)
    app.number_input(key=f"{NEEDLING}{name}").set_value(value)
    save_button(app).click().run()
    assert app.error and message in as_read(app.error[0].value)
    assert not app.success
    assert session_count(seeded_url) == before


def test_none_with_an_adjunct_is_refused_in_one_line(app, seeded_url):
    before = session_count(seeded_url)
    app.text_input(key="new_patient_id").input("P9404")
    app.number_input(key="pain_before").set_value(50.0)
    app.pills(key=f"{NEEDLING}adjuncts").set_value(["heat", "none"])
    save_button(app).click().run()
    assert "Adjuncts: 'none' (no adjunct) cannot go with adjuncts" in as_read(app.error[0].value)
    assert session_count(seeded_url) == before


# -- the managers' page ------------------------------------------------------------------------------------------------


def settled(at):
    """Run the page again once the worker has computed what it asked for (the page draws it then)."""
    assert resources.analyses_settled(timeout=120)
    return at.run()


def computed(actor: Actor, where: OutcomeFilter) -> dict:
    """Return the needling record's figures for the filter, once the worker has computed them."""
    needling_data.needling_record(actor, where)
    assert resources.analyses_settled(timeout=120)
    analysis = needling_data.needling_record(actor, where)
    assert analysis.current and not analysis.fault
    return analysis.value


@pytest.fixture
def manager(as_role):
    at = as_role("manager")
    at.switch_page("views/needling_record.py").run()
    return settled(at)


def test_the_needling_record_page_shows_completeness_the_table_and_dose_and_outcome(manager):
    assert [t.value for t in manager.title] == ["Needling record"]
    headers = [h.value for h in manager.header]
    assert headers == ["Completeness by clinician and month", "STRICTA table", "Dose and outcome at session 4"]
    assert any("not a trial" in w.value for w in manager.warning)
    tables = [frame.value for frame in manager.dataframe]
    stricta = next(t for t in tables if "item" in t.columns)
    assert "All techniques" in set(stricta["technique"]) and "Depth (mm)" in set(stricta["item"])
    dose = [t for t in tables if "group" in t.columns]
    assert len(dose) == 5  # twitches, insertions, retention, frequency, intensity
    assert list(dose[0]["group"]) == ["0", "1–2", "3–5", "> 5", "not recorded"]


def test_the_stricta_downloads_are_the_contract_csv_and_a_methods_markdown(manager, seeded_url, capsys):
    csv = download_content(manager, "download_stricta_csv")
    capsys.readouterr()
    assert main(["--url", seeded_url, "summary", "--stricta"]) == 0
    assert csv == capsys.readouterr().out  # the same table as `python -m db summary --stricta`
    table = pd.read_csv(io.StringIO(csv))
    assert list(table.columns) == ["technique", "item", "applicable_sessions", "reported_sessions", "completeness",
                                   "distribution"]
    markdown = download_content(manager, "download_stricta_markdown")
    first, _, header, rule, *rows = markdown.splitlines()
    assert first.startswith("Needling was recorded in routine care for ") and "STRICTA" in first
    assert header.startswith("| Technique | Item |") and rule.startswith("| --- |")
    assert len(rows) == len(table)


def test_a_condition_filter_narrows_the_page(manager):
    sessions = manager.metric[0].value
    settled(manager.multiselect(key="needling_conditions").select("neck_pain").run())
    summary = next(c.value for c in manager.caption if "sessions**" in c.value)
    assert "neck pain" in summary
    assert manager.metric[0].value != sessions


def test_a_filter_with_no_sessions_gives_empty_figures_not_an_error(seeded_url):
    manager = Actor(id=None, username="manager", role="manager")
    data = computed(manager, OutcomeFilter(start=date(1990, 1, 1), end=date(1990, 1, 2)))
    assert (data["sessions"], data["heat_map"], data["table"].empty) == (0, None, True)
    assert data["markdown"] == "No sessions match these filters.\n"
    assert data["dose"]["episodes"].sum() == 0


def test_the_needling_record_is_computed_again_after_a_write(seeded_url, app):
    manager = Actor(id=None, username="manager", role="manager")
    before = computed(manager, OutcomeFilter())["sessions"]
    record_full_electrical_session(app)  # the clinician's save moves the data version
    assert computed(manager, OutcomeFilter())["sessions"] == before + 1


def test_a_patient_cannot_read_the_needling_record(seeded_url):
    patient = Actor(id=None, username="patient", role="patient", patient_id=1)
    with pytest.raises(AccessDenied):
        needling_data.needling_record(patient, OutcomeFilter())


# -- the planned course (STRICTA item 3) and the practitioner (item 5) ------------------------------------------------


def planned_courses(url: str, patient: str) -> list[tuple]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = session.exec(select(Episode.number, Episode.planned_sessions, Episode.planned_per_week)
                            .join(Patient, Patient.id == Episode.patient_id).where(Patient.pseudonym == patient)
                            .order_by(Episode.number)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_a_new_episode_is_started_with_its_planned_course_or_not_at_all(app, seeded_url):
    app.switch_page("views/patient_progress.py").run()
    app.selectbox(key="progress_patient").select("P0002").run()
    app.selectbox(key="start_condition").select("neck_pain")
    app.date_input(key="start_date").set_value(date(2026, 11, 1))
    app.number_input(key="start_planned_sessions").set_value(80)  # out of range: refused, nothing started
    app.button(key="start_episode_submit").click().run()
    assert "Planned sessions: 80 is outside 1–50" in as_read(app.error[0].value)
    assert planned_courses(seeded_url, "P0002") == [(1, None, None)]
    app.number_input(key="start_planned_sessions").set_value(8)
    app.number_input(key="start_planned_per_week").set_value(2.0)
    app.button(key="start_episode_submit").click().run()
    assert app.success[0].value.startswith("Started episode 2 of neck pain for P0002")
    assert planned_courses(seeded_url, "P0002") == [(1, None, None), (2, 8, 2.0)]
    table = next(f.value for f in app.dataframe if "Planned course" in f.value.columns)
    assert table["Planned course"].tolist() == ["", "8 sessions, 2 a week"]


def session_table(at) -> pd.DataFrame:
    """Return Patient progress's session-by-session table."""
    return next(frame.value for frame in at.dataframe if "Improvement (points)" in frame.value.columns)


def test_patient_progress_shows_each_sessions_stricta_items_and_the_plan_form(app):
    app.switch_page("views/patient_progress.py").run()
    app.selectbox(key="progress_patient").select("P0002").run()
    assert not app.exception, app.exception
    table = session_table(app)
    labels = table["STRICTA items"].tolist()
    assert len(labels) == len(table) and all(" of " in label for label in labels)  # "9 of 9 ✓" per session
    assert app.selectbox(key="plan_which").value is not None  # the open episode, ready to plan


def test_a_clinicians_needling_background_is_kept_on_their_account(as_role, seeded_url):
    admin = as_role("admin")
    admin.switch_page("views/users.py").run()
    admin.selectbox(key="manage_username").select("clin_ahmed").run()
    admin.text_area(key="training_clin_ahmed").input("2019, 50-hour dry needling course")
    admin.number_input(key="years_clin_ahmed").set_value(6)
    admin.button(key="background_submit").click().run()
    assert admin.success[0].value == "Needling background of clin\\_ahmed saved."
    admin.selectbox(key="manage_username").select("manager").run()  # no needling background for a manager
    assert not [area for area in admin.text_area if area.key.startswith("training_")]
    admin.selectbox(key="manage_username").select("clin_ahmed").run()
    assert admin.text_area(key="training_clin_ahmed").value == "2019, 50-hour dry needling course"  # as stored
    assert admin.number_input(key="years_clin_ahmed").value == 6
    engine = make_engine(seeded_url)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == "clin_ahmed")).one()
        assert (user.needling_training, user.years_practice) == ("2019, 50-hour dry needling course", 6)
    engine.dispose()


def test_each_sessions_completeness_label_counts_its_applicable_items():
    full_deep = {"technique": "deep", "insertions": 6, "side": "left", "depth_mm": 20.0, "needle_diameter_mm": 0.25,
                 "needle_length_mm": 40.0, "twitch_count": 2, "retention_s": 0, "manipulation": "rotation",
                 "adjuncts": "none", "estim_hz": None, "estim_pulse_us": None, "estim_ma": None,
                 "estim_minutes": None}
    sparse_electrical = {**{name: None for name in full_deep}, "technique": "electrical", "insertions": 4,
                         "side": "right", "depth_mm": 30.0, "estim_hz": 2.0, "estim_ma": 3.0}
    missing_one = {**full_deep, "side": None}  # 8 of 9: below 90 %
    frame = pd.DataFrame([full_deep, sparse_electrical, missing_one])
    assert needling_data.completeness_labels(frame).tolist() == ["9 of 9 ✓", "5 of 13", "8 of 9"]
    assert needling_data.completeness_labels(frame[["technique"]]).tolist() == ["", "", ""]


def _plan_page(actor, patient_id):  # run as a script of its own: nothing from this module is defined there
    """A page with only the plan form, for the patient's open episodes (Patient progress draws it among others)."""
    import streamlit as st

    from dashboard import episode_forms, resources
    from dashboard.confirm import show_result

    show_result("plan")
    episode_forms.plan_form(actor, resources.patient_episodes(actor, patient_id), "P0002", "plan")
    st.caption("drawn")


def test_the_plan_form_sets_an_open_episodes_planned_course_and_refuses_a_bad_one(seeded_url):
    engine = make_engine(seeded_url)
    with Session(engine) as session:
        clinician = session.exec(select(User).where(User.username == "clin_ahmed")).one()
        patient = session.exec(select(Patient).where(Patient.pseudonym == "P0002")).one()
        actor, patient_id = Actor(id=clinician.id, username="clin_ahmed", role="clinician"), patient.id
    engine.dispose()
    at = AppTest.from_function(_plan_page, args=(actor, patient_id), default_timeout=30).run()
    assert at.selectbox(key="plan_which").value is not None  # the one open episode, chosen

    def planned(suffix: str):
        return next(field for field in at.number_input if field.key.endswith(suffix))

    planned("_planned_per_week").set_value(9.0)
    at.button(key="plan_submit").click().run()
    assert "Planned frequency: 9 is outside 0.25–7" in as_read(at.error[0].value)
    assert planned("_planned_per_week").label.startswith("Planned frequency")  # the field the refusal names
    assert planned_courses(seeded_url, "P0002") == [(1, None, None)]
    planned("_planned_sessions").set_value(10)
    planned("_planned_per_week").set_value(1.5)
    at.button(key="plan_submit").click().run()
    assert at.success[0].value.startswith("Planned course of neck pain, episode 1 of P0002: 10 sessions, 1.5 a week")
    assert planned_courses(seeded_url, "P0002") == [(1, 10, 1.5)]
