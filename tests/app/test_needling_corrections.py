"""Correcting a stored session's needling record on Patient progress: the form starts from the stored record, a
corrected value is stored and audited, and a change of technique that removes stored electrical stimulation says
which values it removes before the save, the audit trail keeping them (a tester found them dropped without a word)."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from dashboard import needling_data
from db import corrections
from db.engine import make_engine
from db.models import AuditEvent
from tests.app.test_needling import as_read, stored
from tests.app.test_security import correction_picker, progress_of
from tests.db.factories import ADMIN

# P0002's session 9 in the sample data: electrical dry needling with a needling record and three stimulation values.
SESSION = 9
STIMULATION = {"estim_hz": 80.0, "estim_ma": 7.0, "estim_minutes": 30.0}  # its pulse width is not recorded


def open_session(app, number: int = SESSION):
    progress_of(app, "P0002")
    correction_picker(app).set_value(number).run()
    return app


def field(app, label: str):
    """Return the correction form's number field labelled `label`."""
    [found] = [f for f in app.number_input if f.label == label]
    return found


def technique(app):
    return next(s for s in app.selectbox if s.label == "Technique")


def twitch_answer(app):
    return next(r for r in app.radio if r.label == "Local twitch response")


def updates(url: str, session_id: int) -> list[tuple[dict, dict]]:
    """Return the (before, after) values of each audited update of the session, oldest first."""
    engine = make_engine(url)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.entity == "session",
                                                       AuditEvent.entity_id == session_id,
                                                       AuditEvent.action == "update").order_by(AuditEvent.id)).all()
        found = [(json.loads(e.before), json.loads(e.after)) for e in events]
    engine.dispose()
    return found


def test_the_correction_form_starts_from_the_stored_needling_record_in_a_needling_record_expander(app):
    open_session(app)
    [expander] = [e for e in app.expander if e.label == "Needling record"]
    labels = {f.label: f.value for f in expander.number_input}
    assert labels["Insertions"] == 11 and labels["Depth (mm)"] == 33.0 and labels["Twitch responses (count)"] == 2
    assert labels["Stimulation frequency (Hz)"] == 80.0 and labels["Pulse width (µs)"] is None  # not recorded
    assert expander.pills[0].value == ["none"]  # recorded as no adjunct


def test_a_clinician_corrects_an_electrical_sessions_needling_record_and_it_is_stored_and_audited(app, seeded_url):
    open_session(app)
    row = stored(seeded_url, "P0002")[SESSION - 1]
    field(app, "Depth (mm)").set_value(35.0)
    field(app, "Intensity (mA)").set_value(6.5)
    app.button(key="save_correction").click().run()
    assert not app.error, [e.value for e in app.error]
    assert app.success[0].value.startswith(f"Corrected session {SESSION} of P0002")
    after = stored(seeded_url, "P0002")[SESSION - 1]
    assert (after.depth_mm, after.estim_ma) == (35.0, 6.5)
    assert (after.insertions, after.twitch_count, after.estim_hz, after.estim_minutes, after.adjuncts) == (
        row.insertions, row.twitch_count, row.estim_hz, row.estim_minutes, row.adjuncts)  # the rest kept
    assert updates(seeded_url, row.id) == [({"depth_mm": 33.0, "estim_ma": 7.0}, {"depth_mm": 35.0, "estim_ma": 6.5})]
    assert any("depth from 33.0 to 35.0" in as_read(c.value) and "intensity from 7.0 to 6.5" in as_read(c.value)
               for c in app.caption)  # the session's history says it


def test_changing_electrical_to_deep_names_the_stimulation_it_removes_before_saving_and_the_audit_keeps_it(
        app, seeded_url):
    open_session(app)
    row = stored(seeded_url, "P0002")[SESSION - 1]
    technique(app).select("deep").run()
    # Said before anything is saved, outside the collapsed needling record, naming each stored value it removes.
    [warning] = [w for w in app.warning if "electrical stimulation" in w.value]
    said = as_read(warning.value)
    assert "stimulation frequency 80 Hz" in said and "intensity 7 mA" in said and "stimulation time 30 min" in said
    assert "pulse width" not in said  # not stored: nothing to remove
    assert not any("electrical stimulation" in w.value for e in app.expander for w in e.warning)
    assert "Stimulation frequency (Hz)" not in [f.label for f in app.number_input]
    assert stored(seeded_url, "P0002")[SESSION - 1].estim_hz == 80.0  # nothing saved yet

    app.button(key="save_correction").click().run()
    assert not app.error, [e.value for e in app.error]
    assert app.success[0].value.startswith(f"Corrected session {SESSION} of P0002")
    after = stored(seeded_url, "P0002")[SESSION - 1]
    assert after.technique == "deep"
    assert (after.estim_hz, after.estim_pulse_us, after.estim_ma, after.estim_minutes) == (None, None, None, None)
    [(before, now)] = updates(seeded_url, row.id)
    assert before == {"technique": "electrical", **STIMULATION}
    assert now == {"technique": "deep", **dict.fromkeys(STIMULATION)}
    assert any("stimulation frequency from 80.0 to (blank)" in as_read(c.value) for c in app.caption)


