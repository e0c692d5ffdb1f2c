"""Every page renders from the sample data, the session form refuses bad input, and a saved session shows."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from clinic.vocabulary import SIDE_EFFECTS
from db.engine import BUSY_MESSAGE, DatabaseBusy
from tests.app.conftest import save_button, session_count


def select_patient(app, pseudonym):
    """Pick a patient on the progress page by pseudonymous id."""
    app.selectbox(key="progress_patient").select(pseudonym).run()


def as_read(markdown: str) -> str:
    """Return a message as the user reads it: typed values are shown literally, their markdown escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def table_with(app, column):
    """Return the value of the first dataframe on the page that has `column`."""
    for frame in app.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column on the page")


def test_clinician_lands_on_the_session_form(app):
    assert [t.value for t in app.title] == ["Record session"]
    assert save_button(app).label == "Save session"
    assert app.date_input(key="session_date").value == date.today()


@pytest.mark.parametrize(
    ("role", "title"),
    [("manager", "Technique outcomes"), ("patient", "My progress"), ("clinician", "Record session"),
     ("admin", "Record session")],
)
def test_each_role_lands_on_its_first_page_without_errors(as_role, role, title):
    app = as_role(role)
    assert [t.value for t in app.title] == [title]
    assert not app.exception


def test_clinician_patient_progress_shows_chart_sentence_and_sessions(app):
    app.switch_page("views/patient_progress.py").run()
    assert not app.exception
    assert [t.value for t in app.title] == ["Patient progress"]
    select_patient(app, "P0002")
    assert "lower than at your first session" in app.info[0].value or "first session" in app.info[0].value
    table = table_with(app, "Session")
    assert list(table["Session"]) == list(range(1, len(table) + 1))
    assert {"Notes", "Clinician", "Side effects"} <= set(table.columns)


def test_patient_sees_only_their_own_sessions_without_notes_or_clinician(as_role):
    app = as_role("patient")
    assert not app.exception
    assert "progress_patient" not in [w.key for w in app.selectbox]  # no way to pick another patient
    table = table_with(app, "Session")
    assert "Notes" not in table.columns and "Clinician" not in table.columns
    assert len(table) >= 1


def test_a_patient_reads_their_sessions_latest_first_as_the_caption_says(as_role):
    app = as_role("patient")
    table = table_with(app, "Session")  # the clinician's table runs from session 1 (above)
    assert list(table["Session"]) == list(range(len(table), 0, -1))
    assert any(c.value.startswith("Your latest session first.") for c in app.caption)


def fill_valid_session(app, patient="P9001", pain_before=70.0):
    app.text_input(key="new_patient_id").input(patient)
    app.number_input(key="pain_before").set_value(pain_before)
    app.number_input(key="pain_after").set_value(55.0)
    app.multiselect(key="side_effects_mild").select("bruising")
    return app


def test_saving_a_session_stores_it_and_shows_the_patients_chart(app, seeded_url):
    before = session_count(seeded_url)
    save_button(fill_valid_session(app)).click().run()
    assert not app.exception
    assert not app.error
    assert app.success[0].value == (f"Saved session 1 for P9001: {date.today():%Y-%m-%d}, Deep dry needling, "
                                    "pain 70 → 55 (VAS 0–100 mm), bruising (mild).")
    assert session_count(seeded_url) == before + 1
    assert app.selectbox(key="record_patient").value == "P9001"
    assert any(h.value == "Progress of P9001" for h in app.header)

    app.switch_page("views/patient_progress.py").run()
    select_patient(app, "P9001")
    table = table_with(app, "Session")
    assert list(table["Pain before (0–100)"]) == [70.0]
    assert list(table["Side effects"]) == ["bruising (mild)"]


def test_a_save_that_waits_too_long_for_other_writers_says_so_and_keeps_the_form(app, seeded_url, monkeypatch):
    def busy(*args, **kwargs):
        raise DatabaseBusy(BUSY_MESSAGE)

    monkeypatch.setattr("db.writes.record_session", busy)  # as write_session raises after its lock timeout
    before = session_count(seeded_url)
    save_button(fill_valid_session(app)).click().run()
    assert not app.exception
    assert "database is busy" in app.error[0].value and "try again" in app.error[0].value
    assert session_count(seeded_url) == before
    assert app.number_input(key="pain_before").value == 70.0  # nothing to type again


