"""Property: every malformed file, of any kind, is refused in one clear line and changes nothing (issue 11).

Over 1,000 files made by mutating a valid CSV and a valid XLSX (truncation, bad bytes, NULs, bad cells, duplicate,
missing and extra columns and fields, broken zip packages, error and formula cells, other encodings, a zip bomb,
a clinician cell naming an admin) go through the command line's entry function and through the Import page's code
path. Each must raise only the project's refusal (ImportRefused), one line without pandas' or Python's wording,
print no traceback, exit 1, and leave every table, the audit trail included, as it was.
"""

from __future__ import annotations

import csv
import io
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, time
from unittest import mock

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from db import accounts, file_validation, importing, interchange, spreadsheets, xlsx_format
from db.cli import main
from db.engine import make_engine, migrate, write_session
from db.file_problems import ImportRefused
from tests.db.factories import ADMIN, import_frame, interchange_rows, table_counts

COLUMNS = interchange.COLUMNS + interchange.EXTRA_COLUMNS
EXAMPLES = {".csv": 820, ".xlsx": 440}  # runs; some make the same file twice
DISTINCT = {".csv": 680, ".xlsx": 350}  # at least 1,030 different files in all; about 40 s of CPU on SQLite
BASE = [
    dict(patient_id="P-01", session_date="2025-03-01", technique="deep", pain_scale="vas_100", pain_before="62",
         pain_after="50", side_effects="bruising:mild", condition="neck_pain", clinician="clin_a",
         twitch_response="yes", notes='said "better", slept well', body_region="neck", muscles="trapezius"),
    dict(patient_id="P-01", session_date="2025-03-08", technique="deep", pain_scale="nrs_10", pain_before="5",
         pain_after="", side_effects="", condition="neck_pain", clinician="", twitch_response="no", notes="Zoë",
         body_region="neck", muscles="a;b"),
    dict(patient_id="P_02", session_date="2025-04-09", technique="electrical", pain_scale="", pain_before="10",
         pain_after="0", side_effects="", condition="", clinician="clin_b", twitch_response="", notes="",
         body_region="", muscles=""),
]
BAD_CELLS = {
    "patient_id": ["", "has space", "x" * 65], "session_date": ["", "2025-13-01", "31/01/2025", "2999-01-01"],
    "technique": ["", "acupuncture"], "pain_scale": ["vas"], "pain_before": ["", "-1", "101", "abc", "nan"],
    "pain_after": ["101", "lots"], "side_effects": ["bruising", "hiccups:mild"], "condition": ["Neck Pain"],
    "clinician": ["Dr Who", "boss"], "twitch_response": ["maybe"], "notes": ["nul\x00inside"],
    "muscles": ["m" * 513, "a;;b\x00"], "body_region": ["Lower back!"],
}
TYPED_BAD_CELLS = {
    "patient_id": [3.5, time(9, 0), datetime(2025, 3, 1, 14, 30)], "technique": [True, 3.5, -4],
    "session_date": [True, datetime(2025, 3, 1, 14, 30), time(9, 0), -4], "twitch_response": [True, 3.5, time(9, 0)],
    "pain_before": [True, 250.5, -4, time(9, 0)],
}
# Words of pandas, the csv module, zipfile or Python that a refusal must never show a clinic.
FOREIGN_WORDS = ("Unnamed", "tokenizing", "codec", "BadZipFile", "KeyError", "Traceback", "Errno", "NoneType",
                 "object has no attribute", "[Content_Types]", "Expected", "openpyxl", "lxml")


def cells_of(rows: list[dict]) -> list[list[str]]:
    return [COLUMNS] + [[row[name] for name in COLUMNS] for row in rows]


