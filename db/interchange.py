"""The interchange format of DESIGN.md section 5: read and validate files, import all rows or none, export.

Import is built for files of 100,000 rows: every row is validated first (all problems reported together), then
the database is read in a few queries per thousands of patients, each row is classified as new, changed, unchanged
or deleted in Python, and the writes go out as bulk statements in the caller's one transaction.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlmodel import Session

from db import audit, queries, rollups
from db.access import CLINICAL_WRITERS, Actor, require_role
from db.models import Episode, Patient, SideEffect, TreatmentSession, User, utcnow
from db.validation import InvalidInput, Problem, SessionInput, validate_session
from db.writes import get_or_create_clinician, session_values

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
_IN_CHUNK = 5_000  # ids per IN (…) list: below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters
# While an import renumbers, a session waiting for its final number holds _SHIFT + a number unique to it: above
# every real session number, so the unique (episode, number) index of live sessions holds after every statement.
_SHIFT = 1_000_000
S = TreatmentSession
# Bulk statements go to the Core tables: ORM-enabled bulk INSERT … RETURNING runs row by row.
P, E, T = Patient.__table__, Episode.__table__, TreatmentSession.__table__
_STORED = ("session_date", "technique", "muscles", "twitch_response", "pain_scale", "pain_before", "pain_after",
           "notes")


@dataclass(frozen=True)
class RowProblem:
    """One refused cell: the file line (header is line 1), the column, the value and the reason."""

    row: int
    column: str
    value: str
    reason: str


class ImportRefused(ValueError):
    """Raised when a file cannot be imported; nothing has been written."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"row {first.row}, column {first.column}: {first.reason}{more}")

    def table(self) -> pd.DataFrame:
        """Return the problems as a table of row, column, value and reason."""
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=["row", "column", "value", "reason"])


@dataclass
class ImportResult:
    """What an import did (or, from `plan_import`, would do)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # rows matching a session deleted in the app, left deleted
    new_clinicians: list[str] = field(default_factory=list)
    new_patients: int = 0

    def summary(self) -> str:
        """Return what was done in a few words."""
        deleted = f", {self.deleted} left deleted" if self.deleted else ""
        return f"{self.inserted} added, {self.updated} updated, {self.unchanged} unchanged{deleted}"


def read_table(source: Path | BinaryIO, name: str | None = None) -> pd.DataFrame:
    """Return the file's cells as text, columns named as in the file (CSV in UTF-8, or the first XLSX sheet).

    `source` is a path, or an open binary file (an upload) whose `name` says its format.
    """
    name = name or getattr(source, "name", None) or str(source)
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8")
    if suffix == ".xlsx":
        table = pd.read_excel(source, dtype=str, keep_default_na=False, engine="openpyxl")
        # A date typed into a spreadsheet is stored as a date cell, which reads back as "2025-03-01 00:00:00";
        # it is unambiguous, so keep its date part (a time of day other than midnight is still refused).
        dates = [c for c in table.columns if str(c).strip().lower() == "session_date"]
        table[dates] = table[dates].replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1", regex=True)
        return table
    raise ImportRefused([RowProblem(0, "file", Path(name).name, "use a .csv or .xlsx file")])


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
) -> list[SessionInput]:
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
    columns = [[_cell(v) for v in table[name].tolist()] for name in names]
    total = len(table)
    entries = []
    for line, values in enumerate(zip(*columns, strict=True), start=2):
        row = dict(zip(names, values, strict=True))
        data, cell_problems = _typed(row)
        data["today"] = today
        try:
            entries.append(validate_session(data))
        except InvalidInput as refused:
            cell_problems += refused.problems
        if cell_problems:
            problems += [RowProblem(line, p.field, str(row.get(p.field, "")), p.message) for p in cell_problems]
        if on_progress and (line - 1) % VALIDATION_CHUNK == 0:
            on_progress(line - 1, total)
    if on_progress:
        on_progress(total, total)
    if problems:
        raise ImportRefused(problems)
    return entries


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
    twitch = get("twitch_response", "")
    if twitch in YES_NO:
        data["twitch_response"] = YES_NO[twitch]
    elif twitch.lower() in YES_NO:
        data["twitch_response"] = YES_NO[twitch.lower()]
    else:
        problems.append(Problem("twitch_response", f"'{twitch}' must be yes or no"))
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


def _chunks(items: list, size: int = _IN_CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_NEW = object()  # the id of a patient, episode or clinician that the import has yet to create


@dataclass
class _Plan:
    """What the database holds for the file's patients, and what each row of the file is to do."""

    patients: dict[str, int]  # pseudonym -> id, existing patients
    episodes: dict[tuple, dict]  # (patient pseudonym, condition) -> {"id", "body_region"}, existing episodes
    users: dict[str, int]  # username -> id
    live: dict[int, dict]  # session id -> stored values, every live session of the file's patients
    actions: list[tuple[str, dict | None]]  # per entry: ("new" | "update" | "unchanged" | "deleted", current)
    result: ImportResult


