"""The interchange format of docs/DESIGN.md section 5: read and validate files, import all rows or none, export.

Import is built for files of 100,000 rows: every row is validated first (all problems reported together), then
the database is read in a few queries per thousands of patients, each row is classified as new, changed, unchanged
or deleted in Python, and the writes go out as bulk statements in the caller's one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from pydantic import TypeAdapter
from sqlalchemy import bindparam, delete, func, select, update
from sqlmodel import Session

from db import audit, bulk, queries, rollups
from db.access import CLINICAL_WRITERS, Actor, require_role
from db.models import AuditEvent, Episode, Patient, SideEffect, TreatmentSession, User, utcnow
from db.spreadsheets import ImportRefused as ImportRefused
from db.spreadsheets import RowProblem as RowProblem
from db.spreadsheets import read_table as read_table
from db.spreadsheets import table_bytes as table_bytes
from db.spreadsheets import write_table as write_table
from db.validation import (
    InvalidInput,
    Problem,
    SessionInput,
    checked_session,
    date_problem,
    pain_problem,
    validate_session,
)
from db.writes import get_or_create_clinician, not_a_clinician

COLUMNS = [
    "patient_id",
    "session_date",
    "technique",
    "pain_scale",
    "pain_before",
    "pain_after",
    "side_effects",
    "condition",
    "clinician",
    "twitch_response",
    "notes",
]
EXTRA_COLUMNS = ["body_region", "muscles"]  # documented additions: the episode's body region, muscles joined by ';'
REQUIRED = {"patient_id", "session_date", "technique", "pain_before"}
YES_NO = {"yes": True, "no": False, "": None}
VALIDATION_CHUNK = 5_000  # rows validated between two progress reports
_IMPORT_CACHE_KIB = 256 * 1024  # SQLite's page cache while importing; it takes only the pages it needs
# While an import renumbers, a session waiting for its final number holds _SHIFT + a number unique to it: above
# every real session number, so the unique (episode, number) index of live sessions holds after every statement.
_SHIFT = 1_000_000
S = TreatmentSession
# Bulk statements go to the Core tables: ORM-enabled bulk INSERT … RETURNING runs row by row.
P, E, T = Patient.__table__, Episode.__table__, TreatmentSession.__table__
_STORED = ("session_date", "technique", "muscles", "twitch_response", "pain_scale", "pain_before", "pain_after",
           "notes")


@dataclass(frozen=True)
class FieldChange:
    """One value that a row of the file changes in a stored session: where, which field, from what to what."""

    row: int  # the file line (header is line 1)
    patient_id: str
    session_date: str
    field: str
    old: str
    new: str
    session_id: int
    conflict: bool  # the session was corrected in the app after it was last imported
    applied: bool  # the import writes it (a conflict only when the file's values were chosen)

    def __str__(self) -> str:
        if not self.conflict:
            what = "update"
        else:
            what = "conflict, file's value taken" if self.applied else "conflict, kept as corrected in the app"
        return (f"{what}: row {self.row}, {self.patient_id} {self.session_date}: {self.field} "
                f"{_shown(self.old)} -> {_shown(self.new)}")


def _shown(value: str) -> str:
    return repr(value) if value == "" or len(value) > 40 or value != value.strip() or "\n" in value else value


@dataclass
class ImportResult:
    """What an import did (or, from `plan_import`, would do)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # rows matching a session deleted in the app, left deleted
    conflicts: int = 0  # rows matching a session corrected in the app since its import, left as corrected
    new_clinicians: list[str] = field(default_factory=list)
    new_patients: int = 0
    changes: list[FieldChange] = field(default_factory=list)  # every field the file changes, conflicts included

    def summary(self) -> str:
        """Return what was done in a few words."""
        deleted = f", {self.deleted} left deleted" if self.deleted else ""
        kept = f", {self.conflicts} kept as corrected in the app" if self.conflicts else ""
        return f"{self.inserted} added, {self.updated} updated, {self.unchanged} unchanged{deleted}{kept}"

    def report(self, limit: int = 100) -> list[str]:
        """Return one line per changed field (at most `limit`, then how many more), for the command line."""
        lines = [str(change) for change in self.changes[:limit]]
        if len(self.changes) > limit:
            lines.append(f"… and {len(self.changes) - limit:,} more changed values")
        return lines

    def conflicting_sessions(self) -> dict[int, list[FieldChange]]:
        """Return the changes of each session corrected in the app since its import, by session id."""
        found: dict[int, list[FieldChange]] = {}
        for change in self.changes:
            if change.conflict:
                found.setdefault(change.session_id, []).append(change)
        return found

    def changes_table(self) -> pd.DataFrame:
        """Return the field changes as a table: row, patient, date, field, stored value, file's value, conflict."""
        return pd.DataFrame([(c.row, c.patient_id, c.session_date, c.field, c.old, c.new, c.conflict)
                             for c in self.changes],
                            columns=["row", "patient_id", "session_date", "field", "stored", "file", "conflict"])


