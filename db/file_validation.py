"""Every row of an interchange file validated at once: all problems of the whole file reported together.

Each row is held to `SessionInput`, the one definition of a valid session. A file of 100,000 rows is mostly plain,
valid rows; those go through a fast path that checks each distinct cell of a column once, by SessionInput's own
validators, and each distinct combination of the cells a rule between fields reads once, by the rule's own function;
only a row with a cell the fast path does not accept is validated by SessionInput as a whole. Each column is held as
codes into its distinct cells (`db.coded_columns`), so that the work per row is done by numpy, not by Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from clinic import side_effects
from clinic.vocabulary import ESTIM_ITEMS
from db import interchange
from db.bulk import collector_paused
from db.coded_columns import Coded, combined, objects
from db.episodes import MAX_EPISODE_NUMBER
from db.file_problems import ImportRefused, RowProblem
from db.interchange import EPISODE, KNOWN_COLUMNS, REQUIRED, STRICTA_COLUMNS
from db.session_rules import date_problem, estim_problem, pain_problem, twitch_problem
from db.validation import (
    STRICTA_CODED,
    STRICTA_NUMBERS,
    InvalidInput,
    Problem,
    SessionInput,
    adjuncts_text,
    checked_session,
    range_problem,
    stricta_code,
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
    with collector_paused():  # a file's worth of small objects, none in a cycle: nothing for the collector to do
        return _validated(table, today or date.today(), on_progress)  # today: once for the file, not once per row


def _validated(table: pd.DataFrame, today: date, on_progress: Callable[[int, int], None] | None) -> ValidRows:
    names = list(table.columns)
    total = len(table)
    lines = _lines(table)
    coded = {name: Coded.of(table[name]) for name in names}
    del table  # the cells are held once, as each column's distinct ones
    fast = _FastPath(coded, total, today)
    problems: list[RowProblem] = []
    columns: dict[str, list] = {name: [] for name in _FIELDS}
    validated: dict[int, SessionInput] = {}
    for start in range(0, total, VALIDATION_CHUNK):
        stop = min(start + VALIDATION_CHUNK, total)
        typed, refused = fast.columns(start, stop)
        for index in refused:  # some cell is not plainly valid: the whole row goes through SessionInput
            row = {name: interchange.cell(coded[name].cell(index)) for name in names}
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
    episodes = _episode_numbers(coded.get(EPISODE), lines, problems)
    if problems:
        raise ImportRefused(sorted(problems, key=lambda problem: problem.row))
    given = {name: coded[name].where(interchange.cell) for name in _OPTIONAL if name in coded}
    absent = frozenset(name for name in STRICTA_COLUMNS if name not in coded)
    return ValidRows(columns, given, validated, lines, episodes, absent)


def _episode_numbers(cells: Coded | None, lines: list[int], problems: list[RowProblem]) -> list[int | None]:
    """Return each row's `episode` number (None when the column is absent or the cell empty); add a problem for
    every cell that is not one."""
    if cells is None:
        return [None] * len(lines)
    numbers, errors = [], {}
    for code, value in enumerate(cells.distinct):
        text = interchange.cell(value)
        try:
            numbers.append(interchange.episode_number(text, MAX_EPISODE_NUMBER))
        except ValueError as error:
            numbers.append(None)
            errors[code] = (text, str(error))
    if errors:
        for index in cells.rows_with(errors):
            text, reason = errors[cells.codes[index]]
            problems.append(RowProblem(lines[index], EPISODE, text, reason))
    return cells.values(numbers)


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

    def __init__(self, columns: dict[str, list], given: dict[str, Sequence[bool]], validated: dict[int, SessionInput],
                 lines: list[int] | None = None, episodes: list[int | None] | None = None,
                 absent: frozenset[str] = frozenset()):
        self.columns = columns  # SessionInput field -> its value in every row
        # The optional STRICTA columns the file does not have: a stored session keeps its values of those.
        self.absent = absent
        self.lines = lines or list(range(2, len(columns["patient_id"]) + 2))  # each row's line in the file
        # Each row's `episode` number, or None: not a session's field but where it goes (db.import_plan).
        self.episodes = episodes or [None] * len(self.lines)
        self._given = given  # for the fields in _OPTIONAL in the file, whether each row's cell gives one
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
                name for name in _OPTIONAL if name in self._given and self._given[name][index]
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


def _accept(check: Callable, cell: str) -> object:
    try:
        return check(cell)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return _REFUSED


class _FastPath:
    """The typed values of every plainly valid row, without running pydantic once per row.

    Each distinct cell of a column is checked once, by SessionInput's own field validators (and pydantic's own
    number and date parsing), and the rules between fields are `pain_problem`, `date_problem`, `estim_problem` and
    `twitch_problem`, which SessionInput's model validator calls too, each once per distinct combination of the values
    it reads: one definition of every rule. A row with any cell not accepted here is validated by SessionInput as a
    whole, for its exact problems; tests hold both ways to the same entries.
    """

    def __init__(self, coded: dict[str, Coded | Sequence], total: int, today: date):
        self.today = today
        checks: dict[str, Callable] = {
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
        # Each field as codes into its typed values, one per distinct cell; a column left out of the file reads as
        # empty cells, as in `_typed`.
        self.codes: dict[str, np.ndarray] = {}
        self.typed: dict[str, np.ndarray] = {}
        self.refused = np.zeros(total, dtype=bool)
        for name, check in checks.items():
            cells = coded.get(name)
            if not isinstance(cells, Coded):  # a list of cells (tests), or a column the file leaves out
                cells = Coded.constant("", total) if cells is None else Coded.of(cells)
            self.codes[name] = cells.codes
            self.typed[name] = objects([_accept(check, interchange.cell(cell)) for cell in cells.distinct])
            self._refuse(name, lambda value: value is _REFUSED)
        self._refuse(("pain_scale", "pain_before", "pain_after"), lambda scale, before, after: not (
            _REFUSED in (scale, before, after)
            or not (pain_problem("pain_before", before, scale) or pain_problem("pain_after", after, scale))))
        for name in ESTIM_ITEMS:
            self._refuse((name, "technique"), lambda value, technique, name=name: (
                value is not None and value is not _REFUSED and estim_problem(name, value, technique)))
        self._twitch_rule()

    def _date(self, cell: str) -> date:
        day = _DATE.validate_python(SessionInput._iso_date(cell))
        if date_problem(day, self.today):
            raise ValueError("in the future")
        return day

    def _combinations(self, names: tuple[str, ...]) -> tuple[np.ndarray, list[tuple]]:
        """Return each row's code of its combination of these fields' typed values, and each combination."""
        codes, rows = combined([(self.codes[name], len(self.typed[name])) for name in names])
        return codes, [tuple(self.typed[name][self.codes[name][row]] for name in names) for row in rows]

    def _refuse(self, names: str | tuple[str, ...], broken: Callable[..., object]) -> None:
        """Send to SessionInput the rows whose values of these fields `broken` holds to break a rule."""
        if isinstance(names, str):
            codes, values = self.codes[names], [(value,) for value in self.typed[names]]
        else:
            codes, values = self._combinations(names)
        bad = [code for code, combination in enumerate(values) if broken(*combination)]
        if bad:
            self.refused |= np.isin(codes, bad)

    def _twitch_rule(self) -> None:
        """Send to SessionInput the rows whose twitch count contradicts their twitch response (`twitch_problem`), and
        give a row with a twitch count but no twitch response the one its count says."""
        codes, combinations = self._combinations(("twitch_count", "twitch_response"))
        responses, bad = [], []
        for code, (count, response) in enumerate(combinations):
            if count is not None and count is not _REFUSED and response is not _REFUSED:
                if response is None:
                    response = count > 0
                elif twitch_problem(count, response):
                    bad.append(code)
            responses.append(response)
        self.codes["twitch_response"], self.typed["twitch_response"] = codes, objects(responses)
        if bad:
            self.refused |= np.isin(codes, bad)

    def columns(self, start: int, stop: int) -> tuple[dict[str, list], list[int]]:
        """Return the typed values of the rows from `start` to `stop`, and the rows that need SessionInput."""
        typed = {name: values.take(self.codes[name][start:stop]).tolist() for name, values in self.typed.items()}
        typed["today"] = [self.today] * (stop - start)
        return typed, (np.flatnonzero(self.refused[start:stop]) + start).tolist()


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