def _plan(session: Session, entries: list[SessionInput]) -> _Plan:
    """Read what the file's patients already have and decide, row by row, what the import does. No writes."""
    pseudonyms = list(dict.fromkeys(e.patient_id for e in entries))
    patients: dict[str, int] = {}
    for chunk in _chunks(pseudonyms):
        rows = session.execute(select(Patient.pseudonym, Patient.id).where(Patient.pseudonym.in_(chunk)))
        patients.update(rows.all())
    by_id = {patient_id: pseudonym for pseudonym, patient_id in patients.items()}
    episodes: dict[tuple, dict] = {}
    existing: dict[tuple, dict] = {}
    live: dict[int, dict] = {}
    for chunk in _chunks(list(by_id)):
        rows = session.execute(
            select(Episode.id, Episode.patient_id, Episode.condition, Episode.body_region)
            .where(Episode.patient_id.in_(chunk))
            .order_by(Episode.id)
        )
        for row in rows:
            episodes.setdefault((by_id[row.patient_id], row.condition), {"id": row.id, "body_region": row.body_region})
        _read_sessions(session, chunk, by_id, existing, live)
    users = dict(session.execute(select(User.username, User.id)).all())
    result = ImportResult()
    new_clinicians = dict.fromkeys(e.clinician for e in entries if e.clinician and e.clinician not in users)
    result.new_clinicians = list(new_clinicians)
    result.new_patients = len(pseudonyms) - len(patients)
    actions: list[tuple[str, dict | None]] = []
    keys = _identity_keys((e.patient_id, e.session_date, e.technique) for e in entries)
    for entry, key in zip(entries, keys, strict=True):
        current = existing.get(key)
        if current is None:
            actions.append(("new", None))
            result.inserted += 1
        elif current["deleted"]:
            actions.append(("deleted", current))
            result.deleted += 1
        else:
            episode = episodes.get((entry.patient_id, entry.condition))
            wanted = session_values(entry) | {
                "episode_id": episode["id"] if episode else _NEW,
                "clinician_id": users.get(entry.clinician, _NEW) if entry.clinician else None,
            }
            if any(current[k] != v for k, v in wanted.items()) or current["side_effects"] != entry.side_effects:
                actions.append(("update", current))
                result.updated += 1
            else:
                actions.append(("unchanged", current))
                result.unchanged += 1
    return _Plan(patients, episodes, users, live, actions, result)


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


def plan_import(session: Session, *, actor: Actor, entries: list[SessionInput]) -> ImportResult:
    """Return what importing these validated sessions would do (new, updated, unchanged), writing nothing."""
    require_role(actor, CLINICAL_WRITERS, "import clinical data")
    return _plan(session, entries).result


