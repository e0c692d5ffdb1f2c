"""Every row of an interchange file validated at once: all problems of the whole file reported together.

Each row is held to `SessionInput`, the one definition of a valid session. A file of 100,000 rows is mostly plain,
valid rows; those go through a fast path that checks each distinct cell once, by SessionInput's own validators,
and only a row with a cell the fast path does not accept is validated by SessionInput as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import pandas as pd
from pydantic import TypeAdapter

from clinic import side_effects
from db import interchange
from db.episodes import MAX_EPISODE_NUMBER
from db.file_problems import ImportRefused, RowProblem
from db.interchange import COLUMNS, EPISODE, EXTRA_COLUMNS, KNOWN_COLUMNS, REQUIRED, STRICTA_COLUMNS
from db.validation import (
    STRICTA_CODED,
    STRICTA_NUMBERS,
    InvalidInput,
    Problem,
    SessionInput,
    adjuncts_text,
    checked_session,
    date_problem,
    estim_problem,
    pain_problem,
    range_problem,
    stricta_code,
    twitch_problem,
    validate_session,
)

VALIDATION_CHUNK = 5_000  # rows validated between two progress reports


def validate_rows(
    table: pd.DataFrame, today: date | None = None, on_progress: Callable[[int, int], None] | None = None
) -> ValidRows:
    """Return every row validated, or raise ImportRefused listing every bad cell of the whole file.

    `on_progress(rows_done, rows_total)` is called after each chunk of rows, for a progress bar.
    """
    table = table.rename(columns=lambda c: str(c).strip().lower())
    problems = [
        RowProblem(1, name, name, "unknown column")
        for name in table.columns
        if name not in KNOWN_COLUMNS
    ]
    problems += [RowProblem(1, name, "", "required column is missing") for name in sorted(REQUIRED - set(table))]
    if problems:
        raise ImportRefused(problems)
    today = today or date.today()  # once for the file, not once per row
    names = list(table.columns)
    cells = {name: table[name].tolist() for name in names}
    total = len(table)
    lines = _lines(table)
    fast = _FastPath(cells, total, today)
    columns: dict[str, list] = {name: [] for name in _FIELDS}
    validated: dict[int, SessionInput] = {}
    for start in range(0, total, VALIDATION_CHUNK):
        stop = min(start + VALIDATION_CHUNK, total)
        typed, refused = fast.columns(start, stop)
        for index in refused:  # some cell is not plainly valid: the whole row goes through SessionInput
            row = {name: interchange.cell(cells[name][index]) for name in names}
            entry, row_problems = _validate_row(row, today)
            problems += [RowProblem(lines[index], p.field, str(row.get(p.field, "")), p.message) for p in row_problems]
            if entry is not None:
                validated[index] = entry
                for name in _FIELDS:
                    typed[name][index - start] = getattr(entry, name)
        for name in _FIELDS:
            columns[name] += typed[name]
        if on_progress and stop < total:
            on_progress(stop, total)
    if on_progress:
        on_progress(total, total)
    episodes = _episode_numbers(cells.get(EPISODE), lines, problems)
    if problems:
        raise ImportRefused(sorted(problems, key=lambda problem: problem.row))
    given = {name: cells[name] for name in _OPTIONAL if name in cells}
    absent = frozenset(name for name in STRICTA_COLUMNS if name not in cells)
    return ValidRows(columns, given, validated, lines, episodes, absent)


def _episode_numbers(cells: list | None, lines: list[int], problems: list[RowProblem]) -> list[int | None]:
    """Return each row's `episode` number (None when the column is absent or the cell empty); add a problem for
    every cell that is not one."""
    if cells is None:
        return [None] * len(lines)
    numbers: dict[str, int | None] = {}
    episodes = []
    for line, value in zip(lines, cells, strict=True):
        text = interchange.cell(value)
        if text not in numbers:
            try:
                numbers[text] = interchange.episode_number(text, MAX_EPISODE_NUMBER)
            except ValueError as error:
                problems.append(RowProblem(line, EPISODE, text, str(error)))
                continue
        episodes.append(numbers[text])
    return episodes


def _lines(table: pd.DataFrame) -> list[int]:
    """Return each row's line in its file (`read_table` gives them), or its position + 2 below a header row."""
    lines = table.attrs.get("rows")
    if lines is not None and len(lines) == len(table):
        return list(lines)
    return list(range(2, len(table) + 2))


