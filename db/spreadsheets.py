"""The interchange files: CSV or XLSX read cell for cell (or refused in one line), and written atomically.

Each format has its module, `db.csv_format` and `db.xlsx_format`; here is what they share: the bound on a file's
size, the table of text cells they read into, and the choice of format by the file's suffix.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from db import csv_format, xlsx_format
from db.file_problems import ImportRefused, RowProblem, column_letter, file_refused

MAX_FILE_BYTES = 256 * 1024 * 1024  # a file read into memory: about a million rows of CSV


class FileLines(tuple):
    """Each row's line in its file. Immutable: pandas copies a table's attrs deeply at every step, this one not."""

    def __deepcopy__(self, memo) -> FileLines:
        return self


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
        header, rows, lines = csv_format.read_rows(data, shown)
    else:
        header, rows, lines = xlsx_format.read_rows(data, shown)
    return _table(header, rows, lines, shown, unquote=suffix == ".csv" and csv_format.may_hold_quoted_cells(data))


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


def _table(header: list[str], rows: list[list[str]], lines: list[int], shown: str, *, unquote: bool) -> pd.DataFrame:
    """Return rows as a table of text cells under the header's names; refuse a header that names no column right."""
    names = [name.strip() for name in header]
    problems = []
    keep = []
    for position, name in enumerate(names):
        if name:
            keep.append(position)
        elif any(row[position].strip() for row in rows):
            problems.append(RowProblem(1, column_letter(position), "",
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
        table = table.map(csv_format.unquoted)
    table.attrs["rows"] = FileLines(lines)
    return table


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
    (csv_format if suffix == ".csv" else xlsx_format).write(table, file)


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
