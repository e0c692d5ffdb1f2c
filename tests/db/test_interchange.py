"""Tests that interchange files import all rows or none, re-import idempotently and export back to the same file."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlmodel import Session

from db import audit, exporting, file_validation, interchange, spreadsheets
from db.file_problems import ImportRefused, RowProblem
from tests.db.factories import (
    ADMIN,
    another_database,
    clinical_counts,
    engine_on,
    import_file,
    import_frame,
    interchange_rows,
    stored_sessions,
    table_counts,
)

# A small file with the awkward cases: mixed scales, decimals, same-day sessions, a back-dated row, an episode
# without condition, baseline 0, quoting, line breaks, non-ASCII and formula-like text in notes, the extra columns.
TRICKY = [
    dict(patient_id="P-01", session_date="2025-03-01", technique="deep", pain_scale="vas_100", pain_before="62",
         pain_after="50", side_effects="bruising:mild;soreness:mild", condition="neck_pain", clinician="clin_a",
         twitch_response="yes", notes='said "better", slept well', body_region="neck",
         muscles="trapezius;levator_scapulae"),
    dict(patient_id="P-01", session_date="2025-03-08", technique="deep", pain_scale="nrs_10", pain_before="5",
         condition="neck_pain", clinician="clin_a", twitch_response="no", body_region="neck", muscles="trapezius"),
    dict(patient_id="P-01", session_date="2025-03-08", technique="deep", pain_scale="vas_100", pain_before="45.5",
         pain_after="40.25", condition="neck_pain", clinician="clin_b", notes="second, same day",
         body_region="neck"),
    dict(patient_id="P-01", session_date="2025-03-15", technique="superficial", pain_before="30",
         condition="neck_pain", notes="line one\nline two", body_region="neck"),
    dict(patient_id="P_02", session_date="2025-04-09", technique="electrical", pain_before="10",
         side_effects="syncope:significant", condition="low_back_pain", clinician="clin_b", notes="Zoë – naïve ✓"),
    dict(patient_id="P_02", session_date="2025-04-02", technique="electrical", pain_before="0",
         condition="low_back_pain", clinician="clin_b"),
    dict(patient_id="P_02", session_date="2025-05-01", technique="deep", pain_before="70", notes="=1+1 is text"),
    dict(patient_id="a3", session_date="2024-12-31", technique="superficial", pain_scale="nrs_10", pain_before="10",
         pain_after="0", condition="other", notes="<b>not html</b>"),
]


@pytest.fixture
def tricky() -> pd.DataFrame:
    return interchange_rows(*TRICKY)


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return path


def export_to(engine, path: Path) -> Path:
    with Session(engine) as session:
        spreadsheets.write_table(exporting.export_table(session, actor=ADMIN), path)
    return path


def refusal(table: pd.DataFrame) -> ImportRefused:
    """Return the ImportRefused that validating `table` raises (and fail if it raises none)."""
    with pytest.raises(ImportRefused) as refused:
        file_validation.validate_rows(table)
    return refused.value


def snapshot(engine, counts=clinical_counts) -> tuple[dict, pd.DataFrame]:
    """Return the row counts of the clinical tables (or of `counts`) and every stored session, to compare later."""
    return counts(engine), stored_sessions(engine)


def assert_unchanged(engine, before: tuple[dict, pd.DataFrame], counts=clinical_counts) -> None:
    after = snapshot(engine, counts)
    assert after[0] == before[0]
    pd.testing.assert_frame_equal(after[1], before[1])


# round trip


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_imported_into_a_fresh_database_exports_the_identical_file(
    request, engine, backend, tmp_path, tricky, suffix
):
    import_file(engine, write_csv(tricky, tmp_path / "source.csv"))
    first = export_to(engine, tmp_path / f"first{suffix}")
    with another_database(request, backend, tmp_path) as url, engine_on(url) as fresh:
        result = import_file(fresh, first)
        second = export_to(fresh, tmp_path / f"second{suffix}")
    assert result.inserted == len(TRICKY)
    if suffix == ".csv":
        assert first.read_bytes() == second.read_bytes()
    else:  # an XLSX package also holds its creation time (docProps/core.xml); every other part must be equal
        with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
            assert sorted(a.namelist()) == sorted(b.namelist())
            for name in a.namelist():
                if name != "docProps/core.xml":
                    assert a.read(name) == b.read(name), name
    pd.testing.assert_frame_equal(spreadsheets.read_table(first), spreadsheets.read_table(second))


def test_an_export_holds_the_values_of_the_imported_file_in_patient_date_and_entry_order(engine, tmp_path, tricky):
    import_file(engine, write_csv(tricky, tmp_path / "source.csv"))
    exported = spreadsheets.read_table(export_to(engine, tmp_path / "out.csv"))
    assert list(exported.columns) == [*interchange.COLUMNS, *interchange.EXTRA_COLUMNS, "episode",
                                      *interchange.STRICTA_COLUMNS]
    # Each patient's first course of care for each condition: the file has no long gap; no needling record.
    expected = tricky.assign(pain_scale=tricky["pain_scale"].replace("", "vas_100"), episode="1",
                             **dict.fromkeys(interchange.STRICTA_COLUMNS, ""))
    # Patients in code-point order whatever the database's collation (P-01 < P_02 < a3), then date, then entry.
    expected = expected.iloc[[0, 1, 2, 3, 5, 4, 6, 7]].reset_index(drop=True)
    pd.testing.assert_frame_equal(exported, expected[exported.columns], check_dtype=False)


def test_the_sample_file_imports_and_exports_back_byte_for_byte_with_its_episodes_numbered(engine, tmp_path):
    sample = Path(__file__).resolve().parents[2] / "sample_data" / "sessions.csv"
    import_file(engine, sample)
    # The sample has one course of care per patient and condition, no gap over 90 days: every row is episode 1.
    # Its columns in the export's order, the `episode` column among them (a column the sample lacks is empty).
    with sample.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    expected = io.StringIO()
    writer = csv.DictWriter(expected, fieldnames=interchange.EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**dict.fromkeys(interchange.EXPORT_COLUMNS, ""), **row, "episode": "1"} for row in rows)
    assert export_to(engine, tmp_path / "out.csv").read_bytes() == expected.getvalue().encode("utf-8")


def test_an_xlsx_export_holds_exactly_the_exported_cells_as_text(engine, tmp_path, tricky):
    import_file(engine, write_csv(tricky, tmp_path / "source.csv"))
    path = export_to(engine, tmp_path / "out.xlsx")
    with Session(engine) as session:
        cells = exporting.export_table(session, actor=ADMIN)
    pd.testing.assert_frame_equal(spreadsheets.read_table(path), cells, check_dtype=False)
    sheet = openpyxl.load_workbook(path).active
    assert "=1+1 is text" in [c.value for c in sheet["K"]]
    assert "f" not in {c.data_type for row in sheet.iter_rows() for c in row}, "no formula cells"


# idempotent re-import and corrections


def test_reimporting_the_same_file_changes_nothing(engine, tmp_path, tricky):
    path = write_csv(tricky, tmp_path / "source.csv")
    first = import_file(engine, path)
    before = snapshot(engine)
    again = import_file(engine, path)
    assert (first.inserted, first.updated, first.unchanged) == (len(TRICKY), 0, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(TRICKY))
    assert again.new_clinicians == [] and sorted(first.new_clinicians) == ["clin_a", "clin_b"]
    assert_unchanged(engine, before)


def test_reimporting_an_xlsx_export_changes_nothing(engine, tmp_path, tricky):
    import_file(engine, write_csv(tricky, tmp_path / "source.csv"))
    before = snapshot(engine)
    result = import_file(engine, export_to(engine, tmp_path / "out.xlsx"))
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, len(TRICKY))
    assert_unchanged(engine, before)


@pytest.mark.parametrize(
    ("column", "value", "stored_column", "stored_value"),
    [
        ("pain_before", "48", "pain_before", 48.0),
        ("pain_after", "", "pain_after", None),
        ("side_effects", "bruising:significant", "side_effects", {("bruising", "significant")}),
        ("notes", "corrected note", "notes", "corrected note"),
        ("twitch_response", "no", "twitch_response", False),
    ],
)
def test_a_corrected_file_updates_that_session_and_nothing_else(
    engine, tmp_path, tricky, column, value, stored_column, stored_value
):
    import_file(engine, write_csv(tricky, tmp_path / "source.csv"))
    counts, before = snapshot(engine)
    corrected = tricky.copy()
    corrected.loc[0, column] = value  # P-01's first session
    result = import_file(engine, write_csv(corrected, tmp_path / "corrected.csv"))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, len(TRICKY) - 1)
    after = stored_sessions(engine)
    corrected_id = before.loc[(before["patient_id"] == "P-01") & (before["session_number"] == 1), "id"].item()
    stored = after.loc[after["id"] == corrected_id, stored_column].item()
    assert pd.isna(stored) if stored_value is None else stored == stored_value
    pd.testing.assert_frame_equal(after[after["id"] != corrected_id], before[before["id"] != corrected_id])
    assert clinical_counts(engine) == counts | {"side_effects": corrected["side_effects"].str.count(":").sum()}


def test_a_changed_date_makes_a_new_session_numbered_by_date_in_its_episode(engine, tmp_path, tricky):
    import_file(engine, write_csv(tricky, tmp_path / "source.csv"))
    corrected = tricky.copy()
    corrected.loc[3, "session_date"] = "2025-02-20"  # P-01's last session, dated before its first
    result = import_file(engine, write_csv(corrected, tmp_path / "corrected.csv"))
    # The date is part of a session's identity: the old session stays and the corrected one is new.
    assert (result.inserted, result.updated, result.unchanged) == (1, 0, len(TRICKY) - 1)
    p01 = stored_sessions(engine).query("patient_id == 'P-01' and condition == 'neck_pain'")
    assert list(p01["session_number"]) == [1, 2, 3, 4, 5]
    assert p01["session_date"].iloc[0].isoformat() == "2025-02-20"


# all rows or none


def test_one_bad_row_among_good_ones_refuses_the_file_naming_row_column_and_reason(engine, tmp_path, tricky):
    import_file(engine, write_csv(tricky.iloc[:2], tmp_path / "earlier.csv"))
    before = snapshot(engine, table_counts)  # every table
    bad = tricky.copy()
    bad.loc[2, "pain_before"] = "150"  # the third data row: file line 4, the header being line 1
    with pytest.raises(ImportRefused) as refused:
        import_file(engine, write_csv(bad, tmp_path / "bad.csv"))
    assert refused.value.problems == [
        RowProblem(4, "pain_before", "150", "150 is outside the scale 0–100 (VAS, mm)")]
    assert str(refused.value) == "row 4, column pain_before: 150 is outside the scale 0–100 (VAS, mm)"
    assert_unchanged(engine, before, table_counts)


def test_a_stored_patients_id_in_other_capitals_is_refused_naming_the_stored_id(engine, tmp_path, tricky):
    import_file(engine, write_csv(tricky.iloc[:4], tmp_path / "earlier.csv"))  # P-01
    before = snapshot(engine, table_counts)
    again = tricky.iloc[[3, 4]].copy()
    again["patient_id"] = ["p-01", "P_02"]  # the stored P-01, mistyped; a new patient
    with pytest.raises(ImportRefused) as refused:
        import_file(engine, write_csv(again, tmp_path / "lower.csv"))
    assert refused.value.problems == [
        RowProblem(2, "patient_id", "p-01", "p-01 is a stored patient's id P-01 in other capitals: write P-01")]
    assert_unchanged(engine, before, table_counts)
    again["patient_id"] = ["P-01", "P_02"]  # as stored: imported
    import_file(engine, write_csv(again, tmp_path / "as_stored.csv"))
    assert sorted(stored_sessions(engine)["patient_id"].unique()) == ["P-01", "P_02"]


def test_one_new_id_in_two_capitals_in_a_file_is_refused_at_the_later_rows(engine, tmp_path, tricky):
    before = snapshot(engine, table_counts)
    split = tricky.iloc[4:7].copy()  # P_02's three rows
    split["patient_id"] = ["P_02", "p_02", "P_02"]
    with pytest.raises(ImportRefused) as refused:
        import_file(engine, write_csv(split, tmp_path / "split.csv"))
    assert refused.value.problems == [
        RowProblem(3, "patient_id", "p_02", "p_02 is an earlier row's id P_02 in other capitals: write P_02")]
    assert_unchanged(engine, before, table_counts)


def test_a_failure_while_writing_leaves_the_database_unchanged(engine, tmp_path, tricky, monkeypatch):
    import_file(engine, write_csv(tricky.iloc[:2], tmp_path / "earlier.csv"))
    before = snapshot(engine, table_counts)  # every table

    def fail(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "record_many", fail)  # the new sessions' audit rows: written after every row
    with pytest.raises(RuntimeError):
        import_file(engine, write_csv(tricky, tmp_path / "all.csv"))
    assert_unchanged(engine, before, table_counts)


def test_every_bad_cell_of_the_file_is_reported(tricky):
    bad = tricky.copy()
    bad.loc[0, "technique"] = "acupuncture"
    bad.loc[0, "twitch_response"] = "maybe"
    bad.loc[3, "side_effects"] = "bruising"
    bad.loc[5, "patient_id"] = ""
    refused = refusal(bad)
    assert {(p.row, p.column) for p in refused.problems} == {
        (2, "technique"), (2, "twitch_response"), (5, "side_effects"), (7, "patient_id")}
    assert str(refused).endswith("(and 3 more)")
    table = refused.table()
    assert list(table.columns) == ["row", "column", "value", "reason"]
    assert table.loc[table["column"] == "twitch_response", "value"].item() == "maybe"
    assert "required" in table.loc[table["column"] == "patient_id", "reason"].item()


def test_a_day_first_date_is_refused_with_a_hint(tricky):
    bad = tricky.copy()
    bad.loc[1, "session_date"] = "08/03/2025"
    [problem] = refusal(bad).problems
    assert (problem.row, problem.column, problem.value) == (3, "session_date", "08/03/2025")
    assert "YYYY-MM-DD" in problem.reason and "day-first" in problem.reason


def test_a_date_in_the_future_is_refused(tricky):
    bad = tricky.copy()
    bad.loc[0, "session_date"] = "2999-01-01"
    [problem] = refusal(bad).problems
    assert (problem.row, problem.column) == (2, "session_date") and "future" in problem.reason


def test_an_unknown_column_is_refused_before_any_row(tricky):
    refused = refusal(tricky.assign(pain_level="3"))
    assert refused.problems == [RowProblem(1, "pain_level", "pain_level", "unknown column")]


def test_a_missing_required_column_is_refused(tricky):
    [problem] = refusal(tricky.drop(columns=["technique"])).problems
    assert (problem.row, problem.column, problem.reason) == (1, "technique", "required column is missing")


def test_column_names_match_case_insensitively_and_with_surrounding_spaces(engine, tricky):
    shouted = tricky.rename(columns=lambda c: f"  {c.upper()} " if c in ("patient_id", "pain_before") else c.title())
    assert "  PATIENT_ID " in shouted.columns and "Session_Date" in shouted.columns
    result = import_frame(engine, shouted)
    assert result.inserted == len(TRICKY)
    assert sorted(stored_sessions(engine)["pain_before"]) == sorted(float(r["pain_before"]) for r in TRICKY)


def test_optional_columns_may_be_left_out(engine):
    minimal = pd.DataFrame({"patient_id": ["P1", "P1"], "session_date": ["2025-01-01", "2025-01-08"],
                            "technique": ["deep", "deep"], "pain_before": ["70", "35"]})
    assert import_frame(engine, minimal).inserted == 2
    stored = stored_sessions(engine)
    assert list(stored["pain_scale"]) == ["vas_100", "vas_100"]
    assert list(stored["session_number"]) == [1, 2]


def typed_workbook(path: Path, *rows: list) -> Path:
    """Write an XLSX as a spreadsheet program would: dates as date cells, numbers as number cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["patient_id", "Session_Date", "technique", "pain_scale", "pain_before", "pain_after"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_an_xlsx_with_date_and_number_cells_imports(engine, tmp_path):
    path = typed_workbook(tmp_path / "typed.xlsx",
                          ["P1", date(2025, 3, 1), "deep", "nrs_10", 7, 5],
                          ["P1", datetime(2025, 3, 8), "deep", "vas_100", 45.5, None])
    assert import_file(engine, path).inserted == 2
    stored = stored_sessions(engine)
    assert [d.isoformat() for d in stored["session_date"]] == ["2025-03-01", "2025-03-08"]
    assert list(stored["pain_before"]) == [7, 45.5]
    assert stored["pain_after"].iloc[0] == 5 and pd.isna(stored["pain_after"].iloc[1])


def test_an_xlsx_date_cell_with_a_time_of_day_is_refused(tmp_path):
    path = typed_workbook(tmp_path / "typed.xlsx", ["P1", datetime(2025, 3, 8, 14, 30), "deep", "", 45, None])
    [problem] = refusal(spreadsheets.read_table(path)).problems
    assert (problem.row, problem.column) == (2, "session_date")


def test_a_file_that_is_neither_csv_nor_xlsx_is_refused(tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text("patient_id\n")
    with pytest.raises(ImportRefused, match="csv or .xlsx"):
        spreadsheets.read_table(path)


def test_export_to_an_unsupported_suffix_is_refused(engine, tmp_path):
    with pytest.raises(ValueError, match=r"\.csv or \.xlsx"):
        export_to(engine, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