def parse_side_effects(text: str) -> list[tuple[str, str]]:
    """Return `code:severity;…` as a list of (code, severity) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        code, sep, severity = item.partition(":")
        if not sep:
            raise ValueError(f"'{item}' is not code:severity")
        pairs.append((code.strip(), severity.strip()))
    return pairs


def _cell(value) -> str:
    """Return a cell as stripped text ('' for an empty cell)."""
    if isinstance(value, str):
        return value.strip()
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


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
        if name not in COLUMNS and name not in EXTRA_COLUMNS
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
            row = {name: _cell(cells[name][index]) for name in names}
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
    if problems:
        raise ImportRefused(problems)
    given = {name: cells[name] for name in _OPTIONAL if name in cells}
    return ValidRows(columns, given, validated, lines)


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


def _yes_no(text: str) -> bool | None:
    """Return a twitch-response cell as True, False or None (empty); ValueError if it is something else."""
    if text in YES_NO:
        return YES_NO[text]
    if text.lower() in YES_NO:
        return YES_NO[text.lower()]
    raise ValueError(f"'{text}' must be yes or no")


_FIELDS = tuple(SessionInput.model_fields)  # in declaration order, as in a validated SessionInput's __dict__
# `_typed` leaves these fields out when their cell is empty (SessionInput's defaults apply); it gives all others.
_OPTIONAL = ("pain_scale", "pain_after", "side_effects", "muscles")
_ALWAYS_GIVEN = frozenset(_FIELDS).difference(_OPTIONAL)
_REFUSED = object()  # a cell the fast path does not accept; its row goes through SessionInput
_FLOAT, _DATE = TypeAdapter(float), TypeAdapter(date)  # pydantic's own parsing, as for SessionInput's fields


class ValidRows(Sequence[SessionInput]):
    """The validated sessions of a file, held as one list per SessionInput field; each item is a SessionInput.

    `import_sessions` reads the columns, so an import of 100,000 rows never builds 100,000 models.
    """

    def __init__(self, columns: dict[str, list], given: dict[str, list], validated: dict[int, SessionInput],
                 lines: list[int] | None = None):
        self.columns = columns  # SessionInput field -> its value in every row
        self.lines = lines or list(range(2, len(columns["patient_id"]) + 2))  # each row's line in the file
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
                name for name in _OPTIONAL if name in self._given and _cell(self._given[name][index])
            )
            entry = checked_session(values, set(fields_set))
        return entry

    def __eq__(self, other) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"ValidRows({len(self)} sessions)"


def _accept(check: Callable, cell) -> object:
    try:
        return check(_cell(cell))
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
        self.cells = {name: cells.get(name) or [""] * total for name in COLUMNS + EXTRA_COLUMNS}
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
            "side_effects": lambda cell: SessionInput._side_effects(parse_side_effects(cell)),
            "condition": SessionInput._optional_code,
            "body_region": SessionInput._optional_code,
            "clinician": SessionInput._optional_code,
            "twitch_response": _yes_no,
            "muscles": lambda cell: SessionInput._muscles(cell.split(";")),
            "notes": SessionInput._notes,
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
        typed["today"] = [self.today] * (stop - start)
        return typed, sorted(refused)


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
        data["twitch_response"] = _yes_no(get("twitch_response", ""))
    except ValueError as error:
        problems.append(Problem("twitch_response", str(error)))
    effects = get("side_effects", "")
    if effects:
        try:
            data["side_effects"] = parse_side_effects(effects)
        except ValueError as error:
            problems.append(Problem("side_effects", str(error)))
    muscles = get("muscles", "")
    if muscles:
        data["muscles"] = muscles.split(";")
    return data, problems


def _identity_keys(entries: Iterable[tuple]) -> list[tuple]:
    """Return each session's identity: patient, date, technique and entry order among such sessions."""
    seen: Counter = Counter()
    keys = []
    for patient, day, technique in entries:
        seen[(patient, day, technique)] += 1
        keys.append((patient, day, technique, seen[(patient, day, technique)]))
    return keys