def _validate_row(row: dict[str, str], today: date) -> tuple[SessionInput | None, list[Problem]]:
    """Return one row validated by SessionInput (None if refused) and every problem of its cells."""
    data, problems = _typed(row)
    data["today"] = today
    try:
        return validate_session(data), problems
    except InvalidInput as refused:
        return None, problems + refused.problems


_FIELDS = tuple(SessionInput.model_fields)  # in declaration order, as in a validated SessionInput's __dict__
# `_typed` leaves these fields out when their cell is empty (SessionInput's defaults apply); it gives all others.
_OPTIONAL = ("pain_scale", "pain_after", "side_effects", "muscles", *STRICTA_COLUMNS)
_ALWAYS_GIVEN = frozenset(_FIELDS).difference(_OPTIONAL)
_REFUSED = object()  # a cell the fast path does not accept; its row goes through SessionInput
_FLOAT, _INT, _DATE = TypeAdapter(float), TypeAdapter(int), TypeAdapter(date)  # pydantic's parsing, as SessionInput's


class ValidRows(Sequence[SessionInput]):
    """The validated sessions of a file, held as one list per SessionInput field; each item is a SessionInput.

    `import_sessions` reads the columns, so an import of 100,000 rows never builds 100,000 models.
    """

    def __init__(self, columns: dict[str, list], given: dict[str, list], validated: dict[int, SessionInput],
                 lines: list[int] | None = None, episodes: list[int | None] | None = None,
                 absent: frozenset[str] = frozenset()):
        self.columns = columns  # SessionInput field -> its value in every row
        # The optional STRICTA columns the file does not have: a stored session keeps its values of those.
        self.absent = absent
        self.lines = lines or list(range(2, len(columns["patient_id"]) + 2))  # each row's line in the file
        # Each row's `episode` number, or None: not a session's field but where it goes (db.import_plan).
        self.episodes = episodes or [None] * len(self.lines)
        self._given = given  # the cells of the fields in _OPTIONAL, to tell which ones the file gave
        self._validated = validated  # the rows that SessionInput validated itself, by position

    def __len__(self) -> int:
        return len(self.columns["patient_id"])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        entry = self._validated.get(index)
        if entry is None:
            values = {name: values[index] for name, values in self.columns.items()}
            values["side_effects"], values["muscles"] = list(values["side_effects"]), list(values["muscles"])
            fields_set = _ALWAYS_GIVEN.union(
                name for name in _OPTIONAL if name in self._given and interchange.cell(self._given[name][index])
            )
            entry = checked_session(values, set(fields_set))
        return entry

    def __eq__(self, other) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"ValidRows({len(self)} sessions)"


def valid_rows(entries: Sequence[SessionInput]) -> ValidRows:
    """Return validated sessions as ValidRows: ValidRows as they are, a list held as lines 2, 3… of a file."""
    if isinstance(entries, ValidRows):
        return entries
    columns = {name: [getattr(entry, name) for entry in entries] for name in _FIELDS}
    return ValidRows(columns, {}, dict(enumerate(entries)))


def _accept(check: Callable, cell) -> object:
    try:
        return check(interchange.cell(cell))
    except ValueError:  # pydantic's ValidationError is a ValueError
        return _REFUSED


