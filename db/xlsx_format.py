"""XLSX interchange files: the first sheet read cell for cell from a sound package of bounded size, or refused in
one line; written with every cell kept as text.

Reading never trusts the package: a small zip can unpack to gigabytes, and a cell may hold an error or a formula
that was never calculated, which would read as an empty cell.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from datetime import date, datetime, time
from typing import BinaryIO

import pandas as pd

from db.file_kinds import ODS, XLSX, ZIP, file_kind
from db.file_problems import ImportRefused, RowProblem, column_letter, file_refused

MAX_COLUMNS = 64  # columns read; the format has 27 (with the optional ones)
# An XLSX package is a zip: 0.2 MB can unpack to gigabytes of XML, all of which openpyxl would parse (M4), at about
# 2 MB/s. An export unpacks to 0.7 KB per row (cells and shared strings): 1 KB per row of the XLSX row bound is
# ample for real files and bounds the parse to under a minute.
XLSX_MAX_ROWS = 100_000
XLSX_UNPACKED_MAX = 100 * 2**20  # about 1 KB for each of XLSX_MAX_ROWS rows
# ECMA-376 escapes characters that XML cannot hold as _xHHHH_, and a literal "_xHHHH_" as _x005F_xHHHH_; Excel reads
# and writes text this way. XML also turns "\r\n" into "\n", so a carriage return is escaped too.
_XLSX_ESCAPED = re.compile(r"_x[0-9A-Fa-f]{4}_|[\x00-\x08\x0b-\x0d\x0e-\x1f\ufffe\uffff]")
_XLSX_UNESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")
_MIDNIGHT = time()


def read_rows(data: bytes, shown: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Return the header, the data rows and their lines of the first sheet of an XLSX file's bytes."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise file_refused(shown, "this is an old Excel file (.xls) or a password-protected workbook: save it as "
                                  "an Excel Workbook (.xlsx) without a password")
    kind = file_kind(data)
    if kind not in (None, XLSX, ZIP):  # a zip without a workbook's parts is judged below, as a damaged one
        advice = "save it" if kind == ODS else "pick the sessions file, saved"
        raise file_refused(shown, f"this is {kind}, not an Excel workbook (.xlsx): {advice} from the spreadsheet "
                                  "program as .xlsx or 'CSV UTF-8'")
    damaged = ("the file is not a readable Excel workbook (.xlsx): it may be damaged or cut short; open it in the "
               "spreadsheet program and save it again as .xlsx")
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        members = package.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise file_refused(shown, damaged) from None
    if "[Content_Types].xml" not in {member.filename for member in members}:
        raise file_refused(shown, damaged)
    unpacked = sum(member.file_size for member in members)
    if unpacked > XLSX_UNPACKED_MAX:
        raise file_refused(shown, f"the workbook unpacks to {unpacked / 2**20:,.0f} MB; at most "
                                  f"{XLSX_UNPACKED_MAX / 2**20:,.0f} MB (about {XLSX_MAX_ROWS:,} sessions) is read: "
                                  "split it or save it as CSV UTF-8")
    try:
        return _sheet_rows(package, data, shown)
    except (ImportRefused, MemoryError):
        raise
    except Exception:  # noqa: BLE001 - a damaged package fails anywhere inside openpyxl, lxml or zlib, in any way
        raise file_refused(shown, damaged) from None


def _sheet_rows(package: zipfile.ZipFile, data: bytes, shown: str) -> tuple[list[str], list[list[str]], list[int]]:
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns of styles and extensions it does not read
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        if not book.worksheets:
            raise file_refused(shown, "the workbook has no worksheet")
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # read every row there is, not only those the sheet's stated size covers
        uncalculated = _uncalculated_formulas(package, data, sheet)
        header: list[str] | None = None
        rows, lines, problems = [], [], []
        for line, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS + 1), start=1):
            texts = [cell_text(cell, line, position, problems, uncalculated) for position, cell in enumerate(cells)]
            if not any(text.strip() for text in texts):
                continue
            if texts[MAX_COLUMNS:] and texts[MAX_COLUMNS].strip():
                raise file_refused(shown, f"the sheet has more than {MAX_COLUMNS} columns", line,
                                   column_letter(MAX_COLUMNS))
            texts = texts[:MAX_COLUMNS]
            if header is None:
                header = texts
                width = max(i + 1 for i, text in enumerate(texts) if text.strip())
                continue
            beyond = [i for i, text in enumerate(texts[width:], start=width) if text.strip()]
            if beyond:
                problems.append(RowProblem(line, column_letter(beyond[0]), texts[beyond[0]][:80],
                                           "a value in a column without a name in the header row"))
            rows.append(texts[:width])
            lines.append(line)
            if len(rows) > XLSX_MAX_ROWS:
                raise file_refused(shown, f"the sheet has more than {XLSX_MAX_ROWS:,} sessions, the most one "
                                          "workbook may hold: split it or save it as CSV UTF-8")
        book.close()
    if problems:
        raise ImportRefused(_named(problems, header or []))
    if header is None:
        raise file_refused(shown, "the first sheet is empty; it needs a header row and one row per session")
    return header[:width], rows, lines


def _named(problems: list[RowProblem], header: list[str]) -> list[RowProblem]:
    """Return problems with their column letters replaced by the header's names where the column has one."""
    names = {column_letter(i): text.strip() for i, text in enumerate(header) if text.strip()}
    return [RowProblem(p.row, names.get(p.column, p.column), p.value, p.reason) for p in problems]