def import_sessions(
    session: Session, *, actor: Actor, entries: list[SessionInput], source: str = ""
) -> ImportResult:
    """Write validated sessions in the caller's transaction: new ones inserted, changed ones updated, same ones left.

    A session is identified by patient, date, technique and entry order (DESIGN.md section 5), so importing the
    same file twice changes nothing. A session that was deleted in the app stays deleted (restore it instead).
    Every inserted and updated session is audited, and so is the import itself.
    """
    require_role(actor, CLINICAL_WRITERS, "import clinical data")
    plan = _plan(session, entries)
    rollups.touch_patients(session, {entry.patient_id for entry in entries})  # before anything is written
    now = utcnow()
    patient_ids = _create_patients(session, plan, entries, now)
    clinician_ids = dict(plan.users)
    for username in plan.result.new_clinicians:
        clinician_ids[username] = get_or_create_clinician(session, username).id
    episode_ids = _create_episodes(session, plan, entries, patient_ids, now)

    new_rows, new_effects, updates = [], [], []
    for entry, (action, current) in zip(entries, plan.actions, strict=True):
        if action not in ("new", "update"):
            continue
        values = session_values(entry)
        values["episode_id"] = episode_ids[(entry.patient_id, entry.condition)]
        values["clinician_id"] = clinician_ids[entry.clinician] if entry.clinician else None
        if action == "new":
            values["created_at"] = now
            new_rows.append(values)
            new_effects.append(entry.side_effects)
        else:
            updates.append((current, values, entry.side_effects))

    numbers = _final_numbers(plan.live, updates, new_rows)
    moved = {sid: k for sid, (episode, k) in numbers.items()
             if (episode, k) != (plan.live[sid]["episode_id"], plan.live[sid]["session_number"])}
    _shift_out(session, list(moved))  # free the numbers that moved sessions and new ones will take
    _update_sessions(session, actor, updates, source)
    if new_rows:
        _insert_many(session, T, new_rows)
    _give_final_numbers(session, moved)
    ids = _new_session_ids(session, new_rows)
    _insert_side_effects(session, ids, new_effects)
    for row, effects in zip(new_rows, new_effects, strict=True):
        row["side_effects"] = effects  # for the audit only; the rows have been inserted
    audit.record_many(session, actor, "create", "session",
                      [(session_id, _audit_values(row)) for session_id, row in zip(ids, new_rows, strict=True)],
                      detail=f"import {source}")
    audit.record(session, actor, "import", "file", detail=f"{source}: {plan.result.summary()}")
    return plan.result


# Bulk inserts go out as plain executemany and the new ids are read back by their unique keys: SQLAlchemy
# sends INSERT … RETURNING with sort_by_parameter_order one row at a time on SQLite, twenty times slower.


