"""The interchange format of DESIGN.md section 5: read and validate files, import all rows or none, export."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlmodel import Session

from db import audit, queries
from db.access import CLINICAL_WRITERS, Actor, require_role
from db.models import Episode, Patient, SideEffect, TreatmentSession, User
from db.validation import InvalidInput, Problem, SessionInput, validate_session
from db.writes import get_or_create_clinician, get_or_create_episode, renumber_episode, session_values

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
    """What an import did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # rows matching a session deleted in the app, left deleted
    new_clinicians: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Return what was done in a few words."""
        deleted = f", {self.deleted} left deleted" if self.deleted else ""
        return f"{self.inserted} added, {self.updated} updated, {self.unchanged} unchanged{deleted}"


def read_table(path: Path) -> pd.DataFrame:
    """Return the file's cells as text, columns named as in the file (CSV in UTF-8, or the first XLSX sheet)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    if suffix == ".xlsx":
        table = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        # A date typed into a spreadsheet is stored as a date cell, which reads back as "2025-03-01 00:00:00";
        # it is unambiguous, so keep its date part (a time of day other than midnight is still refused).
        dates = [c for c in table.columns if str(c).strip().lower() == "session_date"]
        table[dates] = table[dates].replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1", regex=True)
        return table
    raise ImportRefused([RowProblem(0, "file", path.name, "use a .csv or .xlsx file")])


def parse_side_effects(text: str) -> list[tuple[str, str]]:
    """Return `code:severity;…` as a list of (code, severity) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        code, sep, severity = item.partition(":")
        if not sep:
            raise ValueError(f"'{item}' is not code:severity")
        pairs.append((code.strip(), severity.strip()))
    return pairs


def _row_problems(line: int, row: dict, problems: list[Problem]) -> list[RowProblem]:
    return [RowProblem(line, p.field, str(row.get(p.field, "")), p.message) for p in problems]


def validate_rows(table: pd.DataFrame, today=None) -> list[SessionInput]:
    """Return every row validated, or raise ImportRefused listing every bad cell of the whole file."""
    table = table.rename(columns=lambda c: str(c).strip().lower())
    problems = [
        RowProblem(1, name, name, "unknown column")
        for name in table.columns
        if name not in COLUMNS and name not in EXTRA_COLUMNS
    ]
    problems += [RowProblem(1, name, "", "required column is missing") for name in sorted(REQUIRED - set(table))]
    if problems:
        raise ImportRefused(problems)
    entries = []
    for line, row in enumerate(table.to_dict("records"), start=2):
        row = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        data, cell_problems = _typed(row)
        if today is not None:
            data["today"] = today
        try:
            entries.append(validate_session(data))
        except InvalidInput as refused:
            cell_problems += refused.problems
        problems += _row_problems(line, row, cell_problems)
    if problems:
        raise ImportRefused(problems)
    return entries


def _typed(row: dict) -> tuple[dict, list[Problem]]:
    """Turn one row's text cells into SessionInput fields; cells that cannot be turned are problems."""
    problems = []
    data = {k: row[k] for k in ("patient_id", "session_date", "technique", "condition", "clinician", "body_region")
            if k in row}
    data["notes"] = row.get("notes", "")
    if row.get("pain_scale"):
        data["pain_scale"] = row["pain_scale"]
    for name in ("pain_before", "pain_after"):
        if row.get(name, "") != "":
            data[name] = row[name]
    for name in REQUIRED:
        if row.get(name, "") == "":
            data.pop(name, None)
    twitch = row.get("twitch_response", "").lower()
    if twitch in YES_NO:
        data["twitch_response"] = YES_NO[twitch]
    else:
        problems.append(Problem("twitch_response", f"'{row['twitch_response']}' must be yes or no"))
    try:
        data["side_effects"] = parse_side_effects(row.get("side_effects", ""))
    except ValueError as error:
        problems.append(Problem("side_effects", str(error)))
    data["muscles"] = row.get("muscles", "").split(";") if row.get("muscles") else []
    return data, problems


def _identity_keys(entries) -> list[tuple]:
    """Return each session's identity: patient, date, technique and entry order among such sessions."""
    seen: Counter = Counter()
    keys = []
    for patient, day, technique in entries:
        seen[(patient, day, technique)] += 1
        keys.append((patient, day, technique, seen[(patient, day, technique)]))
    return keys