def _lines_of(entries: Sequence[SessionInput]) -> list[int]:
    """Return each validated session's line in its file (position + 2 for sessions not read from a file)."""
    if isinstance(entries, ValidRows):
        return entries.lines
    return list(range(2, len(entries) + 2))


def _columns_of(entries: Sequence[SessionInput]) -> dict[str, list]:
    """Return validated sessions as one list per SessionInput field."""
    if isinstance(entries, ValidRows):
        return entries.columns
    return {name: [getattr(entry, name) for entry in entries] for name in _FIELDS}


def _stored_columns(rows: dict[str, list]) -> dict[str, list]:
    """Return the stored column values of validated sessions, column by column, as `db.writes.session_values`."""
    stored = {name: rows[name] for name in _STORED}
    stored["muscles"] = [";".join(muscles) for muscles in rows["muscles"]]
    return stored


TakeFileValues = bool | Collection[int]  # True: every conflict; or the session ids whose file values win
_NEW = object()  # the id of a patient, episode or clinician that the import has yet to create


@dataclass
class _Plan:
    """What the database holds for the file's patients, and what each row of the file is to do."""

    patients: dict[str, int]  # pseudonym -> id, existing patients
    episodes: dict[tuple, dict]  # (patient pseudonym, condition) -> {"id", "body_region"}, existing episodes
    users: dict[str, int]  # username -> id
    live: dict[int, dict]  # session id -> stored values, every live session of the file's patients
    new: list[int]  # the rows to insert, by position
    updates: list[tuple[int, dict]]  # (row, its stored session) for the rows that change a stored session
    result: ImportResult


def _plan(session: Session, rows: dict[str, list], lines: list[int], take_file_values: TakeFileValues = False
          ) -> _Plan:
    """Read what the file's patients already have and decide, row by row, what the import does. No writes.

    Raises ImportRefused when a `clinician` cell names an account of another role.
    """
    pseudonyms = list(dict.fromkeys(rows["patient_id"]))
    patients: dict[str, int] = {}
    for chunk in bulk.chunks(pseudonyms):
        found = session.execute(select(Patient.pseudonym, Patient.id).where(Patient.pseudonym.in_(chunk)))
        patients.update(found.all())
    by_id = {patient_id: pseudonym for pseudonym, patient_id in patients.items()}
    episodes: dict[tuple, dict] = {}
    condition_of: dict[int, str | None] = {}
    existing: dict[tuple, dict] = {}
    live: dict[int, dict] = {}
    for chunk in bulk.chunks(list(by_id)):
        found = session.execute(
            select(Episode.id, Episode.patient_id, Episode.condition, Episode.body_region)
            .where(Episode.patient_id.in_(chunk))
            .order_by(Episode.id)
        )
        for row in found:
            episodes.setdefault((by_id[row.patient_id], row.condition), {"id": row.id, "body_region": row.body_region})
            condition_of[row.id] = row.condition
        _read_sessions(session, chunk, by_id, existing, live)
    accounts = session.execute(select(User.username, User.id, User.role)).all()
    users = {username: user_id for username, user_id, _ in accounts}
    _refuse_other_roles(rows["clinician"], lines, {username: role for username, _, role in accounts})
    result = ImportResult()
    new_clinicians = dict.fromkeys(c for c in rows["clinician"] if c and c not in users)
    result.new_clinicians = list(new_clinicians)
    result.new_patients = len(pseudonyms) - len(patients)
    count = len(rows["patient_id"])
    if not existing:  # none of the file's patients has a session yet: every row is new
        result.inserted = count
        return _Plan(patients, episodes, users, live, list(range(count)), [], result)
    new, changed = [], []
    stored = _stored_columns(rows)
    keys = _identity_keys(zip(rows["patient_id"], rows["session_date"], rows["technique"], strict=True))
    for index, key in enumerate(keys):
        current = existing.get(key)
        if current is None:
            new.append(index)
        elif current["deleted"]:
            result.deleted += 1
        else:
            episode = episodes.get((rows["patient_id"][index], rows["condition"][index]))
            clinician = rows["clinician"][index]
            if (
                any(current[name] != stored[name][index] for name in _STORED)
                or current["episode_id"] != (episode["id"] if episode else _NEW)
                or current["clinician_id"] != (users.get(clinician, _NEW) if clinician else None)
                or current["side_effects"] != rows["side_effects"][index]
            ):
                changed.append((index, current))
            else:
                result.unchanged += 1
    corrected = _corrected_in_app(session, [current["session_id"] for _, current in changed])
    names = {user_id: username for username, user_id in users.items()}
    updates = []
    for index, current in changed:
        conflict = current["session_id"] in corrected
        applied = not conflict or take_file_values is True or (
            bool(take_file_values) and current["session_id"] in take_file_values)
        result.changes += _field_changes(rows, stored, index, lines[index], current, condition_of, names,
                                         conflict, applied)
        if applied:
            updates.append((index, current))
        else:
            result.conflicts += 1
    result.inserted, result.updated = len(new), len(updates)
    return _Plan(patients, episodes, users, live, new, updates, result)


