"""CSV interchange files: read cell for cell, or refused in one line; written with formula-like cells disarmed.

A file must be UTF-8 (a UTF-16 one is recognised and read) with as many fields in every row as in its header. A file
of another format named .csv (a workbook, a PDF, an archive) is refused by what it is.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from itertools import repeat
from typing import BinaryIO

import pandas as pd

from db.bulk import collector_paused
from db.file_kinds import ODS, OLD_OFFICE, XLSX, file_kind
from db.file_problems import ImportRefused, RowProblem, column_letter, file_refused

MAX_ROWS = 200_000  # sessions in one CSV file: twice the 100,000 rows the import is measured on
CSV_CELL_MAX = 131_072  # characters in one CSV cell (the csv module's own default bound)
# OWASP: a cell starting with one of these is a formula to a spreadsheet program. A CSV export writes such a cell
# after an apostrophe (which spreadsheets hide and our import removes), and a cell that starts with an apostrophe
# gets one more, so that every cell reads back exactly.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTED = (*FORMULA_START, "'")
_SURROGATE = re.compile("[\udc80-\udcff]")
_SAVE_AS_UTF8 = "save it from the spreadsheet program as 'CSV UTF-8' and try again"
# Text in UTF-8 holds no NUL byte: one is a stray character, refused at its row and column by validation; several
# at the start of a file mean it is not text at all (or UTF-16 without a mark that `_utf16_without_mark` missed).
_HEAD_BYTES = 4096
_NULS_OF_BINARY = 4


def may_hold_quoted_cells(data: bytes) -> bool:
    """Return whether any CSV cell may start with an apostrophe (after a separator, a line break or a quote)."""
    return data.startswith(b"'") or any(pair in data for pair in (b",'", b"\n'", b"\r'", b"\"'"))


def read_rows(data: bytes, shown: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Return the header, the data rows and their lines of a CSV file's bytes."""
    kind = file_kind(data)
    if kind:
        raise file_refused(shown, _not_a_csv(kind))
    text, codec = _decoded(data, shown)
    records, lines = _records(text, shown)
    return _shaped(records, lines, shown, codec)


def _not_a_csv(kind: str) -> str:
    """Return the refusal's reason for a file of another format (`db.file_kinds`) named .csv."""
    if kind == XLSX:
        return f"this is {kind} named .csv: name it .xlsx, or {_SAVE_AS_UTF8}"
    if kind in (OLD_OFFICE, ODS):
        return f"this is {kind}, not a CSV file: {_SAVE_AS_UTF8}"
    return f"this is {kind}, not a CSV file: pick the sessions file, saved from the spreadsheet program as 'CSV UTF-8'"