def csv_text(table: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(table)
    return out.getvalue()


def xlsx_bytes(table: list[list], edit=None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in table:  # a NUL as Excel itself writes it (ECMA-376 escape): openpyxl refuses the character
        sheet.append([v.replace("\x00", "_x0000_") if isinstance(v, str) else v for v in row])
    if edit:
        edit(sheet)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rezipped(data: bytes, drop: str = "", replace: dict | None = None, add: dict | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != drop:
                target.writestr(item.filename, (replace or {}).get(item.filename, source.read(item.filename)))
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def with_cell(table: list[list[str]], row: int, column: str, value) -> list[list]:
    changed = [list(r) for r in table]
    changed[row][COLUMNS.index(column)] = value
    return changed


# Mutations of the valid CSV: each returns a malformed file's bytes.


def varied(draw) -> list[list[str]]:
    """Return the valid base table with its pain scores drawn anew, so that every mutation has many files to make."""
    rows = [dict(row) for row in BASE]
    rows[0]["pain_before"] = str(draw(st.integers(0, 100), label="pain 1"))
    rows[1]["pain_before"] = str(draw(st.integers(0, 10), label="pain 2"))
    rows[2]["pain_before"] = str(draw(st.integers(0, 100), label="pain 3"))
    return cells_of(rows)


@st.composite
def malformed_csv(draw) -> bytes:
    table = varied(draw)
    text = csv_text(table)
    kind = draw(st.sampled_from([
        "truncated row", "bad byte", "nul byte", "bad cell", "duplicate column", "missing column", "unknown column",
        "extra field", "missing field", "windows encoding", "utf16 bad cell", "empty", "header only", "semicolons",
        "unclosed quote", "xlsx named csv", "nameless column",
    ]), label="kind")
    row = draw(st.integers(1, len(BASE)), label="row")
    lines = text.split("\n")
    if kind == "truncated row":  # cut inside a data row, before its last separator: the row loses fields
        start = len("\n".join(lines[:row])) + 1
        cut = draw(st.integers(start + 1, start + lines[row].rindex(",")), label="cut")
        return text[:cut].encode("utf-8")
    if kind == "bad byte":
        data = text.encode("utf-8")
        at = draw(st.integers(0, len(data)), label="at")
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xfe\xfe", b"\xe9", b"\xc3", b"\x80", b"\xed\xa0\x80"]))\
            + data[at:]
    if kind == "nul byte":
        data = text.encode("utf-8")
        at = draw(st.integers(0, len(data)), label="at")
        return data[:at] + b"\x00" + data[at:]
    if kind in ("bad cell", "utf16 bad cell"):
        column = draw(st.sampled_from(sorted(BAD_CELLS)), label="column")
        bad = csv_text(with_cell(table, row, column, draw(st.sampled_from(BAD_CELLS[column]), label="value")))
        if kind == "bad cell":
            return bad.encode("utf-8")
        return bad.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]), label="codec"))
    if kind == "duplicate column":
        first, second = draw(st.lists(st.sampled_from(COLUMNS), min_size=2, max_size=2, unique=True))
        header = list(COLUMNS)
        header[COLUMNS.index(second)] = draw(st.sampled_from([first, first.upper(), first.title(), f" {first} "]))
        return csv_text([header] + table[1:]).encode("utf-8")
    if kind == "missing column":
        gone = COLUMNS.index(draw(st.sampled_from(sorted(interchange.REQUIRED)), label="column"))
        return csv_text([r[:gone] + r[gone + 1:] for r in table]).encode("utf-8")
    if kind == "unknown column":
        name = draw(st.sampled_from(["pain_level", "Notes2", "id", "patient id", "ÿ"]), label="name")
        return csv_text([r + ([name] if i == 0 else ["x"]) for i, r in enumerate(table)]).encode("utf-8")
    if kind == "extra field":
        lines[row] += "," + draw(st.sampled_from(["x", "", '"a,b"']), label="field")
        return "\n".join(lines).encode("utf-8")
    if kind == "missing field":
        lines[row] = lines[row][: lines[row].rindex(",")]
        return "\n".join(lines).encode("utf-8")
    if kind == "windows encoding":
        return text.encode("cp1252")
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"   \n\n", b"\xef\xbb\xbf", b",,,\n,,,\n"]))
    if kind == "header only":
        return (lines[0] + draw(st.sampled_from(["", "\n", "\n\n", "\n,,,,,,,,,,,,\n"]))).encode("utf-8")
    if kind == "semicolons":
        return csv_text(table, delimiter=draw(st.sampled_from([";", "\t"]))).encode("utf-8")
    if kind == "unclosed quote":  # a quote opening the last row's notes that nothing closes
        last = [list(r) for r in table]
        last[-1][COLUMNS.index("notes")] = "@@OPEN@@"
        return csv_text(last).replace("@@OPEN@@", '"never closed').encode("utf-8")
    if kind == "xlsx named csv":
        return xlsx_bytes(table)
    header = list(COLUMNS)  # nameless column: values under an empty header cell
    return csv_text([header + [""]] + [r + ["stray"] for r in table[1:]]).encode("utf-8")


# Mutations of the valid XLSX.