def test_second_session_for_an_existing_patient_gets_the_next_number(app, seeded_url):
    app.selectbox(key="record_patient").select("P0002").run()
    # The form starts from the patient's last session.
    assert app.radio(key="technique").value == "electrical"
    app.number_input(key="pain_before").set_value(20.0)
    # Within the course of care (its last session is on 2026-06-09): today may be long after it, which asks first.
    app.date_input(key="session_date").set_value(date(2026, 6, 10))
    save_button(app).click().run()
    assert not app.error
    assert app.success[0].value.startswith("Saved session ")
    assert " for P0002: " in app.success[0].value


def entry_values(app) -> dict:
    """Return what the session form holds for this session's own entry (not the patient's defaults)."""
    return {
        "pain_before": app.number_input(key="pain_before").value,
        "pain_after": app.number_input(key="pain_after").value,
        "side_effects": [app.multiselect(key=f"side_effects_{s}").value for s in ("mild", "significant", "serious")],
        "notes": app.text_area(key="notes").value,
    }


BLANK_ENTRY = {"pain_before": None, "pain_after": None, "side_effects": [[], [], []], "notes": ""}


def test_after_a_save_the_entry_is_blank_and_the_same_entry_again_is_not_saved_twice(app, seeded_url):
    before = session_count(seeded_url)
    fill_valid_session(app).text_area(key="notes").input("felt dizzy")
    save_button(app).click().run()
    assert app.success and not app.exception
    assert entry_values(app) == BLANK_ENTRY
    assert any("Recording for **P9001**" in m.value for m in app.markdown)  # the form names who it writes to

    # The same values again for the same patient, as a second click sent before the blank form arrived.
    app.number_input(key="pain_before").set_value(70.0)
    app.number_input(key="pain_after").set_value(55.0)
    app.multiselect(key="side_effects_mild").select("bruising")
    app.text_area(key="notes").input("felt dizzy")
    save_button(app).click().run()
    assert not app.exception
    assert app.warning and app.warning[0].value.startswith("Already saved as session 1 for P9001:")
    assert session_count(seeded_url) == before + 1


def test_changing_patient_never_carries_the_typed_entry(app):
    app.selectbox(key="record_patient").select("P0002").run()
    app.number_input(key="pain_before").set_value(40.0)
    app.multiselect(key="side_effects_significant").select("headache")
    app.text_area(key="notes").input("for P0002 only")
    app.selectbox(key="record_patient").select("New patient…").run()
    assert not app.exception
    assert entry_values(app) == BLANK_ENTRY
    assert any("Recording for **a new patient**" in m.value for m in app.markdown)
    app.number_input(key="pain_before").set_value(40.0)
    app.selectbox(key="record_patient").select("P0003").run()
    assert entry_values(app) == BLANK_ENTRY


@pytest.mark.parametrize(("page", "key"), [("views/record_session.py", "record_patient"),
                                           ("views/patient_progress.py", "progress_patient")])
def test_a_search_with_a_single_match_picks_that_patient(app, page, key):
    app.switch_page(page).run()
    app.text_input(key=f"{key}_search").input("P0002").run()
    assert not app.exception
    assert app.selectbox(key=key).value == "P0002"


def test_a_vas_value_typed_on_the_nrs_offers_a_one_click_switch_to_the_vas(app, seeded_url):
    before = session_count(seeded_url)
    fill_valid_session(app, pain_before=40.0)
    app.radio(key="pain_scale").set_value("nrs_10")
    save_button(app).click().run()
    assert "Pain before: 40 is outside the scale 0–10" in as_read(app.error[0].value)
    app.button(key="switch_to_vas").click().run()
    assert app.radio(key="pain_scale").value == "vas_100"
    assert app.number_input(key="pain_before").value == 40.0  # nothing to type again
    save_button(app).click().run()
    assert not app.exception and not app.error
    assert "pain 40 → 55 (VAS 0–100 mm)" in app.success[0].value
    assert session_count(seeded_url) == before + 1