def _decoded(data: bytes, shown: str) -> tuple[str, str]:
    """Return a CSV file's text and its codec: UTF-8 (a byte order mark is dropped), or UTF-16/32 told by its mark
    or its NULs. A file with NULs in UTF-8 is refused as not text."""
    marks = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
             (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    codec = next((codec for mark, codec in marks if data.startswith(mark)), None)
    codec = codec or _utf16_without_mark(data) or "utf-8"
    if codec == "utf-8" and data[:_HEAD_BYTES].count(0) >= _NULS_OF_BINARY:
        raise file_refused(shown, "the file is not text (it holds NUL bytes): it may be UTF-16 saved without its "
                                  "byte order mark, or not a CSV file at all; " + _SAVE_AS_UTF8)
    try:
        return data.decode(codec), codec
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
                    column = header[position].strip() if position < len(header) else column_letter(position)
                    return file_refused(shown, reason, line, column)
        for position, cell in enumerate(header):
            if _SURROGATE.search(cell):
                return file_refused(shown, reason, 1, column_letter(position))
    except csv.Error:
        pass
    return file_refused(shown, reason, data[: error.start].count(b"\n") + 1, "")


def _records(text: str, shown: str) -> tuple[list[list[str]], list[int]]:
    """Return the CSV records of a text that hold any value, and their lines (record numbers; the header is 1).

    Equal cells are one string object (most cells of a file repeat: dates, codes, scores), so that a file's cells
    take a few MB rather than 300, and reading them column by column afterwards stays within the CPU's caches.
    """
    every: list[list[str]] = []
    shared: dict[str, str] = {}
    try:
        with collector_paused():  # a list per record, none in a cycle: the collector would walk them all, often
            split = _split_lines(text)
            if split is None:  # at C speed; on an error, the records before it are kept, to count them
                every.extend(_shared(record, shared) for record in csv.reader(io.StringIO(text, newline=""),
                                                                               strict=True))
            else:
                _split_records(*split, every, shared)
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


def _shared(cells: list[str], shared: dict[str, str]) -> list[str]:
    """Return the cells, each the one string object of its text in `shared` (added there if new)."""
    return list(map(shared.setdefault, cells, cells))


def _split_lines(text: str) -> tuple[list[str], str] | None:
    """Return a text's lines and the line break that ends each (a line feed, or a carriage return and a line feed
    on every line), for `_split_records`; None when the csv module is to read it all: a lone carriage return, or a
    line longer than a cell may be (the csv module's limit then applies)."""
    returns = text.count("\r")
    if returns and not returns == text.count("\r\n") == text.count("\n"):
        return None
    terminator = "\r\n" if returns else "\n"
    lines = text.split(terminator)
    if lines[-1] == "":
        lines.pop()  # the text's last line break ends its last record
    if len(text) > CSV_CELL_MAX and max(map(len, lines), default=0) > CSV_CELL_MAX:
        return None
    return lines, terminator


def _split_records(lines: list[str], terminator: str, records: list[list[str]], shared: dict[str, str]) -> None:
    """Add to `records` the CSV records of these lines (each ended by `terminator`), as `csv.reader` reads them,
    each cell shared as `_shared` does.

    A line without a double quote is one record, its cells between commas (a blank line is one empty cell, where
    the csv module gives none: both hold no value). A line with a quote is read by the csv module, with the lines
    its quoted cells go on to. On a csv.Error, `records` holds the records before it.
    """
    def from_line(first: int) -> Iterator[str]:
        for index in range(first, len(lines)):
            yield lines[index] + terminator

    share = shared.setdefault
    done = 0
    for quoted in [index for index, line in enumerate(lines) if '"' in line]:
        if quoted < done:
            continue  # a line inside a quoted cell of the record read before
        records += [list(map(share, cells, cells)) for cells in map(str.split, lines[done:quoted], repeat(","))]
        reader = csv.reader(from_line(quoted), strict=True)
        records.append(_shared(next(reader), shared))
        done = quoted + reader.line_num
    records += [list(map(share, cells, cells)) for cells in map(str.split, lines[done:], repeat(","))]


def _shaped(records: list[list[str]], lines: list[int], shown: str,
            codec: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Return the header, rows and lines of CSV records (decoded by `codec`); refuse a row whose fields do not match
    the header's."""
    if not records:
        raise file_refused(shown, "the file is empty; it needs a header row and one row per session")
    header, body = records[0], records[1:]
    header_line = f" (line {lines[0]})" if lines[0] != 1 else ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        separator = "';'" if ";" in header[0] else "a tab"
        if codec.startswith(("utf-16", "utf-32")):
            what = f"{codec[:6].upper()} text with its columns separated by {separator}"
            what += " (Excel's 'Unicode Text')" if separator == "a tab" else ""
            raise file_refused(shown, f"the file is {what}, not a CSV file: {_SAVE_AS_UTF8}")
        raise file_refused(shown, f"the columns are separated by {separator}, not by commas: " + _SAVE_AS_UTF8)
    width = len(header)
    if {len(record) for record in body} - {width}:
        problems = []
        for line, record in zip(lines[1:], body, strict=True):
            if len(record) != width:
                more = len(record) > width
                problems.append(RowProblem(
                    line, column_letter(width if more else len(record)), record[width][:80] if more else "",
                    f"this row has {len(record)} fields but the header row{header_line} has {width}"
                    + ("; a cell holding a comma must be in double quotes" if more else
                       "; every row needs a field for every column, empty or not")))
        raise ImportRefused(problems)
    return header, body, lines[1:]


def neutralised(cell: str) -> str:
    """Return a cell as a CSV export writes it: after an apostrophe when a spreadsheet would take it for a formula.

    A cell starting with an apostrophe gets one more, so that `unquoted` gives back every cell exactly.
    """
    return "'" + cell if cell.startswith(_QUOTED) else cell


def unquoted(cell: str) -> str:
    """Return a CSV cell as written before `neutralised`: one leading apostrophe removed before =, +, -, @, tab,
    carriage return or another apostrophe; any other text as it is."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in _QUOTED else cell


def write(table: pd.DataFrame, file: BinaryIO) -> None:
    """Write interchange rows to a CSV file in UTF-8, every formula-like cell neutralised."""
    table.map(lambda cell: neutralised(cell) if isinstance(cell, str) else cell).to_csv(
        file, index=False, lineterminator="\n", encoding="utf-8")