def _refuse_other_roles(clinicians: list[str | None], lines: list[int], roles: dict[str, str]) -> None:
    """Raise ImportRefused for every `clinician` cell that names an account of another role than clinician."""
    problems = [RowProblem(line, "clinician", name, not_a_clinician(name, roles[name]))
                for line, name in zip(lines, clinicians, strict=True)
                if name and roles.get(name, "clinician") != "clinician"]
    if problems:
        raise ImportRefused(problems)


def _corrected_in_app(session: Session, session_ids: list[int]) -> set[int]:
    """Return those of these sessions whose values were corrected in the app after they were last imported.

    The audit trail tells: an import writes `create` or `update` rows whose detail starts with "import", a
    correction in the app an `update` row without. A session recorded in the app and corrected there counts too.
    """
    corrected = set()
    for chunk in bulk.chunks(session_ids):
        last_import: dict[int, int] = {}
        last_correction: dict[int, int] = {}
        found = session.execute(
            select(AuditEvent.entity_id, AuditEvent.id, AuditEvent.action, AuditEvent.detail)
            .where(AuditEvent.entity == "session", AuditEvent.entity_id.in_(chunk),
                   AuditEvent.action.in_(("create", "update")))
        )
        for session_id, event_id, action, detail in found:
            latest = last_import if (detail or "").startswith("import") else last_correction
            if action == "update" or latest is last_import:
                latest[session_id] = max(latest.get(session_id, 0), event_id)
        corrected.update(sid for sid, event_id in last_correction.items() if event_id > last_import.get(sid, 0))
    return corrected


def _field_changes(rows: dict[str, list], stored: dict[str, list], index: int, line: int, current: dict,
                   condition_of: dict[int, str | None], names: dict[int, str], conflict: bool,
                   applied: bool) -> list[FieldChange]:
    """Return each field that row `index` of the file changes in its stored session, as interchange text."""
    def text(name: str, value) -> str:
        if value is None:
            return ""
        if name in ("pain_before", "pain_after"):
            return _number_text(value)
        if name == "twitch_response":
            return "yes" if value else "no"
        return str(value)

    pairs = {name: (current[name], stored[name][index]) for name in _STORED if name != "session_date"}
    pairs["condition"] = (condition_of.get(current["episode_id"]), rows["condition"][index])
    pairs["clinician"] = (names.get(current["clinician_id"]), rows["clinician"][index])
    pairs["side_effects"] = (_effects_text(current["side_effects"]), _effects_text(rows["side_effects"][index]))
    patient, day = rows["patient_id"][index], rows["session_date"][index].isoformat()
    return [FieldChange(line, patient, day, name, text(name, old), text(name, new), current["session_id"], conflict,
                        applied)
            for name in _CHANGE_ORDER if (old := pairs[name][0]) != (new := pairs[name][1])
            and text(name, old) != text(name, new)]


# Fields in the interchange format's column order; the date and technique identify a session, so never change.
_CHANGE_ORDER = ("pain_scale", "pain_before", "pain_after", "side_effects", "condition", "clinician",
                 "twitch_response", "notes", "muscles", "technique")


_READ = ("session_id", "episode_id", "clinician_id", "session_number", "deleted_at", "patient_id", *_STORED)