def _insert_many(session: Session, table: Table, rows: list[dict]) -> None:
    """Insert rows (dicts with the same keys) in one executemany, values converted as SQLAlchemy converts them.

    On SQLite the statement goes straight to the driver: SQLAlchemy's per-row parameter handling costs as much as
    SQLite's own work on 100,000 rows. Elsewhere it is an ordinary Core insert (batched by the dialect).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        session.execute(insert(table), rows)
        return
    names = list(rows[0])
    quote = dialect.identifier_preparer.quote
    convert = [(i, p) for i, n in enumerate(names)
               if (p := table.c[n].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    values = [[row[n] for n in names] for row in rows]
    for i, process in convert:
        done: dict = {}  # a column repeats its values (one time stamp, a few hundred dates): convert each once
        for row in values:
            value = row[i]
            if value is not None:
                converted = done.get(value)
                if converted is None:
                    converted = done[value] = process(value)
                row[i] = converted
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) VALUES ({', '.join('?' * len(names))})"
    session.connection().exec_driver_sql(sql, [tuple(row) for row in values])


def _create_patients(session: Session, plan: _Plan, entries, now) -> dict[str, int]:
    ids = dict(plan.patients)
    new = [p for p in dict.fromkeys(e.patient_id for e in entries) if p not in ids]
    if new:
        _insert_many(session, P, [{"pseudonym": p, "created_at": now} for p in new])
        for chunk in _chunks(new):
            ids.update(session.execute(select(P.c.pseudonym, P.c.id).where(P.c.pseudonym.in_(chunk))).all())
    return ids


def _create_episodes(session: Session, plan: _Plan, entries, patient_ids: dict[str, int], now) -> dict[tuple, int]:
    """Return the episode id of every (patient, condition) in the file, creating the new ones.

    As `db.writes.get_or_create_episode`: a new episode takes its body region from the file, and an episode
    without one takes the first region the file gives it.
    """
    regions: dict[tuple, str | None] = {}
    for entry in entries:
        key = (entry.patient_id, entry.condition)
        if not regions.get(key):
            regions[key] = entry.body_region
    ids = {key: episode["id"] for key, episode in plan.episodes.items() if key in regions}
    filled = [
        {"b_id": episode["id"], "region": regions[key]}
        for key, episode in plan.episodes.items()
        if key in regions and regions[key] and not episode["body_region"]
    ]
    if filled:
        session.execute(
            update(E).where(E.c.id == bindparam("b_id"))
            .values(body_region=bindparam("region")),
            filled,
        )
    new = [key for key in regions if key not in ids]
    if new:
        _insert_many(session, E, [
            {"patient_id": patient_ids[p], "condition": c, "body_region": regions[(p, c)], "created_at": now}
            for p, c in new
        ])
        pseudonym = {patient_ids[p]: p for p, _ in new}
        for chunk in _chunks(list(pseudonym)):
            rows = session.execute(
                select(E.c.id, E.c.patient_id, E.c.condition).where(E.c.patient_id.in_(chunk)).order_by(E.c.id)
            )
            for episode_id, patient_id, condition in rows:
                ids.setdefault((pseudonym[patient_id], condition), episode_id)  # the oldest, as plan.episodes
    return ids


def _final_numbers(live: dict[int, dict], updates: list, new_rows: list[dict]) -> dict[int, tuple[int, int]]:
    """Number the sessions of every episode the import touches 1, 2, 3… by date, ties in entry (id) order.

    Returns (episode, number) for the touched episodes' existing live sessions, and writes the number of each new
    row into it. New rows get ids above every existing one, in insertion order, so they sort after existing
    sessions of the same date and in file order among themselves.
    """
    episode_of = {sid: s["episode_id"] for sid, s in live.items()}
    touched = {row["episode_id"] for row in new_rows}
    for current, values, _ in updates:
        touched.update((current["episode_id"], values["episode_id"]))
        episode_of[current["session_id"]] = values["episode_id"]
    members: dict[int, list[tuple]] = {episode: [] for episode in touched}
    for sid, episode in episode_of.items():
        if episode in members:
            members[episode].append((live[sid]["session_date"], 0, sid, None))
    for index, row in enumerate(new_rows):
        members[row["episode_id"]].append((row["session_date"], 1, index, row))
    numbers: dict[int, tuple[int, int]] = {}
    for episode, sessions in members.items():
        sessions.sort(key=lambda s: s[:3])
        for k, (_, is_new, sid, row) in enumerate(sessions, start=1):
            if is_new:
                row["session_number"] = k
            else:
                numbers[sid] = (episode, k)
    return numbers


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


def _new_session_ids(session: Session, new_rows: list[dict]) -> list[int]:
    """Return the ids of the rows just inserted, in their order, by their (episode, number), unique while live.

    The numbers were given assuming the database hands out ids in insertion order (SQLite does, and so does a
    PostgreSQL sequence under the write lock). Reading the episodes back checks it: should an episode's sessions
    by date and id not be numbered 1, 2, 3…, they are numbered again here, as `db.writes.renumber_episode` does.
    """
    episodes = sorted({row["episode_id"] for row in new_rows})
    rows = []
    for chunk in _chunks(episodes):
        rows += session.execute(
            select(T.c.id, T.c.episode_id, T.c.session_number)
            .where(T.c.episode_id.in_(chunk), T.c.deleted_at.is_(None))
            .order_by(T.c.episode_id, T.c.session_date, T.c.id)
        ).all()
    by_number = {(row.episode_id, row.session_number): row.id for row in rows}
    ids = [by_number[(row["episode_id"], row["session_number"])] for row in new_rows]
    wanted, k, previous = {}, 0, None
    for row in rows:
        k = k + 1 if row.episode_id == previous else 1
        previous = row.episode_id
        if row.session_number != k:
            wanted[row.id] = k
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
    for chunk in _chunks(ids):
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


def _insert_side_effects(session: Session, session_ids, effects: list[list[tuple[str, str]]]) -> None:
    rows = [
        {"session_id": session_id, "code": code, "severity": severity}
        for session_id, pairs in zip(session_ids, effects, strict=True)
        for code, severity in pairs
    ]
    if rows:
        _insert_many(session, SideEffect.__table__, rows)


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


def table_bytes(table: pd.DataFrame, suffix: str) -> bytes:
    """Return interchange rows as the bytes of a .csv (UTF-8) or .xlsx file, chosen by the suffix."""
    buffer = io.BytesIO()
    write_table(table, buffer, suffix=suffix)
    return buffer.getvalue()


def write_table(table: pd.DataFrame, path: Path | BinaryIO, *, suffix: str | None = None) -> None:
    """Write interchange rows to a .csv (UTF-8) or .xlsx file, chosen by the suffix (of `path` unless given)."""
    suffix = (suffix or Path(str(getattr(path, "name", path))).suffix).lower()
    if suffix == ".csv":
        table.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    elif suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            table.to_excel(writer, index=False)
            # openpyxl stores any text starting with "=" as a formula: a note like "=see last visit" would come
            # back empty, and would run when the file is opened. Every cell is data, so keep it as text.
            for row in writer.sheets["Sheet1"].iter_rows():
                for cell in row:
                    if cell.data_type == "f":
                        cell.data_type = "s"
    else:
        name = Path(str(getattr(path, "name", path))).name
        raise ValueError(f"{name}: export to .csv or .xlsx (a FHIR .json Bundle is written by db.fhir)")