def _uncalculated_formulas(package: zipfile.ZipFile, data: bytes, sheet) -> set[tuple[int, int]]:
    """Return the (row, column) of the sheet's formula cells that hold no calculated value.

    With `data_only`, openpyxl gives such a cell as empty: the file would import a blank where it shows a number.
    Most files hold no formula at all, so the sheet's XML is searched for one before it is read a second time.
    """
    member = getattr(sheet, "_worksheet_path", None)
    if member is None:
        return set()
    with package.open(member) as xml:
        tail, found = b"", False
        while chunk := xml.read(1 << 20):
            if _FORMULA_TAG.search(tail + chunk):
                found = True
                break
            tail = chunk[-32:]
    if not found:
        return set()
    import openpyxl

    formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    values = formulas.worksheets[0]
    values.reset_dimensions()
    found_cells = set()
    for line, cells in enumerate(values.iter_rows(max_col=MAX_COLUMNS + 1), start=1):
        for position, cell in enumerate(cells):
            if getattr(cell, "data_type", None) == "f":
                found_cells.add((line, position))
    formulas.close()
    # A formula cell whose calculated value was saved is read as that value; only those without one are refused.
    calculated = set()
    for line, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS + 1), start=1):
        for position, cell in enumerate(cells):
            if (line, position) in found_cells and getattr(cell, "value", None) is not None:
                calculated.add((line, position))
    return found_cells - calculated


def cell_text(cell, line: int, position: int, problems: list[RowProblem], uncalculated: set) -> str:
    """Return a cell as the text the interchange format means by it; note a cell that holds no value as a problem."""
    value = getattr(cell, "value", None)
    if (line, position) in uncalculated:
        problems.append(RowProblem(line, column_letter(position), "", "a formula without a calculated value: open the "
                                   "file in the spreadsheet program, let it calculate and save it, or type the value"))
        return "?"
    if value is None:
        return ""
    if getattr(cell, "data_type", None) == "e":
        problems.append(RowProblem(line, column_letter(position), str(value), f"the spreadsheet error {value} is not a "
                                   "value: correct the cell, or type the text with an apostrophe before it"))
        return "?"
    if isinstance(value, str):
        return _XLSX_UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value) if "_x" in value else value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        # A date typed into a spreadsheet is a date cell at midnight: its date part is meant. Another time of day
        # is kept, to be refused where a date is required.
        return value.date().isoformat() if value.time() == _MIDNIGHT else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def xlsx_text(cell: str) -> str:
    """Return text as an XLSX cell holds it: characters XML cannot keep, and literal escapes, escaped (ECMA-376)."""
    return _XLSX_ESCAPED.sub(lambda m: "_x005F" + m.group() if len(m.group()) > 1 else f"_x{ord(m.group()):04X}_",
                             cell)


def write(table: pd.DataFrame, file: BinaryIO) -> None:
    """Write interchange rows to the first sheet of an XLSX file, every cell as text."""
    write_sheets({"Sheet1": table}, file)


def write_sheets(sheets: dict[str, pd.DataFrame], file: BinaryIO) -> None:
    """Write tables to an XLSX file, one sheet each in the order given, every cell as text."""
    with pd.ExcelWriter(file, engine="openpyxl") as writer:
        for name, table in sheets.items():
            table.map(lambda cell: xlsx_text(cell) if isinstance(cell, str) else cell).to_excel(
                writer, index=False, sheet_name=name)
            # openpyxl takes text starting with "=" for a formula (it would run when the file is opened, and read
            # back empty) and "#N/A" for an error cell (read back as no value). Every cell is data: keep it as text.
            # An empty cell is left out of the sheet (read back as empty all the same): the optional columns are
            # mostly empty, and each empty text cell would take 30 bytes of the unpacked bound.
            for row in writer.sheets[name].iter_rows():
                for cell in row:
                    if cell.data_type in ("f", "e"):
                        cell.data_type = "s"
                    elif cell.value == "":
                        cell.value = None
