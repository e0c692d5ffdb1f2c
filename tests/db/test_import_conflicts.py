"""Tests that an import lists every value it changes and never silently undoes a correction made in the app (issue 12,
item 5): such a session is a conflict, left as corrected unless the file's values are chosen."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlmodel import Session

from db import corrections, file_validation, importing
from db.cli import main
from db.engine import write_session
from db.import_result import FieldChange, ImportResult
from tests.db.factories import ADMIN, engine_on, import_frame, interchange_rows, session_input, stored_sessions

FIRST = [
    dict(patient_id="P0041", session_date="2025-03-01", technique="deep", pain_before="12", pain_after="8",
         condition="neck_pain", notes="first"),
    dict(patient_id="P0041", session_date="2025-03-08", technique="deep", pain_before="10", condition="neck_pain"),
    dict(patient_id="P0042", session_date="2025-03-02", technique="superficial", pain_before="50"),
]


def rows(changes: dict[int, dict] | None = None) -> pd.DataFrame:
    table = [dict(row) for row in FIRST]
    for index, values in (changes or {}).items():
        table[index].update(values)
    return interchange_rows(*table)


def session_id(engine, patient: str, day: str) -> int:
    stored = stored_sessions(engine)
    return int(stored.loc[(stored["patient_id"] == patient)
                          & (stored["session_date"].map(str) == day), "id"].item())


def correct_in_the_app(engine, patient: str, day: str, **fields) -> int:
    """Correct a stored session as the Patient progress page does; return its id."""
    sid = session_id(engine, patient, day)
    entry = session_input(patient_id=patient, session_date=day, technique="deep", condition="neck_pain",
                          pain_after=8, notes="first", **fields)
    with write_session(engine) as session:
        corrections.correct_session(session, actor=ADMIN, session_id=sid, entry=entry)
    return sid


def plan(engine, table: pd.DataFrame, **options) -> ImportResult:
    with Session(engine) as session:
        return importing.plan_import(session, actor=ADMIN, entries=file_validation.validate_rows(table), **options)


def pain_before(engine, patient: str, day: str) -> float:
    stored = stored_sessions(engine)
    return stored.loc[stored["id"] == session_id(engine, patient, day), "pain_before"].item()


def test_the_preview_lists_every_changed_value_by_row_patient_date_and_field(engine):
    import_frame(engine, rows())
    corrected = rows({0: dict(pain_before="15", notes="first, corrected", side_effects="bruising:mild"),
                      2: dict(pain_after="40")})
    preview = plan(engine, corrected)
    assert (preview.inserted, preview.updated, preview.unchanged, preview.conflicts) == (0, 2, 1, 0)
    first, other = session_id(engine, "P0041", "2025-03-01"), session_id(engine, "P0042", "2025-03-02")
    assert preview.changes == [
        FieldChange(2, "P0041", "2025-03-01", "pain_before", "12", "15", first, False, True),
        FieldChange(2, "P0041", "2025-03-01", "side_effects", "", "bruising:mild", first, False, True),
        FieldChange(2, "P0041", "2025-03-01", "notes", "first", "first, corrected", first, False, True),
        FieldChange(4, "P0042", "2025-03-02", "pain_after", "", "40", other, False, True),
    ]
    assert str(preview.changes[0]) == "update: row 2, P0041 2025-03-01: pain_before 12 -> 15"
    assert pain_before(engine, "P0041", "2025-03-01") == 12, "a preview writes nothing"


def test_reimporting_an_old_file_keeps_a_correction_made_in_the_app_and_shows_it_as_a_conflict(engine):
    import_frame(engine, rows())
    sid = correct_in_the_app(engine, "P0041", "2025-03-01", pain_before=15)
    preview = plan(engine, rows())
    assert (preview.updated, preview.unchanged, preview.conflicts) == (0, 2, 1)
    assert preview.changes == [FieldChange(2, "P0041", "2025-03-01", "pain_before", "15", "12", sid, True, False)]
    result = import_frame(engine, rows())
    assert (result.updated, result.conflicts) == (0, 1)
    assert "1 kept as corrected in the app" in result.summary()
    assert pain_before(engine, "P0041", "2025-03-01") == 15


@pytest.mark.parametrize("choice", ["every conflict", "this session"])
def test_the_files_value_replaces_a_correction_only_when_chosen(engine, choice):
    import_frame(engine, rows())
    sid = correct_in_the_app(engine, "P0041", "2025-03-01", pain_before=15)
    take = True if choice == "every conflict" else {sid}
    assert plan(engine, rows(), take_file_values=take).updated == 1
    entries = file_validation.validate_rows(rows())
    with write_session(engine) as session:
        result = importing.import_sessions(session, actor=ADMIN, entries=entries, take_file_values=take)
    assert (result.updated, result.conflicts) == (1, 0)
    assert pain_before(engine, "P0041", "2025-03-01") == 12
    # The file's values are now the session's last import: the same file again is no conflict.
    again = plan(engine, rows())
    assert (again.unchanged, again.conflicts, again.changes) == (3, 0, [])


def test_choosing_another_session_leaves_the_conflict_alone(engine):
    import_frame(engine, rows())
    correct_in_the_app(engine, "P0041", "2025-03-01", pain_before=15)
    other = session_id(engine, "P0042", "2025-03-02")
    assert plan(engine, rows(), take_file_values={other}).conflicts == 1


def test_a_correction_followed_by_a_new_file_value_for_another_field_is_still_a_conflict(engine):
    import_frame(engine, rows())
    correct_in_the_app(engine, "P0041", "2025-03-01", pain_before=15)
    newer = rows({0: dict(pain_before="15", notes="from the file")})
    preview = plan(engine, newer)
    assert [(c.field, c.old, c.new, c.conflict) for c in preview.changes] == [("notes", "first", "from the file",
                                                                               True)]


def test_the_command_line_reports_updates_and_conflicts_and_takes_file_values_only_when_asked(
        capsys, database_url, tmp_path):
    path = tmp_path / "clinic.csv"
    rows().to_csv(path, index=False)
    assert main(["--url", database_url, "import", str(path)]) == 0
    with engine_on(database_url) as engine:
        correct_in_the_app(engine, "P0041", "2025-03-01", pain_before=15)
    capsys.readouterr()
    assert main(["--url", database_url, "import", str(path)]) == 0
    err = capsys.readouterr().err
    assert "conflict, kept as corrected in the app: row 2, P0041 2025-03-01: pain_before 15 -> 12" in err
    assert "1 kept as corrected in the app" in err and "--take-file-values" in err
    with engine_on(database_url) as engine:
        assert pain_before(engine, "P0041", "2025-03-01") == 15
    assert main(["--url", database_url, "import", str(path), "--take-file-values"]) == 0
    err = capsys.readouterr().err
    assert "conflict, file's value taken: row 2, P0041 2025-03-01: pain_before 15 -> 12" in err
    assert "0 added, 1 updated" in err
    with engine_on(database_url) as engine:
        assert pain_before(engine, "P0041", "2025-03-01") == 12