def _read_sessions(session: Session, patient_ids: list[int], by_id: dict[int, str], existing: dict, live: dict):
    """Add the sessions of these patients to `existing` (by identity key) and the live ones to `live` (by id)."""
    # Core rows, unpacked by position: a re-import reads every session of the file's patients.
    connection = session.connection()
    rows = connection.execute(
        select(T.c.id, T.c.episode_id, T.c.clinician_id, T.c.session_number, T.c.deleted_at, E.c.patient_id,
               *(T.c[name] for name in _STORED))
        .join(E, E.c.id == T.c.episode_id)
        .where(E.c.patient_id.in_(patient_ids))
        .order_by(E.c.patient_id, T.c.session_date, T.c.id)
    ).all()
    effects: dict[int, list[tuple[str, str]]] = {}
    effect_rows = connection.execute(
        select(SideEffect.session_id, SideEffect.code, SideEffect.severity)
        .join(T, T.c.id == SideEffect.session_id)
        .join(E, E.c.id == T.c.episode_id)
        .where(E.c.patient_id.in_(patient_ids))
        .order_by(SideEffect.session_id, SideEffect.id)
    )
    for session_id, code, severity in effect_rows:
        effects.setdefault(session_id, []).append((code, severity))
    date_at, technique_at = _READ.index("session_date"), _READ.index("technique")
    keys = _identity_keys((by_id[r[5]], r[date_at], r[technique_at]) for r in rows)
    for key, row in zip(keys, rows, strict=True):
        current = dict(zip(_READ, row, strict=True))
        current["deleted"] = current.pop("deleted_at") is not None
        current["side_effects"] = effects.get(current["session_id"], [])
        existing[key] = current
        if not current["deleted"]:
            live[current["session_id"]] = current


def plan_import(session: Session, *, actor: Actor, entries: Sequence[SessionInput],
                take_file_values: TakeFileValues = False) -> ImportResult:
    """Return what importing these validated sessions would do (new, updated, unchanged), writing nothing.

    `result.changes` lists every field each update changes; see `import_sessions` for `take_file_values`.
    """
    require_role(actor, CLINICAL_WRITERS, "import clinical data")
    return _plan(session, _columns_of(entries), _lines_of(entries), take_file_values).result


def import_sessions(
    session: Session, *, actor: Actor, entries: Sequence[SessionInput], source: str = "",
    take_file_values: TakeFileValues = False,
) -> ImportResult:
    """Write validated sessions in the caller's transaction: new ones inserted, changed ones updated, same ones left.

    A session is identified by patient, date, technique and entry order (docs/DESIGN.md section 5), so importing the
    same file twice changes nothing. A session that was deleted in the app stays deleted (restore it instead).
    A session corrected in the app since it was last imported is a conflict: left as corrected, unless
    `take_file_values` is True or holds its session id. A `clinician` cell may name a clinician account, or a new
    one that the import creates (audited); a cell naming an account of another role refuses the file.
    Every inserted and updated session is audited, and so is the import itself.
    """
    require_role(actor, CLINICAL_WRITERS, "import clinical data")
    with _page_cache(session, _IMPORT_CACHE_KIB), bulk.collector_paused():
        return _import(session, actor, _columns_of(entries), _lines_of(entries), source, take_file_values)