class _FastPath:
    """The typed values of every plainly valid row, without running pydantic once per row.

    Each distinct cell of a column is checked once, by SessionInput's own field validators (and pydantic's own
    number and date parsing), and the rules between fields are `pain_problem` and `date_problem`, which
    SessionInput's model validator calls too: one definition of every rule. A row with any cell not accepted here
    is validated by SessionInput as a whole, for its exact problems; tests hold both ways to the same entries.
    """

    def __init__(self, cells: dict[str, list], total: int, today: date):
        # A column left out of the file reads as empty cells, as in `_typed`.
        self.cells = {name: cells.get(name) or [""] * total for name in COLUMNS + EXTRA_COLUMNS + STRICTA_COLUMNS}
        self.today = today
        self.checked: dict[str, dict] = {name: {} for name in self.cells}
        self.fits: dict[tuple, bool] = {}
        self.checks: dict[str, Callable] = {
            "patient_id": SessionInput._patient_id,
            "session_date": self._date,
            "technique": SessionInput._technique,
            "pain_scale": SessionInput._pain_scale,
            "pain_before": _FLOAT.validate_python,
            "pain_after": lambda cell: _FLOAT.validate_python(cell) if cell else None,
            "side_effects": lambda cell: SessionInput._side_effects(side_effects.parse(cell)),
            "condition": SessionInput._optional_code,
            "body_region": SessionInput._optional_code,
            "clinician": SessionInput._optional_code,
            "twitch_response": interchange.yes_no,
            "muscles": lambda cell: SessionInput._muscles(cell.split(";")),
            "notes": SessionInput._notes,
            **{name: _number_check(name) for name in STRICTA_NUMBERS},
            **{name: (lambda cell, name=name: stricta_code(name, cell)) for name in STRICTA_CODED},
            "adjuncts": adjuncts_text,
        }

    def _date(self, cell: str) -> date:
        day = _DATE.validate_python(SessionInput._iso_date(cell))
        if date_problem(day, self.today):
            raise ValueError("in the future")
        return day

    def columns(self, start: int, stop: int) -> tuple[dict[str, list], list[int]]:
        """Return the typed values of the rows from `start` to `stop`, and the rows that need SessionInput."""
        typed, refused = {}, set()
        for name, check in self.checks.items():
            cells = self.cells[name][start:stop]
            checked = self.checked[name]
            for cell in set(cells).difference(checked):
                checked[cell] = _accept(check, cell)
            values = typed[name] = [checked[cell] for cell in cells]
            if _REFUSED in checked.values():
                refused.update(start + i for i, value in enumerate(values) if value is _REFUSED)
        fits = self.fits
        for i, key in enumerate(zip(typed["pain_scale"], typed["pain_before"], typed["pain_after"], strict=True)):
            fit = fits.get(key)
            if fit is None:
                scale, before, after = key
                fit = fits[key] = _REFUSED in key or not (
                    pain_problem("pain_before", before, scale) or pain_problem("pain_after", after, scale))
            if not fit:
                refused.add(start + i)
        self._needling_rules(typed, start, refused)
        typed["today"] = [self.today] * (stop - start)
        return typed, sorted(refused)

    @staticmethod
    def _needling_rules(typed: dict[str, list], start: int, refused: set[int]) -> None:
        """Send to SessionInput the rows that break a rule between the needling record's fields (`estim_problem`,
        `twitch_problem`), and give a row with a twitch count but no twitch response the one its count says."""
        techniques, counts, responses = typed["technique"], typed["twitch_count"], typed["twitch_response"]
        for name in ("estim_hz", "estim_pulse_us", "estim_ma", "estim_minutes"):
            for i, value in enumerate(typed[name]):
                if value is not None and value is not _REFUSED and estim_problem(name, value, techniques[i]):
                    refused.add(start + i)
        for i, count in enumerate(counts):
            if count is None or count is _REFUSED or responses[i] is _REFUSED:
                continue
            if responses[i] is None:
                responses[i] = count > 0
            elif twitch_problem(count, responses[i]):
                refused.add(start + i)


def _number_check(name: str) -> Callable:
    """Return the fast path's check of a needling-record number: empty, or a number within its range."""
    parse = (_INT if name in ("insertions", "twitch_count", "retention_s") else _FLOAT).validate_python

    def check(cell: str):
        if cell == "":
            return None
        value = parse(cell)
        if range_problem(name, value):
            raise ValueError(name)
        return value

    return check


def _typed(row: dict) -> tuple[dict, list[Problem]]:
    """Turn one row's text cells into SessionInput fields; cells that cannot be turned are problems."""
    problems = []
    get = row.get
    data = {"patient_id": get("patient_id", ""), "session_date": get("session_date", ""),
            "technique": get("technique", ""), "condition": get("condition"), "clinician": get("clinician"),
            "body_region": get("body_region"), "notes": get("notes", "")}
    for name in REQUIRED:
        if data.get(name, "") == "":
            data.pop(name, None)
    scale = get("pain_scale")
    if scale:
        data["pain_scale"] = scale
    for name in ("pain_before", "pain_after"):
        value = get(name, "")
        if value != "":
            data[name] = value
    try:
        data["twitch_response"] = interchange.yes_no(get("twitch_response", ""))
    except ValueError as error:
        problems.append(Problem("twitch_response", str(error)))
    effects = get("side_effects", "")
    if effects:
        try:
            data["side_effects"] = side_effects.parse(effects)
        except ValueError as error:
            problems.append(Problem("side_effects", str(error)))
    muscles = get("muscles", "")
    if muscles:
        data["muscles"] = muscles.split(";")
    for name in STRICTA_COLUMNS:
        value = get(name, "")
        if value != "":
            data[name] = value
    return data, problems