@st.composite
def malformed_xlsx(draw) -> bytes:
    table = varied(draw)
    kind = draw(st.sampled_from([
        "truncated", "not a zip", "missing part", "garbled part", "error cell", "uncalculated formula", "bad cell",
        "duplicate column", "missing column", "stray value", "empty sheet", "header only", "old xls", "zip bomb",
        "typed bad cell",
    ]), label="kind")
    row = draw(st.integers(1, len(BASE)), label="row")
    column = draw(st.sampled_from(COLUMNS), label="column")
    good = xlsx_bytes(table) if kind in ("truncated", "missing part", "garbled part", "zip bomb") else b""
    if kind == "truncated":
        # A share of the length, not a position: a workbook's length varies with its creation time.
        return good[: len(good) * draw(st.integers(0, 999), label="cut per mille") // 1000]
    if kind == "not a zip":
        return draw(st.one_of(st.binary(max_size=200), st.just(b"PK\x03\x04broken"),
                              st.just(b"PK\x05\x06" + b"\0" * 18)))
    if kind == "missing part":
        part = draw(st.sampled_from(["[Content_Types].xml", "xl/worksheets/sheet1.xml", "xl/workbook.xml",
                                     "xl/_rels/workbook.xml.rels"]), label="part")
        return rezipped(good, drop=part)
    if kind == "garbled part":
        part = draw(st.sampled_from(["xl/worksheets/sheet1.xml", "xl/workbook.xml", "[Content_Types].xml"]))
        junk = draw(st.sampled_from([b"", b"\x00\x01\x02", b"<worksheet><sheetData><row><c r=", b"not xml at all"]))
        return rezipped(good, replace={part: junk})
    if kind == "error cell":
        error = draw(st.sampled_from(["#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?"]), label="error")

        def errors(sheet):
            cell = sheet.cell(row=row + 1, column=COLUMNS.index(column) + 1)
            cell.value, cell.data_type = error, "e"

        return xlsx_bytes(table, errors)
    if kind == "uncalculated formula":
        return xlsx_bytes(with_cell(table, row, column, draw(st.sampled_from(["=1+1", "=A1", "=NOW()"]))))
    if kind == "bad cell":
        column = draw(st.sampled_from(sorted(BAD_CELLS)), label="bad column")
        return xlsx_bytes(with_cell(table, row, column, draw(st.sampled_from(BAD_CELLS[column]), label="value")))
    if kind == "typed bad cell":  # numbers, booleans, dates and times where they mean nothing valid
        name = draw(st.sampled_from(sorted(TYPED_BAD_CELLS)), label="typed column")
        return xlsx_bytes(with_cell(table, row, name, draw(st.sampled_from(TYPED_BAD_CELLS[name]), label="value")))
    if kind == "duplicate column":
        other = draw(st.sampled_from([c for c in COLUMNS if c != column]), label="other")
        return xlsx_bytes([with_cell(table, 0, other, column.upper())[0]] + table[1:])
    if kind == "missing column":
        gone = COLUMNS.index(draw(st.sampled_from(sorted(interchange.REQUIRED)), label="required"))
        return xlsx_bytes([r[:gone] + r[gone + 1:] for r in table])
    if kind == "stray value":
        return xlsx_bytes([r + ([None, "stray"] if i == row else []) for i, r in enumerate(table)])
    if kind == "empty sheet":
        return xlsx_bytes([])
    if kind == "header only":
        return xlsx_bytes(table[:1] + [[None] * len(COLUMNS)] * draw(st.integers(0, 3)))
    if kind == "old xls":
        return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + draw(st.binary(max_size=100))
    # zip bomb: a member of zeros that unpacks far beyond the (lowered) bound
    return rezipped(good, add={"xl/media/padding.bin": b"\0" * 300_000})


def through_the_page(engine, name: str, data: bytes) -> None:
    """Do what the Import page does with an upload: read, validate with progress, preview, then import."""
    upload = io.BytesIO(data)
    upload.name = name
    table = spreadsheets.read_table(upload, name=name)
    entries = file_validation.validate_rows(table, on_progress=lambda done, total: None)
    with Session(engine) as session:
        importing.plan_import(session, actor=ADMIN, entries=entries)
    with write_session(engine) as session:
        importing.import_sessions(session, actor=ADMIN, entries=entries, source=name)


def through_the_command_line(url: str, path) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        status = main(["--url", url, "import", str(path)])
    return status, err.getvalue()


@pytest.fixture
def clinic(tmp_path):
    """Return the URL and engine of a SQLite database holding sessions and an admin account named 'boss'."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    migrate(url)
    engine = make_engine(url)
    import_frame(engine, interchange_rows(*BASE))
    with write_session(engine) as session:
        accounts.add_user(session, actor=ADMIN, username="boss", role="admin", password=None)
    yield url, engine
    engine.dispose()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_every_malformed_file_is_refused_in_one_line_by_both_ways_in_and_changes_nothing(clinic, tmp_path, suffix):
    url, engine = clinic
    before = table_counts(engine)
    kinds = malformed_csv() if suffix == ".csv" else malformed_xlsx()
    path = tmp_path / f"sessions{suffix}"
    files: set[bytes] = set()

    @settings(max_examples=EXAMPLES[suffix], deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(data=kinds)
    def refused(data: bytes) -> None:
        files.add(data)
        with mock.patch.object(xlsx_format, "XLSX_UNPACKED_MAX", 200_000):
            with pytest.raises(ImportRefused) as page:
                through_the_page(engine, path.name, data)
            message = str(page.value)
            assert message and "\n" not in message and "\r" not in message, message
            assert not [word for word in FOREIGN_WORDS if word in message], message
            path.write_bytes(data)
            status, err = through_the_command_line(url, path)
        assert status == 1 and "Traceback" not in err, err
        assert message in err.strip().splitlines()[-1], err
        assert table_counts(engine) == before

    refused()
    assert len(files) >= DISTINCT[suffix], f"only {len(files)} different files"