@contextmanager
def _page_cache(session: Session, kibibytes: int) -> Iterator[None]:
    """Give SQLite's page cache up to this much memory while the block runs, then the connection's own size again.

    An import writes every page of the new rows and of the indexes they go into; with SQLite's default of 2 MiB,
    the pages are written out to the WAL and read back several times before the commit.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar())
    connection.exec_driver_sql(f"PRAGMA cache_size = -{int(kibibytes)}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")


def _import(session: Session, actor: Actor, rows: dict[str, list], lines: list[int], source: str,
            take_file_values: TakeFileValues) -> ImportResult:
    """Import validated sessions given as columns (see `import_sessions`)."""
    plan = _plan(session, rows, lines, take_file_values)
    regions = _regions(rows)
    filled = [key for key, episode in plan.episodes.items() if regions.get(key) and not episode["body_region"]]
    # Before anything is written: the patients whose episodes the import changes (a re-import that changes
    # nothing leaves the roll-ups alone).
    pseudonyms = rows["patient_id"]
    rollups.touch_patients(session, {pseudonyms[i] for i in plan.new} | {pseudonyms[i] for i, _ in plan.updates}
                           | {patient for patient, _ in filled})
    now = utcnow()
    patient_ids = _create_patients(session, plan, pseudonyms, now)
    clinician_ids = dict(plan.users)
    for username in plan.result.new_clinicians:
        clinician_ids[username] = get_or_create_clinician(session, username, actor, f"import {source}").id
    episode_ids = _create_episodes(session, plan, regions, filled, patient_ids, now)

    # Every row's stored values, column by column; then the new rows' and the changed rows' share of them.
    stored = _stored_columns(rows)
    stored["episode_id"] = [episode_ids[key] for key in zip(rows["patient_id"], rows["condition"], strict=True)]
    stored["clinician_id"] = [clinician_ids[c] if c else None for c in rows["clinician"]]
    updates = [(current, {name: values[index] for name, values in stored.items()}, rows["side_effects"][index])
               for index, current in plan.updates]
    every_row = len(plan.new) == len(rows["patient_id"])
    new = stored if every_row else {name: [values[i] for i in plan.new] for name, values in stored.items()}
    new_effects = rows["side_effects"] if every_row else [rows["side_effects"][i] for i in plan.new]

    numbers, new["session_number"] = _final_numbers(plan.live, updates, new["episode_id"], new["session_date"])
    moved = {sid: k for sid, (episode, k) in numbers.items()
             if (episode, k) != (plan.live[sid]["episode_id"], plan.live[sid]["session_number"])}
    _shift_out(session, list(moved))  # free the numbers that moved sessions and new ones will take
    _update_sessions(session, actor, updates, source)
    before = _highest_id(session, T)
    if plan.new:
        bulk.insert_columns(session, T, new | {"created_at": now})
    _give_final_numbers(session, moved)
    ids = _new_session_ids(session, before, new["episode_id"], new["session_number"]) if plan.new else []
    _insert_side_effects(session, ids, new_effects)
    audited = {name: new[name] for name in _AUDITED}
    audited["side_effects"] = [_effects_text(pairs) for pairs in new_effects]
    audit.record_many(session, actor, "create", "session", ids, audited, detail=f"import {source}")
    audit.record(session, actor, "import", "file", detail=f"{source}: {plan.result.summary()}")
    return plan.result


def _create_patients(session: Session, plan: _Plan, pseudonyms: list[str], now) -> dict[str, int]:
    ids = dict(plan.patients)
    new = [p for p in dict.fromkeys(pseudonyms) if p not in ids]
    if new:
        before = _highest_id(session, P)
        bulk.insert_columns(session, P, {"pseudonym": new, "created_at": now})
        ids.update(zip(new, _inserted_ids(session, P, before, ("pseudonym",), [(p,) for p in new]), strict=True))
    return ids


def _highest_id(session: Session, table) -> int:
    return session.execute(select(func.max(table.c.id))).scalar() or 0


def _inserted_ids(session: Session, table, before: int, names: tuple[str, ...], keys: list[tuple]) -> list[int]:
    """Return the ids of the rows just inserted, in insertion order, given their keys (values of `names`).

    SQLite gives a new row the highest id so far + 1 (https://sqlite.org/autoinc.html), so under the write lock
    the rows of one insert hold the ids after `before`, the highest id before it, in order; a count checks it.
    Elsewhere, or should the count differ, the ids are read back by key.
    """
    if session.get_bind().dialect.name == "sqlite":
        count, highest = session.execute(
            select(func.count(), func.max(table.c.id)).where(table.c.id > before)
        ).one()
        if count == len(keys) and highest == before + count:
            return list(range(before + 1, before + count + 1))
    found = _ids_by_key(session, table, before, names, keys)
    return [found[key] for key in keys]


def _ids_by_key(session: Session, table, before: int, names: tuple[str, ...], keys: list[tuple]) -> dict[tuple, int]:
    """Return {key: id} for rows just inserted with these keys (values of `names`), live rows only.

    They are the rows above `before`, the highest id before the insert: writes hold the write lock (SQLite's BEGIN
    IMMEDIATE, PostgreSQL's advisory lock), and both hand out ids above every existing one. Should a key not be
    among them, it is looked up by its first column, the oldest row first.
    """
    columns = [table.c[name] for name in names]
    live = [table.c.deleted_at.is_(None)] if "deleted_at" in table.c else []
    connection = session.connection()
    # By id alone, a range of the primary key: rows just inserted are live, and a condition on deleted_at could
    # lead SQLite to scan a partial index of every session instead.
    rows = connection.execute(select(table.c.id, *columns).where(table.c.id > before)).all()
    ids, *values = zip(*rows, strict=True) if rows else ((),) * (len(columns) + 1)
    found = dict(zip(zip(*values, strict=True), ids, strict=True))
    missing = sorted({key[0] for key in keys if key not in found})
    for chunk in bulk.chunks(missing):
        rows = connection.execute(select(*columns, table.c.id).where(columns[0].in_(chunk), *live).order_by(table.c.id))
        for row in rows:
            found.setdefault(tuple(row[:-1]), row[-1])
    return found


def _regions(rows: dict[str, list]) -> dict[tuple, str | None]:
    """Return the body region of each (patient, condition) of the file: the first one the file gives it."""
    regions: dict[tuple, str | None] = {}
    for patient, condition, region in zip(rows["patient_id"], rows["condition"], rows["body_region"], strict=True):
        key = (patient, condition)
        if not regions.get(key):
            regions[key] = region
    return regions


def _create_episodes(session: Session, plan: _Plan, regions: dict[tuple, str | None], filled: list[tuple],
                     patient_ids: dict[str, int], now) -> dict[tuple, int]:
    """Return the episode id of every (patient, condition) in the file, creating the new ones.

    As `db.writes.get_or_create_episode`: a new episode takes its body region from the file, and an existing
    episode without one (those `filled`) takes the first region the file gives it.
    """
    ids = {key: episode["id"] for key, episode in plan.episodes.items() if key in regions}
    if filled:
        session.execute(
            update(E).where(E.c.id == bindparam("b_id")).values(body_region=bindparam("region")),
            [{"b_id": plan.episodes[key]["id"], "region": regions[key]} for key in filled],
        )
    new = [key for key in regions if key not in ids]
    if new:
        before = _highest_id(session, E)
        keys = [(patient_ids[p], c) for p, c in new]
        bulk.insert_columns(session, E, {
            "patient_id": [patient for patient, _ in keys], "condition": [c for _, c in keys],
            "body_region": [regions[key] for key in new], "created_at": now,
        })
        ids.update(zip(new, _inserted_ids(session, E, before, ("patient_id", "condition"), keys), strict=True))
    return ids


def _final_numbers(live: dict[int, dict], updates: list, new_episodes: list[int],
                   new_dates: list[date]) -> tuple[dict[int, tuple[int, int]], list[int]]:
    """Number the sessions of every episode the import touches 1, 2, 3… by date, ties in entry (id) order.

    Returns (episode, number) for the touched episodes' existing live sessions, and the number of each new row.
    New rows get ids above every existing one, in insertion order, so they sort after existing sessions of the
    same date and in file order among themselves.
    """
    episode_of = {sid: s["episode_id"] for sid, s in live.items()}
    touched = set(new_episodes)
    for current, values, _ in updates:
        touched.update((current["episode_id"], values["episode_id"]))
        episode_of[current["session_id"]] = values["episode_id"]
    members: dict[int, list[tuple]] = {episode: [] for episode in touched}
    for sid, episode in episode_of.items():
        if episode in members:
            members[episode].append((live[sid]["session_date"], 0, sid))
    for index, (episode, day) in enumerate(zip(new_episodes, new_dates, strict=True)):
        members[episode].append((day, 1, index))
    numbers: dict[int, tuple[int, int]] = {}
    new_numbers = [0] * len(new_episodes)
    for episode, sessions in members.items():
        sessions.sort()
        for k, (_, is_new, ref) in enumerate(sessions, start=1):
            if is_new:
                new_numbers[ref] = k
            else:
                numbers[ref] = (episode, k)
    return numbers, new_numbers


def _set_numbers(session: Session, numbers: dict[int, int]) -> None:
    if numbers:
        session.execute(
            update(T).where(T.c.id == bindparam("b_id")).values(session_number=bindparam("number")),
            [{"b_id": sid, "number": k} for sid, k in numbers.items()],
        )


def _shift_out(session: Session, session_ids: list[int]) -> None:
    """Give these sessions numbers out of the way of every real one, each its own."""
    _set_numbers(session, {sid: _SHIFT + i for i, sid in enumerate(session_ids, start=1)})


def _give_final_numbers(session: Session, numbers: dict[int, int]) -> None:
    """Give the shifted sessions their final numbers: the last write of an import."""
    _set_numbers(session, numbers)


def _new_session_ids(session: Session, before: int, episodes: list[int], numbers: list[int]) -> list[int]:
    """Return the ids of the rows just inserted, in their order, by their (episode, number), unique while live.

    The numbers were given assuming the database hands out ids above `before` in insertion order (SQLite does, and
    so does a PostgreSQL sequence under the write lock). Should the ids say otherwise, the touched episodes are
    read back and numbered again by date and id, as `db.writes.renumber_episode` does.
    """
    ids = _inserted_ids(session, T, before, ("episode_id", "session_number"), list(zip(episodes, numbers, strict=True)))
    if ids and ids[0] > before and all(a < b for a, b in zip(ids, ids[1:], strict=False)):
        return ids
    rows = []
    for chunk in bulk.chunks(sorted(set(episodes))):
        rows += session.connection().execute(
            select(T.c.id, T.c.episode_id, T.c.session_number)
            .where(T.c.episode_id.in_(chunk), T.c.deleted_at.is_(None))
            .order_by(T.c.episode_id, T.c.session_date, T.c.id)
        ).all()
    wanted, k, previous = {}, 0, None
    for session_id, episode, number in rows:
        k = k + 1 if episode == previous else 1
        previous = episode
        if number != k:
            wanted[session_id] = k
    _shift_out(session, list(wanted))
    _set_numbers(session, wanted)
    return ids


def _update_sessions(session: Session, actor: Actor, updates: list, source: str) -> None:
    """Write the changed sessions' values and side effects, each update audited with the values before and after."""
    if not updates:
        return
    names = list(updates[0][1])
    session.execute(
        update(T).where(T.c.id == bindparam("b_id")).values({k: bindparam(f"v_{k}") for k in names}),
        [{"b_id": current["session_id"], **{f"v_{k}": values[k] for k in names}} for current, values, _ in updates],
    )
    ids = [current["session_id"] for current, _, _ in updates]
    for chunk in bulk.chunks(ids):
        session.execute(delete(SideEffect).where(SideEffect.session_id.in_(chunk)))
    _insert_side_effects(session, ids, [effects for _, _, effects in updates])
    for current, values, effects in updates:
        before, after = _audit_values(current), _audit_values(values | {"side_effects": effects})
        changed = {k for k in after if before.get(k) != after[k]}
        audit.record(session, actor, "update", "session", current["session_id"], detail=f"import {source}",
                     before={k: before.get(k) for k in changed}, after={k: after[k] for k in changed})


_AUDITED = ("session_date", "technique", "muscles", "twitch_response", "pain_scale", "pain_before", "pain_after",
            "notes", "clinician_id")


def _audit_values(values: dict) -> dict:
    """Return the audited fields of a session's stored values, side effects as `code:severity;…`."""
    audited = {k: values[k] for k in _AUDITED if k in values}
    audited["side_effects"] = ";".join(f"{c}:{s}" for c, s in values.get("side_effects", []))
    return audited


def _insert_side_effects(session: Session, session_ids: list[int], effects: list[list[tuple[str, str]]]) -> None:
    rows = [(session_id, code, severity)
            for session_id, pairs in zip(session_ids, effects, strict=True) if pairs
            for code, severity in pairs]
    if rows:
        session_id, code, severity = (list(column) for column in zip(*rows, strict=True))
        bulk.insert_columns(session, SideEffect.__table__, {"session_id": session_id, "code": code,
                                                            "severity": severity})


def _effects_text(pairs: list[tuple[str, str]]) -> str:
    """Return side effects as the interchange text `code:severity;…`."""
    return ";".join(f"{code}:{severity}" for code, severity in pairs)


def _number_text(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def export_table(session: Session, *, actor: Actor, purpose: str = "") -> pd.DataFrame:
    """Return every live session as interchange rows (text cells), in patient, date and entry order; audited.

    `purpose` names the file format in the audit row (e.g. "FHIR bundle").
    """
    frame = queries.all_sessions(session, actor=actor)
    audit.record(session, actor, "export", "file", detail=f"{purpose + ': ' if purpose else ''}{len(frame)} sessions")
    out = pd.DataFrame(
        {
            "patient_id": frame["patient_id"],
            "session_date": frame["session_date"].map(lambda d: d.isoformat()),
            "technique": frame["technique"],
            "pain_scale": frame["pain_scale"],
            "pain_before": frame["pain_before"].map(_number_text),
            "pain_after": frame["pain_after"].map(_number_text),
            "side_effects": frame["side_effects"],
            "condition": frame["condition"].fillna(""),
            "clinician": frame["clinician"].fillna(""),
            "twitch_response": frame["twitch_response"].map({True: "yes", False: "no"}).fillna(""),
            "notes": frame["notes"],
            "body_region": frame["body_region"].fillna(""),
            "muscles": frame["muscles"],
        },
        columns=COLUMNS + EXTRA_COLUMNS,
    )
    return out.astype(str)