def test_a_technique_kept_electrical_warns_of_nothing(app):
    open_session(app)
    technique(app).select("superficial").run()
    assert any("electrical stimulation" in w.value for w in app.warning)
    technique(app).select("electrical").run()  # back: nothing would be removed
    assert not any("electrical stimulation" in w.value for w in app.warning)
    assert field(app, "Stimulation frequency (Hz)").value == 80.0


def test_an_out_of_range_needling_correction_is_refused_in_one_line_naming_the_field_and_nothing_is_written(
        app, seeded_url):
    open_session(app)
    row = stored(seeded_url, "P0002")[SESSION - 1]
    field(app, "Depth (mm)").set_value(200.0)
    field(app, "Intensity (mA)").set_value(6.5)  # a good value beside it is not written either
    app.button(key="save_correction").click().run()
    assert not app.success
    [error] = app.error
    assert as_read(error.value) == "Not saved. Please correct:\n\n- Depth: 200 is outside 0–150 mm"
    after = stored(seeded_url, "P0002")[SESSION - 1]
    assert (after.depth_mm, after.estim_ma) == (33.0, 7.0)
    assert updates(seeded_url, row.id) == []


def test_a_needling_record_saved_unchanged_says_there_was_nothing_to_correct(app, seeded_url):
    # Sessions with a full record (adjuncts 'none'), two adjuncts, a partial one and none at all.
    open_session(app, 1)
    for number in (1, 7, 9, 2):
        correction_picker(app).set_value(number).run()
        app.button(key="save_correction").click().run()
        assert not app.error, [e.value for e in app.error]
        assert app.success[0].value.startswith(f"Nothing to correct: the form held the stored values of session "
                                               f"{number} of P0002")
    assert all(updates(seeded_url, row.id) == [] for row in stored(seeded_url, "P0002"))


def test_a_twitch_count_is_corrected_with_its_answer_which_the_form_shows_beside_it(app, seeded_url):
    open_session(app)
    assert twitch_answer(app).value == "Yes"
    field(app, "Twitch responses (count)").set_value(0)
    app.button(key="save_correction").click().run()
    assert "Twitch responses: 0 contradicts" in as_read(app.error[0].value)  # the stored yes: refused by name
    twitch_answer(app).set_value("No")
    app.button(key="save_correction").click().run()
    assert app.success[0].value.startswith(f"Corrected session {SESSION} of P0002")
    after = stored(seeded_url, "P0002")[SESSION - 1]
    assert (after.twitch_count, after.twitch_response) == (0, False)


def delete_elsewhere(url: str, session_id: int) -> None:
    """Delete the session straight in the database, as a clinician on another server would."""
    engine = make_engine(url)
    with Session(engine) as session:
        corrections.delete_session(session, actor=ADMIN, session_id=session_id, reason="entered twice")
        session.commit()
    engine.dispose()


def test_a_session_deleted_elsewhere_while_its_form_is_open_is_no_longer_offered(app, seeded_url):
    open_session(app)
    before = len(correction_picker(app).options)
    delete_elsewhere(seeded_url, stored(seeded_url, "P0002")[SESSION - 1].id)
    app.run()
    assert not app.exception
    assert len(correction_picker(app).options) == before - 1  # the later sessions renumbered


def test_a_session_deleted_between_the_pages_reads_is_said_in_one_line(app, seeded_url, monkeypatch):
    open_session(app)
    before = len(correction_picker(app).options)
    row = stored(seeded_url, "P0002")[SESSION - 1]
    read = needling_data.stored_needling

    def deleted_meanwhile(actor, session_id):  # after the page has read the patient's sessions
        delete_elsewhere(seeded_url, row.id)
        return read(actor, session_id)

    monkeypatch.setattr(needling_data, "stored_needling", deleted_meanwhile)
    app.run()
    assert not app.exception
    assert [w.value for w in app.warning] == [
        f"Session {SESSION} has just been deleted by someone else: choose another session."]
    monkeypatch.setattr(needling_data, "stored_needling", read)
    app.run()
    assert not app.exception and len(correction_picker(app).options) == before - 1
