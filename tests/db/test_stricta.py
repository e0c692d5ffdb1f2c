"""The needling record (STRICTA, issue #16): validated with one line naming the field, refused by the database's CHECKs
on both backends, written and corrected with its audit, carried by every interchange file and by FHIR."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from clinic.vocabulary import RANGES, STRICTA_ITEMS
from db import corrections, fhir, interchange, spreadsheets, stricta_queries
from db.engine import write_session
from db.file_problems import ImportRefused
from db.models import AuditEvent, TreatmentSession
from db.validation import InvalidInput
from tests.db.factories import ADMIN, import_file, import_frame, interchange_rows, record, session_input

# A full electrical session's needling record as the export writes it, and as SessionInput takes it.
FULL = {"insertions": "8", "side": "left", "depth_mm": "32.5", "needle_diameter_mm": "0.25", "needle_length_mm": "40",
        "twitch_count": "3", "retention_s": "900", "manipulation": "pistoning_rotation", "estim_hz": "2",
        "estim_pulse_us": "250", "estim_ma": "7.5", "estim_minutes": "15", "adjuncts": "cold_spray;stretching"}
ELECTRICAL = {"patient_id": "P1", "session_date": "2025-03-01", "technique": "electrical", "pain_before": "60",
              "twitch_response": "yes", "muscles": "upper_trapezius;levator_scapulae", "condition": "neck_pain"}


def problems_of(**fields) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as refused:
        session_input(**fields)
    return [(problem.field, str(problem)) for problem in refused.value.problems]


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"insertions": 501}, "insertions", "Insertions: 501 is outside 1–500"),
    ({"insertions": 2.5}, "insertions", "Insertions: is not a whole number"),
    ({"depth_mm": -1}, "depth_mm", "Depth: -1 is outside 0–150 mm"),
    ({"needle_diameter_mm": 0.6}, "needle_diameter_mm", "Needle diameter: 0.6 is outside 0.1–0.5 mm"),
    ({"needle_length_mm": 4}, "needle_length_mm", "Needle length: 4 is outside 5–150 mm"),
    ({"twitch_count": 201}, "twitch_count", "Twitch responses: 201 is outside 0–200"),
    ({"retention_s": 7201}, "retention_s", "Retention: 7201 is outside 0–7200"),
    ({"side": "up"}, "side", "Side: unknown code 'up'; use one of left, right, bilateral, midline"),
    ({"manipulation": "twist"}, "manipulation", "Manipulation: unknown code 'twist'"),
    ({"adjuncts": ["massage", "yoga"]}, "adjuncts", "Adjuncts: unknown code 'yoga'"),
    ({"adjuncts": ["none", "heat"]}, "adjuncts", "Adjuncts: 'none' (no adjunct) cannot go with adjuncts"),
    ({"adjuncts": "heat;heat"}, "adjuncts", "Adjuncts: 'heat' is listed more than once"),
    ({"estim_hz": 2}, "estim_hz", "Stimulation frequency: only with technique electrical (this session is deep)"),
    ({"technique": "electrical", "estim_ma": 61}, "estim_ma", "Intensity: 61 is outside 0–60 mA"),
    ({"twitch_count": 3, "twitch_response": False}, "twitch_count", "Twitch responses: 3 contradicts twitch response"),
    ({"twitch_count": 0, "twitch_response": True}, "twitch_count", "Twitch responses: 0 contradicts twitch response"),
])
def test_a_needling_value_out_of_range_or_code_is_refused_in_one_line_naming_its_field(fields, field, words):
    [(named, message)] = problems_of(**fields)
    assert named == field and message.startswith(words)


def test_adjuncts_none_is_recorded_and_differs_from_not_recorded_and_codes_keep_the_vocabulary_order():
    assert session_input(adjuncts=["none"]).adjuncts == "none"
    assert session_input().adjuncts is None and session_input(adjuncts=[]).adjuncts is None
    assert session_input(adjuncts=["stretching", "cold_spray"]).adjuncts == "cold_spray;stretching"


def test_a_twitch_count_without_a_twitch_answer_gives_the_answer():
    assert session_input(twitch_count=2).twitch_response is True
    assert session_input(twitch_count=0).twitch_response is False
    assert session_input().twitch_response is None


def _inserted_session(engine) -> int:
    record(engine, technique="deep")
    with Session(engine) as session:
        return session.scalars(select(TreatmentSession.id)).one()


BAD_ROWS = [  # (column, a value its CHECK refuses): out of range, unknown code, or on another technique
    ("insertions", 0), ("insertions", 501), ("side", "'up'"), ("depth_mm", 150.5), ("needle_diameter_mm", 0.05),
    ("needle_length_mm", 151), ("twitch_count", 201), ("retention_s", -1), ("manipulation", "'twist'"),
    ("estim_hz", 2), ("estim_pulse_us", 5), ("estim_ma", 1), ("estim_minutes", 10), ("adjuncts", "'yoga'"),
    ("adjuncts", "'massage;massage'"), ("adjuncts", "'none;heat'"), ("adjuncts", "''"), ("twitch_count", 0),
]


@pytest.mark.parametrize(("column", "value"), BAD_ROWS)
def test_the_database_refuses_a_value_outside_the_record_on_every_backend(engine, column, value):
    # Written around the validation, straight to the table: the session is deep, with a twitch response of yes.
    session_id = _inserted_session(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE sessions SET twitch_response = :yes WHERE id = :id"),
                           {"yes": True, "id": session_id})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(f"UPDATE sessions SET {column} = {value} WHERE id = :id"), {"id": session_id})


def test_the_database_takes_every_value_at_the_ends_of_its_range(engine):
    session_id = _inserted_session(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE sessions SET technique = 'electrical' WHERE id = :id"), {"id": session_id})
        for end in (0, 1):
            values = {name: RANGES[name][end] for name in STRICTA_ITEMS if name in RANGES}
            connection.execute(text(f"UPDATE sessions SET {', '.join(f'{n} = :{n}' for n in values)}, "
                                    "adjuncts = 'cold_spray;massage;stretching;exercise;heat;other', side = 'midline',"
                                    " manipulation = 'pistoning_rotation', twitch_response = NULL WHERE id = :id"),
                               values | {"id": session_id})


def test_episodes_and_accounts_refuse_a_planned_course_or_years_outside_their_range(engine):
    record(engine)
    for statement in ("UPDATE episodes SET planned_sessions = 51", "UPDATE episodes SET planned_per_week = 0.2",
                      "UPDATE users SET years_practice = 61"):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text("INSERT INTO users (username, display_name, role, failed_logins, is_active, "
                                    "created_at) VALUES ('u1', 'u1', 'clinician', 0, TRUE, '2025-01-01')"))
            connection.execute(text(statement))


def test_a_recorded_session_keeps_its_record_and_a_correction_audits_it_before_and_after(engine):
    fields = FULL | {k: v for k, v in ELECTRICAL.items() if k != "muscles"}
    stored = record(engine, **fields)
    assert {name: stored[name] for name in STRICTA_ITEMS} == {
        "insertions": 8, "side": "left", "depth_mm": 32.5, "needle_diameter_mm": 0.25, "needle_length_mm": 40,
        "twitch_count": 3, "retention_s": 900, "manipulation": "pistoning_rotation", "estim_hz": 2,
        "estim_pulse_us": 250, "estim_ma": 7.5, "estim_minutes": 15, "adjuncts": "cold_spray;stretching"}
    with write_session(engine) as session:
        corrections.correct_session(session, actor=ADMIN, session_id=stored["id"],
                                    entry=session_input(**fields | {"insertions": 10, "adjuncts": ["none"]}))
    with Session(engine) as session:
        update = session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).one()
        history = corrections.session_history(session, actor=ADMIN, session_id=stored["id"])
    assert json.loads(update.before) == {"insertions": 8, "adjuncts": "cold_spray;stretching"}
    assert json.loads(update.after) == {"insertions": 10, "adjuncts": "none"}
    assert "corrected adjuncts from cold_spray;stretching to none; insertions from 8 to 10" in history[-1]


def test_the_form_s_defaults_are_the_patient_s_last_session_s_record(engine):
    record(engine, session_date="2025-01-10", insertions=5, adjuncts=["heat"])
    record(engine, session_date="2025-01-17", insertions=7, side="right", adjuncts=["none"])
    with Session(engine) as session:
        defaults = stricta_queries.last_needling_defaults(session, actor=ADMIN, patient_id=1)
        nobody = stricta_queries.last_needling_defaults(session, actor=ADMIN, patient_id=99)
    assert defaults["insertions"] == 7 and defaults["side"] == "right" and defaults["adjuncts"] == ["none"]
    assert defaults["depth_mm"] is None and nobody == {}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_every_needling_field_round_trips_through_a_file_and_a_fresh_database(engine, tmp_path, suffix):
    source = tmp_path / f"source{suffix}"
    rows = interchange_rows(ELECTRICAL | FULL, ELECTRICAL | {"session_date": "2025-03-08", "technique": "deep",
                                                             "twitch_response": "no", "twitch_count": "0",
                                                             "side": "midline", "adjuncts": "none"})
    spreadsheets.write_table(rows, source)
    import_file(engine, source)
    with Session(engine) as session:
        from db import exporting

        exported = exporting.export_table(session, actor=ADMIN)
    assert list(exported.columns) == interchange.EXPORT_COLUMNS
    first, second = exported.to_dict("records")
    assert {name: first[name] for name in STRICTA_ITEMS} == FULL
    assert {name: second[name] for name in STRICTA_ITEMS} == dict.fromkeys(STRICTA_ITEMS, "") | {
        "twitch_count": "0", "side": "midline", "adjuncts": "none"}
    spreadsheets.write_table(exported, tmp_path / f"again{suffix}")
    assert import_file(engine, tmp_path / f"again{suffix}").unchanged == 2


def test_fhir_carries_the_side_the_needle_and_the_dose_of_every_field(engine):
    import_frame(engine, interchange_rows(ELECTRICAL | FULL, ELECTRICAL | {"session_date": "2025-03-08"}))
    with write_session(engine) as session:
        bundle = fhir.export_bundle(session, actor=ADMIN)
    Bundle.model_validate(bundle)
    full, bare = (e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Procedure")
    assert fhir.needling_record(full) == FULL and fhir.needling_record(bare) == {}
    assert [site["extension"][0]["valueCodeableConcept"]["coding"][0] for site in full["bodySite"]] == [
        {"system": "http://snomed.info/sct", "code": "7771000", "display": "Left"}] * 2
    [needle] = full["contained"]
    assert full["focalDevice"] == [{"manipulated": {"reference": "#needle"}}] and needle["resourceType"] == "Device"
    dose = {x["url"]: x for x in next(e for e in full["extension"] if e["url"] == fhir.NEEDLING_EXTENSION)["extension"]}
    assert dose["pulseWidth"]["valueQuantity"] == {"value": 250, "unit": "µs", "system": fhir.UCUM, "code": "us"}
    assert dose["insertions"] == {"url": "insertions", "valueInteger": 8}
    assert full["extension"][0]["url"] == fhir.EPISODE_EXTENSION  # the episode's reference stays first


def test_midline_is_a_local_laterality_code():
    assert fhir.LATERALITY["midline"] == (fhir.LATERALITY_SYSTEM, "midline", "Midline")
    assert {side: code for side, (_, code, _) in fhir.LATERALITY.items() if side != "midline"} == {
        "left": "7771000", "right": "24028007", "bilateral": "51440002"}


def test_a_file_is_refused_naming_the_row_and_column_of_a_needling_value_that_breaks_a_rule(engine):
    rows = interchange_rows(ELECTRICAL | {"technique": "deep", "estim_hz": "2"},
                            ELECTRICAL | {"session_date": "2025-03-08", "twitch_response": "no", "twitch_count": "4"},
                            ELECTRICAL | {"session_date": "2025-03-09", "depth_mm": "200"})
    with pytest.raises(ImportRefused) as refused:
        import_frame(engine, rows)
    assert [(p.row, p.column, p.value) for p in refused.value.problems] == [
        (2, "estim_hz", "2"), (3, "twitch_count", "4"), (4, "depth_mm", "200")]
    assert "only with technique electrical" in refused.value.problems[0].reason


def test_an_old_file_without_the_columns_imports_and_leaves_a_stored_record_as_it_is(engine):
    import_frame(engine, interchange_rows(ELECTRICAL | FULL))
    old = interchange_rows(ELECTRICAL | {"pain_before": "55"}, ELECTRICAL | {"session_date": "2025-03-08"})
    assert set(old.columns).isdisjoint(STRICTA_ITEMS)
    result = import_frame(engine, old)
    assert (result.inserted, result.updated) == (1, 1)
    assert [change.field for change in result.changes] == ["pain_before"]
    with Session(engine) as session:
        frame = stricta_queries.stricta_sessions(session, actor=ADMIN)
    kept, new = frame.to_dict("records")
    assert kept["insertions"] == 8 and kept["adjuncts"] == "cold_spray;stretching" and kept["twitch_count"] == 3
    assert all(pd.isna(new[name]) for name in STRICTA_ITEMS)


def test_an_old_file_s_twitch_answer_that_contradicts_the_kept_count_drops_the_count(engine):
    import_frame(engine, interchange_rows(ELECTRICAL | FULL))
    result = import_frame(engine, interchange_rows(ELECTRICAL | {"twitch_response": "no"}))
    assert {(c.field, c.old, c.new) for c in result.changes} == {("twitch_response", "yes", "no"),
                                                                 ("twitch_count", "3", "")}


def test_stricta_sessions_are_pseudonymous_rows_with_every_item(engine):
    import_frame(engine, interchange_rows(ELECTRICAL | FULL | {"clinician": "clin_a"}))
    with Session(engine) as session:
        frame = stricta_queries.stricta_sessions(session, actor=ADMIN)
    assert list(frame.columns) == stricta_queries.STRICTA_SESSION_COLUMNS
    row = frame.iloc[0]
    assert (row["patient_id"], row["clinician"], row["technique"], row["estim_ma"]) == ("P1", "clin_a",
                                                                                          "electrical", 7.5)
    assert bool(row["twitch_response"])


def test_a_correction_without_the_needling_fields_keeps_the_record_but_drops_what_it_contradicts(engine):
    stored = record(engine, **FULL | {k: v for k, v in ELECTRICAL.items() if k != "muscles"})
    base = {k: v for k, v in ELECTRICAL.items() if k != "muscles"}  # a correction form that knows no record

    def corrected(**fields) -> dict:
        with write_session(engine) as session:
            row, _ = corrections.correct_session(session, actor=ADMIN, session_id=stored["id"],
                                                 entry=session_input(**base | fields))
            return {name: getattr(row, name) for name in STRICTA_ITEMS}

    assert corrected(pain_before="50") == {name: stored[name] for name in STRICTA_ITEMS}
    after = corrected(technique="deep", twitch_response="no")
    assert after["twitch_count"] is None and after["estim_hz"] is None and after["estim_minutes"] is None
    assert (after["insertions"], after["adjuncts"]) == (8, "cold_spray;stretching")
    assert corrected(technique="deep", twitch_response="no", insertions=None)["insertions"] is None  # said: cleared


def test_a_patient_s_needling_record_joins_their_sessions_by_id(engine):
    record(engine, session_date="2025-01-10", insertions=5)
    record(engine, patient_id="P2", session_date="2025-01-11", insertions=9)
    with Session(engine) as session:
        from db import queries

        mine = stricta_queries.patient_needling(session, actor=ADMIN, patient_id=1)
        sessions = queries.patient_sessions(session, actor=ADMIN, patient_id=1)
    assert list(mine.columns) == ["session_id", *STRICTA_ITEMS]
    assert mine["session_id"].tolist() == sessions["session_id"].tolist() and mine["insertions"].tolist() == [5]


def test_one_session_s_needling_record_is_read_as_stored_for_the_correction_form(engine):
    first = record(engine, session_date="2025-01-10", insertions=5, depth_mm=12.5, adjuncts=["heat", "massage"])
    with Session(engine) as session:
        values = stricta_queries.session_needling(session, actor=ADMIN, session_id=first["id"])
        with pytest.raises(ValueError, match="no session 999"):
            stricta_queries.session_needling(session, actor=ADMIN, session_id=999)
    assert list(values) == list(STRICTA_ITEMS)
    assert (values["insertions"], values["depth_mm"], values["adjuncts"]) == (5, 12.5, "massage;heat")
    assert type(values["insertions"]) is int and values["estim_hz"] is None  # a whole number, not 5.0