def import_sessions(
    session: Session, *, actor: Actor, entries: list[SessionInput], source: str = ""
) -> ImportResult:
    """Write validated sessions in the caller's transaction: new ones inserted, changed ones updated, same ones left.

    A session is identified by patient, date, technique and entry order (DESIGN.md section 5), so importing the
    same file twice changes nothing. A session that was deleted in the app stays deleted (restore it instead).
    Every inserted and updated session is audited, and so is the import itself.
    """
    require_role(actor, CLINICAL_WRITERS, "import clinical data")
    result = ImportResult()
    pseudonyms = sorted({e.patient_id for e in entries})
    existing = _existing_sessions(session, pseudonyms)
    patients = {p.pseudonym: p for p in session.scalars(select(Patient).where(Patient.pseudonym.in_(pseudonyms)))}
    users = {u.username: u for u in session.scalars(select(User))}
    touched_episodes: set[int] = set()
    new_rows, new_effects = [], []
    keys = _identity_keys((e.patient_id, e.session_date, e.technique) for e in entries)
    for entry, key in zip(entries, keys, strict=True):
        patient = patients.get(entry.patient_id)
        if patient is None:
            patient = patients[entry.patient_id] = Patient(pseudonym=entry.patient_id)
            session.add(patient)
            session.flush()
        episode = get_or_create_episode(session, patient, entry.condition, entry.body_region)
        clinician_id = None
        if entry.clinician:
            if entry.clinician not in users:
                users[entry.clinician] = get_or_create_clinician(session, entry.clinician)
                result.new_clinicians.append(entry.clinician)
            clinician_id = users[entry.clinician].id
        values = session_values(entry) | {"episode_id": episode.id, "clinician_id": clinician_id}
        current = existing.get(key)
        if current is None:
            new_rows.append(values)
            new_effects.append(entry.side_effects)
            touched_episodes.add(episode.id)
        elif current["deleted"]:
            result.deleted += 1
        elif _differs(current, values, entry.side_effects):
            before, after = _audit_values(current), _audit_values(values | {"side_effects": entry.side_effects})
            changed = {k for k in after if before.get(k) != after[k]}
            _update_session(session, current["session_id"], values, entry.side_effects)
            audit.record(session, actor, "update", "session", current["session_id"], detail=f"import {source}",
                         before={k: before.get(k) for k in changed}, after={k: after[k] for k in changed})
            touched_episodes.update({episode.id, current["episode_id"]})
            result.updated += 1
        else:
            result.unchanged += 1
    ids = _insert_sessions(session, new_rows, new_effects)
    audit.record_many(session, actor, "create", "session", [
        (session_id, _audit_values(row | {"side_effects": effects}))
        for session_id, row, effects in zip(ids, new_rows, new_effects, strict=True)
    ])
    result.inserted = len(new_rows)
    for episode_id in sorted(touched_episodes):
        renumber_episode(session, episode_id)
    audit.record(session, actor, "import", "file", detail=f"{source}: {result.summary()}")
    return result


def _audit_values(values: dict) -> dict:
    """Return the audited fields of a session's stored values, side effects as `code:severity;…`."""
    audited = {k: values[k] for k in ("session_date", "technique", "muscles", "twitch_response", "pain_scale",
                                      "pain_before", "pain_after", "notes", "clinician_id") if k in values}
    return audited | {"side_effects": ";".join(f"{c}:{s}" for c, s in values.get("side_effects", []))}


def _existing_sessions(session: Session, pseudonyms: list[str]) -> dict[tuple, dict]:
    if not pseudonyms:
        return {}
    stmt = (
        select(Patient.pseudonym, TreatmentSession, User.username)
        .join(Episode, Episode.patient_id == Patient.id)
        .join(TreatmentSession, TreatmentSession.episode_id == Episode.id)
        .outerjoin(User, User.id == TreatmentSession.clinician_id)
        .where(Patient.pseudonym.in_(pseudonyms))
        .order_by(Patient.pseudonym, TreatmentSession.session_date, TreatmentSession.id)
    )
    rows = session.execute(stmt).all()
    ids = [row.TreatmentSession.id for row in rows]
    effects = queries._side_effect_lists(session, ids)
    keys = _identity_keys((r.pseudonym, r.TreatmentSession.session_date, r.TreatmentSession.technique) for r in rows)
    existing = {}
    for key, row in zip(keys, rows, strict=True):
        s = row.TreatmentSession
        existing[key] = {
            "session_id": s.id,
            "deleted": s.deleted_at is not None,
            "episode_id": s.episode_id,
            "clinician_id": s.clinician_id,
            "side_effects": parse_side_effects(effects.get(s.id, "")),
            **{name: getattr(s, name) for name in ("session_date", "technique", "muscles", "twitch_response",
                                                   "pain_scale", "pain_before", "pain_after", "notes")},
        }
    return existing


def _differs(current: dict, values: dict, side_effects: list[tuple[str, str]]) -> bool:
    return any(current[k] != v for k, v in values.items()) or current["side_effects"] != side_effects


def _update_session(session: Session, session_id: int, values: dict, side_effects) -> None:
    row = session.get(TreatmentSession, session_id)
    for name, value in values.items():
        setattr(row, name, value)
    session.execute(delete(SideEffect).where(SideEffect.session_id == session_id))
    session.add_all(SideEffect(session_id=session_id, code=c, severity=s) for c, s in side_effects)
    session.flush()


def _insert_sessions(session: Session, rows: list[dict], effects: list[list[tuple[str, str]]]) -> list[int]:
    if not rows:
        return []
    # Numbers are provisional (unique per row) until the touched episodes are renumbered by date.
    for offset, row in enumerate(rows, start=1):
        row["session_number"] = 2_000_000 + offset
    ids = session.scalars(
        insert(TreatmentSession).returning(TreatmentSession.id, sort_by_parameter_order=True), rows
    ).all()
    effect_rows = [
        {"session_id": session_id, "code": code, "severity": severity}
        for session_id, pairs in zip(ids, effects, strict=True)
        for code, severity in pairs
    ]
    if effect_rows:
        session.execute(insert(SideEffect), effect_rows)
    return list(ids)


def _number_text(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def export_table(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every live session as interchange rows (text cells), in patient, date and entry order; audited."""
    frame = queries.all_sessions(session, actor=actor)
    audit.record(session, actor, "export", "file", detail=f"{len(frame)} sessions")
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


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write interchange rows to a .csv (UTF-8) or .xlsx file, chosen by the suffix."""
    suffix = path.suffix.lower()
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
        raise ValueError(f"{path.name}: export to .csv or .xlsx (FHIR .json comes with the data exchange issue)")
