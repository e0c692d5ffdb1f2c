"""Tests that every malformed file is refused in one line naming its row and column (or the file), that both backends
store exactly what validation accepts, and that exports keep every cell exactly, disarm formulas and never leave a
partial file."""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlmodel import Session

from db import csv_format, exporting, fhir, file_validation, report_files, spreadsheets, xlsx_format
from db.file_problems import ImportRefused, RowProblem
from db.validation import InvalidInput
from tests.db.factories import ADMIN, import_file, import_frame, interchange_rows, record, stored_sessions, table_counts

HEADER = "patient_id,session_date,technique,pain_before,notes"
GOOD_ROWS = ["P1,2025-01-02,deep,60,first", "P1,2025-01-09,deep,40,second", "P2,2025-01-03,superficial,30,"]


def csv_file(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def read(data: bytes, name: str = "clinic.csv") -> pd.DataFrame:
    return file_validation.validate_rows(spreadsheets.read_table(io.BytesIO(data), name=name))


def refusal(data: bytes, name: str = "clinic.csv") -> ImportRefused:
    """Return the refusal of reading and validating a file's bytes (and fail if there is none)."""
    with pytest.raises(ImportRefused) as refused:
        read(data, name)
    assert "\n" not in str(refused.value), "a refusal is one line"
    return refused.value


def workbook_bytes(*rows: list, edit=None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if edit:
        edit(sheet)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


XLSX_HEADER = ["patient_id", "session_date", "technique", "pain_before", "notes"]


def test_every_problem_of_a_row_is_listed_at_once_with_a_cell_refused_on_its_own():
    """A mistyped technique or patient id does not hide a pain off the scale or a date in the future in the same
    row: one upload lists them all (they were found only on the next try)."""
    refused = refusal(csv_file(
        "patient_id,session_date,technique,pain_scale,pain_before,side_effects,twitch_response",
        "Q1,2025-05-01,deep,vas_100,150,bruising:severe,yes",
        "Q1,2999-01-01,dry,vas_100,50,,maybe",
        "Q 1,2025-05-03,deep,nrs_10,7.5,,no",
        "Q2,2025-05-04,deep,nrs,70,,no",  # the scale refused: the pain cannot be judged against it
    ))
    assert sorted((p.row, p.column) for p in refused.problems) == [
        (2, "pain_before"), (2, "side_effects"), (3, "session_date"), (3, "technique"), (3, "twitch_response"),
        (4, "pain_before"), (4, "patient_id"), (5, "pain_scale"),
    ]
    reasons = {(p.row, p.column): p.reason for p in refused.problems}
    assert reasons[2, "pain_before"] == "150 is outside the scale 0–100 (VAS, mm)"
    assert reasons[3, "session_date"] == "2999-01-01 is in the future"
    assert reasons[4, "pain_before"] == "7.5 is not a whole number; the NRS has whole numbers 0–10"


# CSV: encodings


def test_a_file_in_a_windows_encoding_is_refused_naming_the_row_and_column_with_a_hint():
    data = csv_file(HEADER, GOOD_ROWS[0], "P1,2025-01-09,deep,40,café au lait").replace(b"caf\xc3\xa9", b"caf\xe9")
    refused = refusal(data)
    assert refused.problems[0].row == 3 and refused.problems[0].column == "notes"
    assert "not UTF-8" in str(refused) and "CSV UTF-8" in str(refused) and "0xe9" in str(refused)
    assert "codec" not in str(refused)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_a_utf16_file_with_or_without_byte_order_mark_and_a_utf8_bom_file_are_read(codec):
    data = ("\n".join([HEADER, *GOOD_ROWS, "P3,2025-01-04,deep,20,Zoë"]) + "\n").encode(codec)
    entries = read(data)
    assert [e.patient_id for e in entries] == ["P1", "P1", "P2", "P3"]
    assert entries[3].notes == "Zoë"


def test_a_utf16_file_with_a_bad_cell_is_refused_naming_the_cell_not_a_garbled_column():
    data = ("\n".join([HEADER, GOOD_ROWS[0], "P1,2025-01-09,deep,400,x"]) + "\n").encode("utf-16-le")
    assert refusal(data).problems == [RowProblem(3, "pain_before", "400", "400 is outside the scale 0–100 (VAS, mm)")]


def unicode_text(codec: str = "utf-16") -> bytes:
    """Return sessions as Excel's "Unicode Text" save writes them: UTF-16 (with its mark), tabs, CRLF."""
    return "".join(line.replace(",", "\t") + "\r\n" for line in [HEADER, *GOOD_ROWS]).encode(codec)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_excels_unicode_text_is_refused_in_one_line_that_names_utf16_and_csv_utf8(codec):
    [problem] = refusal(unicode_text(codec)).problems
    assert (problem.row, problem.column) == (0, "file")
    assert "UTF-16" in problem.reason and "Unicode Text" in problem.reason and "'CSV UTF-8'" in problem.reason
    assert "no sessions" not in problem.reason


def zip_of(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        for name, content in members.items():
            package.writestr(name, content)
    return buffer.getvalue()


NOT_TEXT = {
    "a PDF document": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 9 /Filter /FlateDecode >>\nstream\n"
                      b"x\x9c\x03\x00\x00\x00\x00\x01\nendstream\nendobj\n",
    "a zip archive": zip_of(**{"sessions.csv": csv_file(HEADER, *GOOD_ROWS)}),
    "a gzip archive": gzip.compress(csv_file(HEADER, *GOOD_ROWS)),
    "a PNG picture": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
    "an old Excel file (.xls)": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100),
    "not text": bytes(600),  # NUL bytes: no text but UTF-16 or UTF-32 holds them
}


@pytest.mark.parametrize("kind", NOT_TEXT)
def test_a_file_that_is_not_text_named_csv_is_refused_in_one_line_saying_what_it_is(kind):
    [problem] = refusal(NOT_TEXT[kind]).problems
    assert (problem.row, problem.column) == (0, "file")  # the whole file, not a row and column of garbage
    assert kind in problem.reason and "'CSV UTF-8'" in problem.reason
    assert "no sessions" not in problem.reason and "Windows encoding" not in problem.reason


@pytest.mark.parametrize("kind", ["a PDF document", "a gzip archive", "a PNG picture"])
def test_a_file_of_another_format_named_xlsx_is_refused_saying_what_it_is(kind):
    [problem] = refusal(NOT_TEXT[kind], "clinic.xlsx").problems
    assert (problem.row, problem.column) == (0, "file")
    assert f"this is {kind}, not an Excel workbook (.xlsx)" in problem.reason


def test_an_excel_workbook_named_csv_is_told_to_be_named_xlsx():
    [problem] = refusal(workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", "60", "x"])).problems
    assert "an Excel workbook" in problem.reason and "name it .xlsx" in problem.reason


# CSV: shape


def test_a_row_with_one_field_too_many_is_refused_naming_that_row():
    refused = refusal(csv_file(HEADER, GOOD_ROWS[0], "P1,2025-01-09,deep,40,said hello, then left", GOOD_ROWS[2]))
    [problem] = refused.problems
    assert (problem.row, problem.value) == (3, " then left")
    assert "6 fields" in problem.reason and "has 5" in problem.reason and "double quotes" in problem.reason
    assert "twitch_response" not in str(refused) and "more)" not in str(refused)


def test_a_row_with_a_field_missing_is_refused_naming_that_row():
    [problem] = refusal(csv_file(HEADER, GOOD_ROWS[0], "P1,2025-01-09,deep,40")).problems
    assert problem.row == 3 and "4 fields" in problem.reason


def test_blank_lines_are_skipped_and_rows_keep_their_line_in_the_file():
    [problem] = refusal(csv_file(HEADER, "", GOOD_ROWS[0], "", "P1,2025-01-09,deep,400,x")).problems
    assert problem.row == 5  # as a spreadsheet numbers it: the blank lines count


def test_column_names_differing_only_in_case_are_refused_as_a_duplicate():
    refused = refusal(csv_file("patient_id,session_date,technique,pain_before,Session_Date",
                               "P1,2025-01-02,deep,60,2025-01-02"))
    [problem] = refused.problems
    assert (problem.row, problem.column) == (1, "Session_Date") and "twice" in problem.reason


@pytest.mark.parametrize(("content", "words"), [
    (b"", "empty"),
    (b"  \n\n", "empty"),
    (csv_file(HEADER), "no sessions"),
    (csv_file(HEADER, "", ""), "no sessions"),
    (csv_file(HEADER.replace(",", ";"), "P1;2025-01-02;deep;60;x"), "separated by ';'"),
    (csv_file(HEADER, 'P1,2025-01-02,deep,60,"never closed'), "quoted cell is not closed"),
    (b"PK\x03\x04" + b"\x00" * 40, "zip archive"),
    (csv_file(HEADER, "P1,2025-01-02,deep,60,x" + "y" * 200_000), "longer than"),
])
def test_a_file_that_is_not_a_table_of_sessions_is_refused_in_one_line(content, words):
    assert words in str(refusal(content))


def test_a_column_with_values_but_no_name_is_refused():
    [problem] = refusal(csv_file(HEADER + ",", GOOD_ROWS[0] + ",surprise")).problems
    assert (problem.row, problem.column) == (1, "F") and "no name" in problem.reason


def test_trailing_empty_columns_and_rows_of_empty_cells_are_ignored():
    entries = read(csv_file(HEADER + ",,", *(row + ",," for row in GOOD_ROWS), ",,,,,,"))
    assert len(entries) == 3


def test_a_file_over_the_row_bound_is_refused_without_validating_it(monkeypatch):
    monkeypatch.setattr(csv_format, "MAX_ROWS", 2)
    assert "more than 2 sessions" in str(refusal(csv_file(HEADER, *GOOD_ROWS)))


# XLSX: packages


def test_a_damaged_or_truncated_workbook_is_refused_in_one_line():
    good = workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", "60", "x"])
    for data in (good[: len(good) // 2], good[:-30], b"not a zip at all", b"\xd0\xcf\x11\xe0" + b"\x00" * 100):
        refused = refusal(data, "clinic.xlsx")
        assert refused.problems[0].column == "file"
        assert "xlsx" in str(refused).lower() and "BadZipFile" not in str(refused)


def rezipped(data: bytes, drop: str = "", replace: dict | None = None) -> bytes:
    """Return a workbook's package with one member dropped or members' contents replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != drop:
                target.writestr(item.filename, (replace or {}).get(item.filename, source.read(item.filename)))
    return out.getvalue()


@pytest.mark.parametrize("damage", [
    {"drop": "[Content_Types].xml"},
    {"drop": "xl/worksheets/sheet1.xml"},
    {"drop": "xl/workbook.xml"},
    {"replace": {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row><c r="}},
    {"replace": {"xl/workbook.xml": b"\x00\x01garbage"}},
])
def test_a_workbook_missing_or_garbling_a_part_is_refused_in_one_line(damage):
    good = workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", "60", "x"])
    refused = refusal(rezipped(good, **damage), "clinic.xlsx")
    assert refused.problems[0].column == "file"
    assert "not a readable Excel workbook" in str(refused) or "no worksheet" in str(refused)


def test_a_workbook_that_unpacks_beyond_the_bound_is_refused_before_it_is_parsed(monkeypatch):
    monkeypatch.setattr(xlsx_format, "XLSX_UNPACKED_MAX", 1_000_000)
    padding = b"<!--" + b" " * 2_000_000 + b"-->"  # 2 MB of XML comment: a few kilobytes zipped
    good = workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", "60", "x"])
    bomb = rezipped(good, replace={"docProps/app.xml": padding})
    assert len(bomb) < 50_000
    monkeypatch.setattr(xlsx_format, "_sheet_rows", lambda *_: pytest.fail("the sheet was parsed"))
    refused = refusal(bomb, "clinic.xlsx")
    assert "unpacks to 2 MB; at most 1 MB" in str(refused)


def test_the_unpacked_bound_leaves_room_for_an_export_of_the_row_bound():
    table = spreadsheets.read_table(Path(__file__).resolve().parents[2] / "sample_data" / "sessions.csv")
    data = spreadsheets.table_bytes(table, ".xlsx")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        per_row = sum(item.file_size for item in package.infolist()) / len(table)
    assert per_row * xlsx_format.XLSX_MAX_ROWS < xlsx_format.XLSX_UNPACKED_MAX


def test_a_workbook_writes_its_sessions_sheet_as_the_sessions_file_writes_it():
    """The whole-clinic workbook's sessions sheet leaves its empty cells out too, so it keeps within the same bound."""
    table = spreadsheets.read_table(Path(__file__).resolve().parents[2] / "sample_data" / "sessions.csv")

    def sheet(data: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            return package.read("xl/worksheets/sheet1.xml")

    alone = sheet(spreadsheets.table_bytes(table, ".xlsx"))
    assert b'<c r="A2"' in alone and alone.count(b"<c ") < table.size + len(table.columns)  # some cells left out
    assert sheet(report_files.workbook_bytes({"sessions": table, "diary": table.head(0)})) == alone


# XLSX: cells


def test_an_error_cell_is_refused_naming_its_row_and_column():
    def errors(sheet):
        sheet["E3"].value, sheet["E3"].data_type = "#N/A", "e"

    data = workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", 60, "x"], ["P1", "2025-01-09", "deep", 40, None],
                          edit=errors)
    [problem] = refusal(data, "clinic.xlsx").problems
    assert (problem.row, problem.column, problem.value) == (3, "notes", "#N/A") and "error" in problem.reason


def test_a_formula_without_a_calculated_value_is_refused_and_one_with_a_value_is_read():
    data = workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", "=50+10", "x"])
    [problem] = refusal(data, "clinic.xlsx").problems
    assert (problem.row, problem.column) == (2, "pain_before") and "formula" in problem.reason
    # The same cell as a spreadsheet program saves it: the formula with its calculated value.
    calculated = rezipped(data, replace={"xl/worksheets/sheet1.xml": zipfile.ZipFile(io.BytesIO(data)).read(
        "xl/worksheets/sheet1.xml").replace(b"<f>50+10</f><v />", b"<f>50+10</f><v>60</v>")})
    assert calculated != data
    assert read(calculated, "clinic.xlsx")[0].pain_before == 60


def test_a_value_in_a_column_without_a_header_name_is_refused():
    data = workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", 60, "x", None, "stray"])
    [problem] = refusal(data, "clinic.xlsx").problems
    assert (problem.row, problem.column, problem.value) == (2, "G", "stray")


def test_duplicate_column_names_in_a_workbook_are_refused():
    data = workbook_bytes([*XLSX_HEADER, "NOTES"], ["P1", "2025-01-02", "deep", 60, "x", "y"])
    [problem] = refusal(data, "clinic.xlsx").problems
    assert (problem.row, problem.column) == (1, "NOTES")


def test_a_sheet_with_a_wrong_stated_size_is_read_to_its_last_row():
    data = workbook_bytes(XLSX_HEADER, ["P1", "2025-01-02", "deep", 60, "x"], ["P1", "2025-01-09", "deep", 40, "y"])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    shrunk = rezipped(data, replace={"xl/worksheets/sheet1.xml": sheet.replace(b'ref="A1:E3"', b'ref="A1:E2"')})
    assert len(read(shrunk, "clinic.xlsx")) == 2


# Both backends store what validation accepts, and validation refuses what either cannot store


@pytest.mark.parametrize(("fields", "field"), [
    ({"notes": "before\x00after"}, "notes"),
    ({"muscles": ["m" * 300, "n" * 300]}, "muscles"),
    ({"muscles": ["trap\x00ezius"]}, "muscles"),
])
def test_text_that_a_backend_cannot_store_is_refused_by_validation_on_both(engine, fields, field):
    before = table_counts(engine)
    with pytest.raises(InvalidInput) as refused:
        record(engine, **fields)
    assert [p.field for p in refused.value.problems] == [field]
    assert table_counts(engine) == before


def test_the_longest_muscles_and_control_characters_in_notes_are_stored_exactly_on_both(engine):
    muscles = ["m" * 255, "n" * 256]  # 512 characters with the ';'
    record(engine, muscles=muscles, notes="bell\x07 tab\t cr\r\n end")
    stored = stored_sessions(engine).iloc[0]
    assert stored["muscles"] == ";".join(muscles) and stored["notes"] == "bell\x07 tab\t cr\r\n end"


def test_a_nul_in_an_imported_note_is_refused_by_row_and_column(engine):
    [problem] = refusal(csv_file(HEADER, GOOD_ROWS[0], "P1,2025-01-09,deep,40,a\x00b")).problems
    assert (problem.row, problem.column) == (3, "notes") and "NUL" in problem.reason


def test_a_patient_name_or_deletion_reason_too_long_to_store_is_refused(engine):
    from db import corrections, writes
    from db.engine import write_session
    from tests.db.factories import session_input

    with pytest.raises(InvalidInput, match="Patient name"), write_session(engine) as session:
        writes.record_session(session, actor=ADMIN, entry=session_input(), patient_name="x" * 129)
    saved = record(engine)
    with pytest.raises(ValueError, match="Reason: .*at most 500"), write_session(engine) as session:
        corrections.delete_session(session, actor=ADMIN, session_id=saved["id"], reason="r" * 501)


# A clinician cell names a clinician (L5)


def test_a_clinician_cell_naming_an_admin_is_refused_by_row_and_column(engine):
    from db import accounts
    from db.engine import write_session

    with write_session(engine) as session:
        accounts.add_user(session, actor=ADMIN, username="boss", role="admin", password=None)
    before = table_counts(engine)
    rows = interchange_rows(dict(patient_id="P1", session_date="2025-01-02", technique="deep", pain_before="5",
                                 clinician="clin_a"),
                            dict(patient_id="P1", session_date="2025-01-03", technique="deep", pain_before="5",
                                 clinician="boss"))
    with pytest.raises(ImportRefused) as refused:
        import_frame(engine, rows)
    assert refused.value.problems == [RowProblem(3, "clinician", "boss", "'boss' is an admin account, not a "
                                                                         "clinician's")]
    assert table_counts(engine) == before


def test_a_clinician_account_created_by_an_import_is_audited(engine):
    from sqlalchemy import select

    from db.models import AuditEvent, User

    import_frame(engine, interchange_rows(dict(patient_id="P1", session_date="2025-01-02", technique="deep",
                                               pain_before="5", clinician="clin_new")))
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == "clin_new")).one()
        [added] = session.scalars(select(AuditEvent).where(AuditEvent.action == "user_add")).all()
    assert user.role == "clinician" and added.entity_id == user.id and '"role": "clinician"' in added.after


def test_the_session_form_cannot_attribute_a_session_to_a_manager(engine):
    from db import accounts
    from db.engine import write_session

    with write_session(engine) as session:
        accounts.add_user(session, actor=ADMIN, username="mgr", role="manager", password=None)
    with pytest.raises(InvalidInput, match="manager account"):
        record(engine, clinician="mgr")


# Exports: exact, disarmed, atomic


NASTY = ["#N/A", "#DIV/0!", "line one\r\nline two\rthree", "bell\x07 and\x0cform feed", "_x000D_ literal",
         "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "'quoted", "''twice", "'=already", "tab\tinside",
         "ends with apostrophe'", "Zoë ✓"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_every_note_round_trips_exactly_through_export_and_import(engine, tmp_path, suffix):
    for day, note in enumerate(NASTY, start=1):
        record(engine, patient_id="-P1", session_date=f"2025-01-{day:02d}", notes=note, muscles=["=cmd", "+x"])
    path = tmp_path / f"out{suffix}"
    with Session(engine) as session:
        spreadsheets.write_table(exporting.export_table(session, actor=ADMIN), path)
    cells = spreadsheets.read_table(path)
    assert list(cells["notes"]) == NASTY
    assert set(cells["patient_id"]) == {"-P1"} and set(cells["muscles"]) == {"=cmd;+x"}
    before = stored_sessions(engine)
    result = import_file(engine, path)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, len(NASTY))
    pd.testing.assert_frame_equal(stored_sessions(engine), before)


def test_a_csv_export_writes_no_cell_that_a_spreadsheet_would_run():
    table = interchange_rows(*[dict(patient_id="-P1", session_date="2025-01-02", technique="deep", pain_before="5",
                                    notes=note) for note in NASTY])
    text = spreadsheets.table_bytes(table, ".csv").decode("utf-8")
    import csv

    cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=HYPERLINK" in text and "'-P1" in text and "''quoted" in text


def test_an_xlsx_export_holds_error_like_text_and_formula_like_text_as_text(tmp_path):
    table = interchange_rows(dict(patient_id="P1", session_date="2025-01-02", technique="deep", pain_before="5",
                                  notes="#N/A"),
                             dict(patient_id="P1", session_date="2025-01-03", technique="deep", pain_before="5",
                                  notes="=1+1"))
    sheet = openpyxl.load_workbook(io.BytesIO(spreadsheets.table_bytes(table, ".xlsx"))).active
    assert {c.data_type for row in sheet.iter_rows(min_row=2) for c in row if c.value} == {"s"}


def test_an_unreadable_apostrophe_rule_keeps_other_apostrophes_as_typed():
    assert csv_format.unquoted("'hello") == "'hello" and csv_format.unquoted("'=x") == "=x"
    for cell in NASTY + ["", "'", "''", "'a'"]:
        assert csv_format.unquoted(csv_format.neutralised(cell)) == cell


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json"])
def test_a_failing_export_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"sessions{suffix}"
    path.write_bytes(b"the previous export")
    table = interchange_rows(dict(patient_id="P1", session_date="2025-01-02", technique="deep", pain_before="5",
                                  pain_scale="vas_100", body_region="", muscles=""))

    def disk_full(*_args, **_kwargs):  # after every byte was handed to the file: the last step before the rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spreadsheets.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        if suffix == ".json":
            fhir.write_bundle(fhir.bundle_from_table(table), path)
        else:
            spreadsheets.write_table(table, path)
    assert path.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_export_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sessions.csv"
    path.write_text("old")
    table = interchange_rows(dict(patient_id="P1", session_date="2025-01-02", technique="deep", pain_before="5"))
    spreadsheets.write_table(table, path)
    assert path.read_bytes() == spreadsheets.table_bytes(table, ".csv")
    assert [p.name for p in tmp_path.iterdir()] == ["sessions.csv"]


def test_a_byte_order_mark_is_not_read_as_part_of_the_first_column_name():
    data = codecs.BOM_UTF8 + csv_file(HEADER, *GOOD_ROWS)
    assert list(spreadsheets.read_table(io.BytesIO(data), name="x.csv").columns)[0] == "patient_id"
