"""The interchange files themselves: CSV and XLSX read cell for cell or refused in one line, and written atomically.

Reading never trusts the file: a CSV must be UTF-8 (a UTF-16 one is recognised and read) with as many fields in
every row as in its header; an XLSX must be a sound package of bounded size whose cells hold values, not errors or
formulas that were never calculated. Writing keeps every cell exactly (an export imports back to the same text) and
disarms cells that a spreadsheet program would run as formulas (OWASP "CSV injection").
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import BinaryIO

import pandas as pd

MAX_ROWS = 200_000  # sessions in one file: twice the 100,000 rows the import is measured on
MAX_COLUMNS = 64  # columns read; the format has 13
MAX_FILE_BYTES = 256 * 1024 * 1024  # a file read into memory: about a million rows of CSV
CSV_CELL_MAX = 131_072  # characters in one CSV cell (the csv module's own default bound)
# An XLSX package is a zip: 0.2 MB can unpack to gigabytes of XML, all of which openpyxl would parse (M4), at about
# 2 MB/s. An export unpacks to 0.7 KB per row (cells and shared strings): 1 KB per row of the XLSX row bound is
# ample for real files and bounds the parse to under a minute.
XLSX_MAX_ROWS = 100_000
XLSX_UNPACKED_MAX = 100 * 2**20  # about 1 KB for each of XLSX_MAX_ROWS rows
# OWASP: a cell starting with one of these is a formula to a spreadsheet program. A CSV export writes such a cell
# after an apostrophe (which spreadsheets hide and our import removes), and a cell that starts with an apostrophe
# gets one more, so that every cell reads back exactly.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTED = (*FORMULA_START, "'")
# ECMA-376 escapes characters that XML cannot hold as _xHHHH_, and a literal "_xHHHH_" as _x005F_xHHHH_; Excel reads
# and writes text this way. XML also turns "\r\n" into "\n", so a carriage return is escaped too.
_XLSX_ESCAPED = re.compile(r"_x[0-9A-Fa-f]{4}_|[\x00-\x08\x0b-\x0d\x0e-\x1f\ufffe\uffff]")
_XLSX_UNESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")
_SURROGATE = re.compile("[\udc80-\udcff]")
_MIDNIGHT = time()
_SAVE_AS_UTF8 = "save it from the spreadsheet program as 'CSV UTF-8' and try again"


@dataclass(frozen=True)
class RowProblem:
    """One refused cell: the file line (header is line 1), the column, the value and the reason."""

    row: int
    column: str
    value: str
    reason: str


class ImportRefused(ValueError):
    """Raised when a file cannot be imported; nothing has been written. Its text is one line."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        if not first.row:  # the file as a whole
            where = ""
        elif first.column in ("", "file"):  # a whole row
            where = f"row {first.row}: "
        else:
            where = f"row {first.row}, column {first.column}: "
        super().__init__(_one_line(f"{where}{first.reason}{more}"))

    def table(self) -> pd.DataFrame:
        """Return the problems as a table of row, column, value and reason."""
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=["row", "column", "value", "reason"])


class FileLines(tuple):
    """Each row's line in its file. Immutable: pandas copies a table's attrs deeply at every step, this one not."""

    def __deepcopy__(self, memo) -> FileLines:
        return self


def _one_line(text: str) -> str:
    return " ".join(text.split())


def file_refused(name: str, reason: str, row: int = 0, column: str = "file") -> ImportRefused:
    """Return the refusal of a whole file (or of one place in it, when `row` is given)."""
    return ImportRefused([RowProblem(row, column, name if column == "file" else "", reason)])


def read_table(source: Path | BinaryIO, name: str | None = None) -> pd.DataFrame:
    """Return the file's cells as text, columns named as in the file (CSV in UTF-8, or the first XLSX sheet).

    `source` is a path, or an open binary file (an upload) whose `name` says its format. Blank rows are left out;
    `table.attrs["rows"]` holds each row's line in the file (the header is line 1), as a spreadsheet numbers it.
    Raises ImportRefused, naming the row and column where there is one, for a file that cannot be read exactly.
    """
    name = name or getattr(source, "name", None) or str(source)
    shown = Path(name).name
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise file_refused(shown, "use a .csv or .xlsx file")
    data = _file_bytes(source, shown)
    if not data.strip():
        raise file_refused(shown, "the file is empty; it needs a header row and one row per session")
    if suffix == ".csv":
        header, rows, lines = _csv_rows(data, shown)
    else:
        header, rows, lines = _xlsx_rows(data, shown)
    return _table(header, rows, lines, shown, unquote=suffix == ".csv" and _may_hold_quoted_cells(data))