BAD_INPUTS = [
    ("pain before above the VAS", {"pain_before": 101.0}, "Pain before: 101 is outside the scale 0–100"),
    ("negative pain after", {"pain_after": -1.0}, "Pain after: -1 is outside the scale"),
    ("missing pain before", {"pain_before": None}, "Pain before: is required"),
    ("missing patient id", {"new_patient_id": ""}, "Patient: is required"),
    ("bad patient id", {"new_patient_id": "Jane Doe"}, "Patient: must be 1–64 letters"),
    ("a stored patient's id as new", {"new_patient_id": "P0003"},
     "Patient: P0003 is already a patient: choose them in the Patient list"),
    ("a stored id in other capitals", {"new_patient_id": "p0002"},
     "Patient: p0002 is the id of patient P0002 in other capitals: choose P0002 in the Patient list"),
    ("NRS above 10", {"pain_scale": "nrs_10", "pain_before": 11.0}, "Pain before: 11 is outside the scale 0–10"),
    ("NRS not whole", {"pain_scale": "nrs_10", "pain_before": 6.5}, "not a whole number"),
    ("same side effect twice", {"side_effects_significant": "bruising"}, "Side effects: 'bruising' is listed more"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_session_form_refuses_bad_input_and_saves_nothing(app, seeded_url, case, change, message):
    before = session_count(seeded_url)
    fill_valid_session(app)
    for key, value in change.items():
        if key == "new_patient_id":
            app.text_input(key=key).input(value)
        elif key == "pain_scale":
            app.radio(key=key).set_value(value)
        elif key.startswith("side_effects"):
            app.multiselect(key=key).select(value)
        else:
            app.number_input(key=key).set_value(value)
    save_button(app).click().run()
    assert not app.exception
    assert app.error, f"{case}: no error shown"
    assert message in as_read(app.error[0].value)
    assert not app.success
    assert session_count(seeded_url) == before


def test_session_form_refuses_a_future_date(app, seeded_url):
    # The widget has no maximum on purpose: a clamped date would silently save the wrong day.
    before = session_count(seeded_url)
    fill_valid_session(app)
    app.date_input(key="session_date").set_value(date.today() + timedelta(days=1))
    save_button(app).click().run()
    assert app.error and "is in the future" in app.error[0].value
    assert session_count(seeded_url) == before


# -- the correction form: the session form's fields, starting from the stored session ----------------------------------


def correction_effects(app) -> set[str]:
    """Return the side effects the correction form holds, in the table's words ("bruising (mild)")."""
    return {f"{SIDE_EFFECTS[code].lower()} ({field.label.split('— ')[1]})"
            for field in app.multiselect if field.label.startswith("Side effects — ") for code in field.value}


def test_the_correction_form_starts_from_the_session_and_saves_a_correction(app, seeded_url):
    app.switch_page("views/patient_progress.py").run()
    select_patient(app, "P0002")
    table = table_with(app, "Session")
    row = table[table["Side effects"] != "none"].iloc[0]
    number = int(row["Session"])
    app.segmented_control(key=next(s.key for s in app.segmented_control)).set_value(number).run()
    assert correction_effects(app) == set(row["Side effects"].split(", "))
    [pain_before] = [field for field in app.number_input if field.label == "Pain before"]
    points = 10 if next(field.value for field in app.selectbox if field.label == "Pain scale") == "nrs_10" else 1
    assert pain_before.value * points == row["Pain before (0–100)"]  # the stored value, on its scale

    count = session_count(seeded_url)
    pain_before.set_value(1.0)
    app.button(key="save_correction").click().run()
    assert not app.error
    assert app.success[0].value.startswith(f"Corrected session {number} of P0002")
    corrected = table_with(app, "Session").set_index("Session").loc[number]
    assert corrected["Pain before (0–100)"] == points
    assert corrected["Side effects"] == row["Side effects"]  # kept as they were
    assert session_count(seeded_url) == count


def test_a_correction_saved_unchanged_says_there_was_nothing_to_correct(app):
    app.switch_page("views/patient_progress.py").run()
    select_patient(app, "P0002")
    app.button(key="save_correction").click().run()  # the form as it opened: the stored values
    assert not app.exception and not app.error
    assert app.success[0].value.startswith("Nothing to correct: the form held the stored values of session 10 of P0002")
