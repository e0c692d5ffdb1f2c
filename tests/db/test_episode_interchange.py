"""The interchange format's optional `episode` column (docs/DESIGN.md section 5) and the rule for rows without one,
on every backend: old files import as before, a long gap or a discharge starts a new episode, listed in the preview."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db import episodes, exporting, file_validation, importing
from db.engine import write_session
from db.file_problems import ImportRefused
from db.models import AuditEvent, Episode, Patient, TreatmentSession
from tests.db.factories import ADMIN, TODAY, import_frame, interchange_rows

# P1's neck pain: two sessions, then a recurrence five months later (10 Feb -> 15 Jul 2025 is 155 days).
RECURRENCE = [
    {"patient_id": "P1", "session_date": day, "technique": "deep", "pain_before": pain, "condition": "neck_pain"}
    for day, pain in (("2025-01-10", "80"), ("2025-02-10", "40"), ("2025-07-15", "70"), ("2025-07-29", "35"))
]
GAP_REASON = "155 days after the last session of episode 1 on 2025-02-10, more than 90"


def placed(engine) -> list[tuple]:
    """Return (patient, date, condition, episode number, session number) of every live session in date order."""
    with Session(engine) as session:
        return [tuple(row) for row in session.execute(
            select(Patient.pseudonym, TreatmentSession.session_date, Episode.condition, Episode.number,
                   TreatmentSession.session_number)
            .join(Episode, Episode.id == TreatmentSession.episode_id).join(Patient, Patient.id == Episode.patient_id)
            .where(TreatmentSession.deleted_at.is_(None))
            .order_by(Patient.pseudonym, TreatmentSession.session_date, TreatmentSession.id))]


def preview(engine, table, gap_days: int | None = None) -> importing.ImportResult:
    with Session(engine) as session:
        return importing.plan_import(session, actor=ADMIN, entries=file_validation.validate_rows(table, today=TODAY),
                                     gap_days=gap_days)


def exported(engine) -> list[str]:
    with write_session(engine) as session:
        return exporting.export_table(session, actor=ADMIN)["episode"].tolist()


def test_a_file_without_the_column_starts_a_new_episode_after_a_long_gap_and_the_preview_says_where(engine):
    table = interchange_rows(*RECURRENCE)
    planned = preview(engine, table)
    assert [(e.row, e.number, e.reason) for e in planned.later_episodes()] == [(4, 2, GAP_REASON)]
    assert placed(engine) == []  # a preview writes nothing
    result = import_frame(engine, table)
    assert result.new_episodes == planned.new_episodes
    assert "new episode: row 4, P1 neck pain: episode 2 (" + GAP_REASON + ")" in result.report()
    assert [(number, k) for *_, number, k in placed(engine)] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert exported(engine) == ["1", "1", "2", "2"]
    # Importing the same old file again changes nothing: its rows keep the episodes they went to.
    again = import_frame(engine, table)
    assert (again.inserted, again.updated, again.unchanged, again.new_episodes) == (0, 0, 4, [])


def test_the_rule_places_rows_by_date_whatever_their_order_in_the_file(engine):
    result = import_frame(engine, interchange_rows(*reversed(RECURRENCE)))
    assert [(e.row, e.number) for e in result.later_episodes()] == [(3, 2)]  # 15 Jul is the file's row 3
    assert [(number, k) for *_, number, k in placed(engine)] == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_the_gap_of_the_rule_is_the_configured_one(engine):
    rows = interchange_rows(RECURRENCE[0], RECURRENCE[1])  # 31 days apart
    assert preview(engine, rows).later_episodes() == []
    assert [(e.row, e.number) for e in preview(engine, rows, gap_days=30).later_episodes()] == [(3, 2)]


def test_rows_before_a_stored_episodes_first_session_are_listed_as_its_new_baseline_by_the_earliest(engine):
    import_frame(engine, interchange_rows(RECURRENCE[0], RECURRENCE[1]))  # P1's course from 2025-01-10
    earlier = [{**RECURRENCE[0], "session_date": day, "pain_before": "30", "notes": note}
               for day, note in (("2024-12-20", "later row"), ("2024-12-03", "mistyped year"), ("2025-01-20", ""))]
    new_patient = {**RECURRENCE[0], "patient_id": "P2", "session_date": "2024-06-01"}
    table = interchange_rows(*earlier, new_patient)
    planned = preview(engine, table)
    assert [(b.row, b.patient_id, b.condition, b.number, b.first_session) for b in planned.new_baselines] == [
        (3, "P1", "neck_pain", 1, date(2025, 1, 10))]  # the earliest of the two earlier rows; the new patient's none
    result = import_frame(engine, table)
    assert result.new_baselines == planned.new_baselines
    assert ("new baseline: row 3, P1 neck pain: session 1 of episode 1, before its first session on 2025-01-10"
            in result.report())
    assert [(day.isoformat(), k) for patient, day, _, _, k in placed(engine) if patient == "P1"][:2] == [
        ("2024-12-03", 1), ("2024-12-20", 2)]
    assert import_frame(engine, table).new_baselines == []  # imported again: nothing new


def test_a_file_with_the_column_puts_each_row_in_the_episode_it_numbers_and_exports_it_back(engine):
    numbered = [row | {"episode": number} for row, number in zip(RECURRENCE, ("1", "2", "2", "3"), strict=True)]
    result = import_frame(engine, interchange_rows(*numbered))
    assert [(e.row, e.number, e.reason) for e in result.new_episodes] == [
        (2, 1, "numbered so in the file"), (3, 2, "numbered so in the file"), (5, 3, "numbered so in the file")]
    assert [(number, k) for *_, number, k in placed(engine)] == [(1, 1), (2, 1), (2, 2), (3, 1)]
    assert exported(engine) == ["1", "2", "2", "3"]


def test_an_empty_cell_in_the_column_is_decided_by_the_rule(engine):
    rows = [row | {"episode": ""} for row in RECURRENCE]
    import_frame(engine, interchange_rows(*rows))
    assert exported(engine) == ["1", "1", "2", "2"]


def test_a_file_moves_a_stored_session_to_the_episode_it_numbers_audited_and_listed(engine):
    import_frame(engine, interchange_rows(*RECURRENCE[:2]))
    moved = interchange_rows(RECURRENCE[0] | {"episode": "1"}, RECURRENCE[1] | {"episode": "2"})
    result = import_frame(engine, moved)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    assert [(c.row, c.field, c.old, c.new) for c in result.changes] == [(3, "episode", "1", "2")]
    assert [(number, k) for *_, number, k in placed(engine)] == [(1, 1), (2, 1)]
    with Session(engine) as session:
        update = session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).one()
    assert (json.loads(update.before), json.loads(update.after)) == ({"episode": 1}, {"episode": 2})


def discharge_first(engine, on: str) -> None:
    with write_session(engine) as session:
        episode_id = session.scalars(select(Episode.id)).first()
        episodes.discharge_episode(session, actor=ADMIN, episode_id=episode_id, status="goal_met",
                                   discharged_on=date.fromisoformat(on), today=TODAY)


def test_a_row_after_a_discharge_starts_a_new_episode_and_a_number_that_would_extend_it_is_refused(engine):
    import_frame(engine, interchange_rows(*RECURRENCE[:2]))
    discharge_first(engine, "2025-02-20")
    late = RECURRENCE[1] | {"session_date": "2025-03-01", "pain_before": "30"}
    with pytest.raises(ImportRefused) as refused:
        import_frame(engine, interchange_rows(late | {"episode": "1"}))
    assert str(refused.value) == (
        "row 2, column episode: episode 1 of P1 (neck pain) was discharged on 2025-02-20; a session on 2025-03-01 "
        "after it would extend it: leave the cell empty to start a new episode, or give the next number")
    assert [(number, k) for *_, number, k in placed(engine)] == [(1, 1), (1, 2)]
    result = import_frame(engine, interchange_rows(late))
    assert [(e.row, e.number, e.reason) for e in result.new_episodes] == [
        (2, 2, "episode 1 was discharged on 2025-02-20 (goal met)")]
    assert [(number, k) for *_, number, k in placed(engine)] == [(1, 1), (1, 2), (2, 1)]


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two", "1000", "1 2", "²"])
def test_an_episode_cell_that_is_not_a_number_from_1_to_999_is_refused_naming_row_and_column(engine, value):
    rows = interchange_rows(RECURRENCE[0] | {"episode": "1"}, RECURRENCE[1] | {"episode": value})
    with pytest.raises(ImportRefused) as refused:
        import_frame(engine, rows)
    assert [(p.row, p.column, p.value) for p in refused.value.problems] == [(3, "episode", value)]
    assert str(refused.value) == (f"row 3, column episode: '{value}' is not an episode number: a whole number from 1 "
                                  "(the patient's first course of care for this condition) to 999")
    assert placed(engine) == []