def _may_hold_quoted_cells(data: bytes) -> bool:
    """Return whether any CSV cell may start with an apostrophe (after a separator, a line break or a quote)."""
    return data.startswith(b"'") or any(pair in data for pair in (b",'", b"\n'", b"\r'", b"\"'"))


def _file_bytes(source: Path | BinaryIO, shown: str) -> bytes:
    try:
        if isinstance(source, (str, os.PathLike)):
            size = os.stat(source).st_size
            if size > MAX_FILE_BYTES:
                raise file_refused(shown, f"the file is {size / 2**20:,.0f} MB; at most "
                                          f"{MAX_FILE_BYTES // 2**20} MB is read: split it")
            return Path(source).read_bytes()
        data = source.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise file_refused(shown, f"the file cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_FILE_BYTES:
        raise file_refused(shown, f"the file is over {MAX_FILE_BYTES // 2**20} MB, the most that is read: split it")
    return data


# CSV


def _csv_rows(data: bytes, shown: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Return the header, the data rows and their lines of a CSV file's bytes."""
    if data.startswith(b"PK\x03\x04"):
        raise file_refused(shown, "this is an Excel workbook (a zip package) named .csv: name it .xlsx, or "
                                  + _SAVE_AS_UTF8)
    records, lines = _records(_decoded(data, shown), shown)
    return _shaped(records, lines, shown)


def _decoded(data: bytes, shown: str) -> str:
    """Return a CSV file's text: UTF-8 (a byte order mark is dropped), or UTF-16/32 told by its mark or its NULs."""
    marks = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
             (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    codec = next((codec for mark, codec in marks if data.startswith(mark)), None)
    codec = codec or _utf16_without_mark(data) or "utf-8"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        if codec not in ("utf-8", "utf-8-sig"):
            raise file_refused(shown, f"the file looks like {codec.upper()} but is broken at byte {error.start:,}; "
                                      + _SAVE_AS_UTF8) from None
        raise _not_utf8(data, error, shown) from None


def _utf16_without_mark(data: bytes) -> str | None:
    """Return the UTF-16 codec of a file without byte order mark, told by the NULs of its ASCII header, or None."""
    head = data[:512]
    if len(head) < 4 or b"\x00" not in head:
        return None
    even, odd = head[0::2], head[1::2]
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    return None


def _not_utf8(data: bytes, error: UnicodeDecodeError, shown: str) -> ImportRefused:
    """Return the refusal of a file that is not UTF-8, naming the row and column of the first bad byte if it can."""
    byte = data[error.start]
    reason = (f"the file is not UTF-8 (byte 0x{byte:02x} cannot be read; a file saved as 'CSV' in a Windows "
              f"encoding looks like this): {_SAVE_AS_UTF8}")
    text = data.decode("utf-8", errors="surrogateescape")
    try:
        records = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(records, [])
        for line, record in enumerate(records, start=2):
            for position, cell in enumerate(record):
                if _SURROGATE.search(cell):
                    column = header[position].strip() if position < len(header) else _letter(position)
                    return file_refused(shown, reason, line, column)
        for position, cell in enumerate(header):
            if _SURROGATE.search(cell):
                return file_refused(shown, reason, 1, _letter(position))
    except csv.Error:
        pass
    return file_refused(shown, reason, data[: error.start].count(b"\n") + 1, "")


def _records(text: str, shown: str) -> tuple[list[list[str]], list[int]]:
    """Return the CSV records of a text that hold any value, and their lines (record numbers; the header is 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    every: list[list[str]] = []
    try:
        every.extend(reader)  # at C speed; on an error, the records before it are kept, to count them
    except csv.Error as error:
        reason = str(error)
        if "field larger than field limit" in reason:
            reason = f"a cell is longer than {CSV_CELL_MAX:,} characters"
        elif "expected after" in reason or "unexpected end of data" in reason:
            reason = ('a quoted cell is not closed, or a quote stands inside an unquoted cell; a cell holding '
                      'quotes, commas or line breaks is written in double quotes with each quote doubled ("")')
        raise file_refused(shown, reason, len(every) + 1, "") from None
    lines = [line for line, record in enumerate(every, start=1)
             if record and (record[0].strip() or "".join(record).strip())]
    if len(lines) > MAX_ROWS + 1:
        raise file_refused(shown, f"the file has more than {MAX_ROWS:,} sessions, the most one import takes: split it")
    records = every if len(lines) == len(every) else [every[line - 1] for line in lines]
    return records, lines


def _shaped(records: list[list[str]], lines: list[int], shown: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Return the header, rows and lines of CSV records; refuse a row whose fields do not match the header's."""
    if not records:
        raise file_refused(shown, "the file is empty; it needs a header row and one row per session")
    header, body = records[0], records[1:]
    header_line = f" (line {lines[0]})" if lines[0] != 1 else ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        separator = "';'" if ";" in header[0] else "a tab"
        raise file_refused(shown, f"the columns are separated by {separator}, not by commas: " + _SAVE_AS_UTF8)
    width = len(header)
    if {len(record) for record in body} - {width}:
        problems = []
        for line, record in zip(lines[1:], body, strict=True):
            if len(record) != width:
                more = len(record) > width
                problems.append(RowProblem(
                    line, _letter(width) if more else _letter(len(record)), record[width][:80] if more else "",
                    f"this row has {len(record)} fields but the header row{header_line} has {width}"
                    + ("; a cell holding a comma must be in double quotes" if more else
                       "; every row needs a field for every column, empty or not")))
        raise ImportRefused(problems)
    return header, body, lines[1:]


def _letter(position: int) -> str:
    """Return a spreadsheet column letter for a 0-based position: A, B, … Z, AA …"""
    letters = ""
    position += 1
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


# XLSX


def _xlsx_rows(data: bytes, shown: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Return the header, the data rows and their lines of the first sheet of an XLSX file's bytes."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise file_refused(shown, "this is an old Excel file (.xls) or a password-protected workbook: save it as "
                                  "an Excel Workbook (.xlsx) without a password")
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
            texts = [_cell_text(cell, line, position, problems, uncalculated) for position, cell in enumerate(cells)]
            if not any(text.strip() for text in texts):
                continue
            if texts[MAX_COLUMNS:] and texts[MAX_COLUMNS].strip():
                raise file_refused(shown, f"the sheet has more than {MAX_COLUMNS} columns", line, _letter(MAX_COLUMNS))
            texts = texts[:MAX_COLUMNS]
            if header is None:
                header = texts
                width = max(i + 1 for i, text in enumerate(texts) if text.strip())
                continue
            beyond = [i for i, text in enumerate(texts[width:], start=width) if text.strip()]
            if beyond:
                problems.append(RowProblem(line, _letter(beyond[0]), texts[beyond[0]][:80],
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
    names = {_letter(i): text.strip() for i, text in enumerate(header) if text.strip()}
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


def _cell_text(cell, line: int, position: int, problems: list[RowProblem], uncalculated: set) -> str:
    """Return a cell as the text the interchange format means by it; note a cell that holds no value as a problem."""
    value = getattr(cell, "value", None)
    if (line, position) in uncalculated:
        problems.append(RowProblem(line, _letter(position), "", "a formula without a calculated value: open the "
                                   "file in the spreadsheet program, let it calculate and save it, or type the value"))
        return "?"
    if value is None:
        return ""
    if getattr(cell, "data_type", None) == "e":
        problems.append(RowProblem(line, _letter(position), str(value), f"the spreadsheet error {value} is not a "
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


def _table(header: list[str], rows: list[list[str]], lines: list[int], shown: str, *, unquote: bool) -> pd.DataFrame:
    """Return rows as a table of text cells under the header's names; refuse a header that names no column right."""
    names = [name.strip() for name in header]
    problems = []
    keep = []
    for position, name in enumerate(names):
        if name:
            keep.append(position)
        elif any(row[position].strip() for row in rows):
            problems.append(RowProblem(1, _letter(position), "",
                                       "this column has values but no name in the header row"))
    seen: dict[str, str] = {}
    for position in keep:
        key = names[position].lower()
        if key in seen:
            problems.append(RowProblem(1, names[position], f"{seen[key]}, {names[position]}",
                                       "this column name appears twice in the header row (names match whatever "
                                       "their case): keep one of them"))
        seen.setdefault(key, names[position])
    if problems:
        raise ImportRefused(problems)
    if not rows:
        raise file_refused(shown, "the file has a header row but no sessions below it", 2, "file")
    # Built row-major, at C speed; cells stay Python strings (object), as `validate_rows` reads them back.
    table = pd.DataFrame(rows, dtype=object)[keep]
    table.columns = [header[position] for position in keep]
    if unquote:
        table = table.map(unquoted)
    table.attrs["rows"] = FileLines(lines)
    return table


def neutralised(cell: str) -> str:
    """Return a cell as a CSV export writes it: after an apostrophe when a spreadsheet would take it for a formula.

    A cell starting with an apostrophe gets one more, so that `unquoted` gives back every cell exactly.
    """
    return "'" + cell if cell.startswith(_QUOTED) else cell


def unquoted(cell: str) -> str:
    """Return a CSV cell as written before `neutralised`: one leading apostrophe removed before =, +, -, @, tab,
    carriage return or another apostrophe; any other text as it is."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in _QUOTED else cell


def _xlsx_text(cell: str) -> str:
    """Return text as an XLSX cell holds it: characters XML cannot keep, and literal escapes, escaped (ECMA-376)."""
    return _XLSX_ESCAPED.sub(lambda m: "_x005F" + m.group() if len(m.group()) > 1 else f"_x{ord(m.group()):04X}_",
                             cell)


# Writing


def table_bytes(table: pd.DataFrame, suffix: str) -> bytes:
    """Return interchange rows as the bytes of a .csv (UTF-8) or .xlsx file, chosen by the suffix."""
    buffer = io.BytesIO()
    _write(table, buffer, suffix.lower())
    return buffer.getvalue()


def write_table(table: pd.DataFrame, path: Path | BinaryIO, *, suffix: str | None = None) -> None:
    """Write interchange rows to a .csv (UTF-8) or .xlsx file, chosen by the suffix (of `path` unless given).

    A path is written atomically: the file appears complete, or the one there before stays as it was.
    """
    name = Path(str(getattr(path, "name", path))).name
    suffix = (suffix or Path(name).suffix).lower()
    if suffix not in (".csv", ".xlsx"):
        raise ValueError(f"{name}: export to .csv or .xlsx (a FHIR .json Bundle is written by db.fhir)")
    if isinstance(path, (str, os.PathLike)):
        write_atomically(Path(path), lambda file: _write(table, file, suffix))
    else:
        _write(table, path, suffix)


def _write(table: pd.DataFrame, file: BinaryIO, suffix: str) -> None:
    if suffix == ".csv":
        table.map(lambda cell: neutralised(cell) if isinstance(cell, str) else cell).to_csv(
            file, index=False, lineterminator="\n", encoding="utf-8")
        return
    escaped = table.map(lambda cell: _xlsx_text(cell) if isinstance(cell, str) else cell)
    with pd.ExcelWriter(file, engine="openpyxl") as writer:
        escaped.to_excel(writer, index=False)
        # openpyxl takes text starting with "=" for a formula (it would run when the file is opened, and read back
        # empty) and "#N/A" for an error cell (read back as no value). Every cell is data: keep it as text.
        for row in writer.sheets["Sheet1"].iter_rows():
            for cell in row:
                if cell.data_type in ("f", "e"):
                    cell.data_type = "s"


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through `write` into a temporary file beside `path`, then rename it over `path` on success.

    Readers see the old file or the whole new one, never a part; after a failure no temporary file is left.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
