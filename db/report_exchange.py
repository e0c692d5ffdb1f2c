"""The interchange files of what patients report (issue #17): the `diary`, `pgic` and `psfs` tables of
docs/DESIGN.md section 5 ("Patient-reported data in files"): their columns, their rows read and checked, and export.

One row per record, text cells, as the session interchange: a `.csv` file holds one table (`python -m db export
--what diary FILE.csv`), an `.xlsx` export holds the sessions on its first sheet and each table on a sheet of its
name. A diary entry names its session as the session file identifies it (patient, date, technique and entry order);
a PGIC answer and a PSFS activity name their episode of care (patient, condition, episode number). Rows are keyed
so that importing the same file again changes nothing; `db.report_import` writes them, all rows or none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from clinic import side_effects
from clinic.patient_reports import (
    ACTIVITY_MAX,
    DIARY_WINDOWS,
    ENTERED_BY,
    NOTE_MAX,
    PATIENT_EFFECT_CODES,
    PGIC_MAX,
    PGIC_MIN,
    PSFS_MAX,
    PSFS_MAX_ACTIVITIES,
    PSFS_MIN,
    SORENESS_MAX,
    SORENESS_MIN,
)
from clinic.vocabulary import PATIENT_ID_PATTERN, SEVERITIES, TECHNIQUES
from db import audit, bulk
from db.access import IDENTIFIED_READERS, Actor, require_role
from db.file_problems import ImportRefused, RowProblem
from db.interchange import cell, episode_number, identity_keys
from db.models import Episode, Patient, TreatmentSession
from db.report_models import DiaryEntry, PatientSideEffect, PgicResponse, PsfsActivity, PsfsRating
from db.validation import DAY_FIRST_DATE, ISO_DATE, longer_than, unstorable

MAX_EPISODE = 999  # as db.episodes.MAX_EPISODE_NUMBER
# Each table's columns in the order an export writes them; the required ones must be in a file, the others may be
# left out (empty cells: their default).
SESSION_KEY = ["patient_id", "session_date", "technique", "session_entry"]
COLUMNS = {
    "diary": [*SESSION_KEY, "window_h", "recorded_at", "soreness", "side_effects", "note"],
    "pgic": ["patient_id", "condition", "episode", "answered_at", "score", "entered_by", "session_date", "technique",
             "session_entry"],
    "psfs": ["patient_id", "condition", "episode", "position", "activity", "named_at", "named_by", "rated_at",
             "score", "rated_by"],
}
REQUIRED = {
    "diary": {"patient_id", "session_date", "technique", "window_h", "recorded_at", "soreness"},
    "pgic": {"patient_id", "episode", "answered_at", "score", "entered_by"},
    "psfs": {"patient_id", "episode", "position", "activity", "named_at", "named_by"},
}
KINDS = tuple(COLUMNS)  # also the names of their .xlsx sheets
WHAT = {"diary": "diary entries", "pgic": "PGIC answers", "psfs": "PSFS activities and ratings"}
_DIGITS = re.compile(r"^\d{1,9}$")
SessionKey = tuple[str, str, str, int]  # patient, ISO date, technique, entry order among those


# -- the rows, checked --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiaryRow:
    line: int
    session: SessionKey
    window_h: int
    recorded_at: datetime
    soreness: int
    effects: tuple[tuple[str, str], ...]
    note: str


@dataclass(frozen=True)
class PgicRow:
    line: int
    episode: tuple[str, str | None, int]  # patient, condition, number
    answered_at: datetime
    score: int
    entered_by: str
    session: SessionKey | None  # the session the answer preceded, if any


@dataclass(frozen=True)
class PsfsRow:
    line: int
    episode: tuple[str, str | None, int]
    position: int
    activity: str
    named_at: datetime
    named_by: str
    rated_at: datetime | None  # None: the activity is named and not rated yet
    score: int | None
    rated_by: str | None


def moment_text(moment: datetime) -> str:
    """Return a time as its cell: ISO 8601 in UTC with a Z (`2025-03-02T18:30:00Z`, microseconds only if any)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(tzinfo=None).isoformat() + "Z"


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text):
        raise ValueError(f"'{text}' is not a time: write it as 2025-03-02T18:30:00Z (UTC) or with an offset such as "
                         "+01:00")
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)  # no offset: UTC
    if moment > datetime.now(UTC):
        raise ValueError(f"'{text}' is in the future")
    return moment


def _date(text: str) -> str:
    if DAY_FIRST_DATE.match(text):
        raise ValueError(f"'{text}' is not YYYY-MM-DD; day-first dates are not guessed, write e.g. 2025-01-31")
    try:
        if not ISO_DATE.match(text):
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"'{text}' is not a date YYYY-MM-DD") from None


def _whole(text: str, low: int, high: int) -> int:
    if not _DIGITS.match(text) or not low <= int(text) <= high:
        raise ValueError(f"'{text}' is not a whole number from {low} to {high}")
    return int(text)


def _one_of(text: str, values) -> str:
    if text not in values:
        raise ValueError(f"'{text}' is not one of {', '.join(map(str, values))}")
    return text


def _text(text: str, maximum: int) -> str:
    problem = unstorable(text) or longer_than(text, maximum)
    if problem:
        raise ValueError(problem)
    return text


def _patient(text: str) -> str:
    if not re.match(PATIENT_ID_PATTERN, text):
        raise ValueError(f"'{text}' is not a patient id: 1–64 letters, digits, '-' or '_'")
    return text


def _effects(text: str) -> tuple[tuple[str, str], ...]:
    pairs = side_effects.parse(text)
    for code, severity in pairs:
        if code not in PATIENT_EFFECT_CODES:
            raise ValueError(f"'{code}' is not on the patient's checklist ({', '.join(PATIENT_EFFECT_CODES)})")
        if severity not in SEVERITIES:
            raise ValueError(f"'{severity}' is not a severity ({', '.join(SEVERITIES)})")
    codes = [code for code, _ in pairs]
    if len(set(codes)) != len(codes):
        raise ValueError("each side effect once, at its worst severity")
    return tuple(sorted(pairs, key=lambda pair: PATIENT_EFFECT_CODES.index(pair[0])))


_PARSERS = {
    "patient_id": _patient,
    "session_date": _date,
    "technique": lambda t: _one_of(t, TECHNIQUES),
    "session_entry": lambda t: _whole(t, 1, 99),
    "window_h": lambda t: int(_one_of(t, [str(window) for window in DIARY_WINDOWS])),
    "soreness": lambda t: _whole(t, SORENESS_MIN, SORENESS_MAX),
    "recorded_at": _moment, "answered_at": _moment, "named_at": _moment,
    "rated_at": _moment,
    "side_effects": _effects,
    "note": lambda t: _text(t, NOTE_MAX),
    "condition": lambda t: t,
    "episode": lambda t: episode_number(t, MAX_EPISODE),
    "entered_by": lambda t: _one_of(t, ENTERED_BY), "named_by": lambda t: _one_of(t, ENTERED_BY),
    "rated_by": lambda t: _one_of(t, ENTERED_BY),
    "position": lambda t: _whole(t, 1, PSFS_MAX_ACTIVITIES),
    "activity": lambda t: _text(t, ACTIVITY_MAX),
}
_EMPTY = {"session_entry": 1, "note": "", "side_effects": ()}  # an empty optional cell; any other: None
_SCORES = {"diary": (SORENESS_MIN, SORENESS_MAX), "pgic": (PGIC_MIN, PGIC_MAX), "psfs": (PSFS_MIN, PSFS_MAX)}


def validate(kind: str, table: pd.DataFrame, *, sheet: str | None = None) -> list:
    """Return the rows of one table (`diary`, `pgic` or `psfs`) checked, or raise ImportRefused naming every bad
    cell by row and column (`soreness (sheet diary)` when `sheet` is given). Nothing is read from the database."""
    where = (lambda name: f"{name} (sheet {sheet})") if sheet else (lambda name: name)
    table = table.rename(columns=lambda c: str(c).strip().lower())
    problems = [RowProblem(1, where(name), name, f"unknown column; a {kind} file has {', '.join(COLUMNS[kind])}")
                for name in table.columns if name not in COLUMNS[kind]]
    problems += [RowProblem(1, where(name), "", "required column is missing")
                 for name in sorted(REQUIRED[kind] - set(table.columns))]
    if problems:
        raise ImportRefused(problems)
    lines = table.attrs.get("rows")
    lines = list(lines) if lines is not None and len(lines) == len(table) else list(range(2, len(table) + 2))
    low, high = _SCORES[kind]
    rows, keys = [], {}
    for line, record in zip(lines, table.to_dict("records"), strict=True):
        texts = {name: cell(record.get(name)) for name in COLUMNS[kind]}
        values, bad = {}, []
        for name, text in texts.items():
            if name in REQUIRED[kind] and not text:
                bad.append(RowProblem(line, where(name), "", "is required"))
                continue
            if not text:
                values[name] = _EMPTY.get(name)
                continue
            try:
                values[name] = _whole(text, low, high) if name == "score" else _PARSERS[name](text)
            except ValueError as error:
                bad.append(RowProblem(line, where(name), text[:80], str(error)))
        if not bad:
            row, bad = _row(kind, line, values, where)
        if bad:
            problems += bad
            continue
        key = _key(row)
        if key in keys:
            problems.append(RowProblem(line, where(_KEY_COLUMN[kind]), texts[_KEY_COLUMN[kind]],
                                       f"the same record as row {keys[key]}: each {kind} record once"))
        keys.setdefault(key, line)
        rows.append(row)
    if kind == "psfs":
        problems += _activity_conflicts(rows, where)
    if problems:
        raise ImportRefused(sorted(problems, key=lambda p: p.row))
    return rows


_KEY_COLUMN = {"diary": "window_h", "pgic": "answered_at", "psfs": "rated_at"}


def _row(kind: str, line: int, v: dict, where) -> tuple[object, list[RowProblem]]:
    """Return a row's values as its record, or the problems between its cells."""
    if kind == "diary":
        if any(code == "other" for code, _ in v["side_effects"]) and not v["note"]:
            return None, [RowProblem(line, where("note"), "", "say in the note what the other side effect was")]
        return DiaryRow(line, _session(v), v["window_h"], v["recorded_at"], v["soreness"],
                        v["side_effects"], v["note"]), []
    episode = (v["patient_id"], v["condition"], v["episode"])
    if kind == "pgic":
        given = [name for name in ("session_date", "technique") if v[name] is not None]
        if len(given) == 1:
            missing = ({"session_date", "technique"} - set(given)).pop()
            return None, [RowProblem(line, where(missing), "", "the session an answer preceded needs its date and "
                                                              "technique (or neither)")]
        return PgicRow(line, episode, v["answered_at"], v["score"], v["entered_by"],
                       _session(v) if given else None), []
    rated = [v["rated_at"] is not None, v["score"] is not None, v["rated_by"] is not None]
    if any(rated) and not all(rated):
        missing = [n for n, given in zip(("rated_at", "score", "rated_by"), rated, strict=True) if not given][0]
        return None, [RowProblem(line, where(missing), "", "a rating needs its time, score and who entered it "
                                                          "(all three empty: the activity is not rated yet)")]
    return PsfsRow(line, episode, v["position"], v["activity"], v["named_at"], v["named_by"], v["rated_at"],
                   v["score"], v["rated_by"]), []


def _session(v: dict) -> SessionKey:
    return (v["patient_id"], v["session_date"], v["technique"], v["session_entry"])


def _key(row) -> tuple:
    if isinstance(row, DiaryRow):
        return (row.session, row.window_h)
    if isinstance(row, PgicRow):
        return (row.episode, row.answered_at)
    return (row.episode, row.position, row.rated_at)


def _activity_conflicts(rows: list[PsfsRow], where) -> list[RowProblem]:
    """Return a problem for every row that names an activity otherwise than the first row of the same one."""
    first: dict[tuple, PsfsRow] = {}
    problems = []
    for row in rows:
        seen = first.setdefault((row.episode, row.position), row)
        for name in ("activity", "named_at", "named_by"):
            if getattr(row, name) != getattr(seen, name):
                problems.append(RowProblem(row.line, where(name), str(getattr(row, name))[:80],
                                           f"row {seen.line} gives this activity's {name} otherwise"))
    return problems


# -- export --------------------------------------------------------------------------------------------------------


def session_keys(session: Session, patients: set[str] | None = None) -> dict[int, SessionKey]:
    """Return every live session's key (patient, ISO date, technique, entry order), by session id, as the session
    interchange identifies it (`db.interchange.identity_keys`); only of `patients` when given."""
    stmt = (select(TreatmentSession.id, Patient.pseudonym, TreatmentSession.session_date, TreatmentSession.technique)
            .join(Episode, Episode.id == TreatmentSession.episode_id).join(Patient, Patient.id == Episode.patient_id)
            .where(TreatmentSession.deleted_at.is_(None)))
    stmt = stmt.order_by(Patient.pseudonym, TreatmentSession.session_date, TreatmentSession.id)
    found = session.execute(stmt).all() if patients is None else [  # a patient's sessions all in one IN list
        row for chunk in bulk.chunks(sorted(patients)) for row in session.execute(stmt.where(
            Patient.pseudonym.in_(chunk)))]
    keys = identity_keys((p, d.isoformat(), t) for _, p, d, t in found)
    return {row[0]: key for row, key in zip(found, keys, strict=True)}


def report_tables(session: Session, *, actor: Actor) -> dict[str, pd.DataFrame]:
    """Return every patient's reports as the three tables of text cells, sorted by their keys (not audited: the
    export that writes them is)."""
    require_role(actor, IDENTIFIED_READERS, "read every patient's reports")
    keys = session_keys(session)
    episodes = {e.id: (p, e.condition, e.number) for e, p in session.execute(
        select(Episode, Patient.pseudonym).join(Patient, Patient.id == Episode.patient_id))}
    effects: dict[int, list] = {}
    for entry_id, code, severity in session.execute(
            select(PatientSideEffect.entry_id, PatientSideEffect.code, PatientSideEffect.severity)):
        effects.setdefault(entry_id, []).append((code, severity))
    diary = [[*map(str, keys[e.session_id]), str(e.window_h), moment_text(e.recorded_at), str(e.soreness),
              side_effects.format(sorted(effects.get(e.id, []), key=lambda p: PATIENT_EFFECT_CODES.index(p[0]))),
              e.note] for e in session.scalars(select(DiaryEntry)) if e.session_id in keys]
    pgic = []
    for a in session.scalars(select(PgicResponse)):
        before = keys.get(a.before_session_id)
        patient, condition, number = episodes[a.episode_id]
        pgic.append([patient, condition or "", str(number), moment_text(a.answered_at), str(a.score), a.entered_by,
                     *((before[1], before[2], str(before[3])) if before else ("", "", ""))])
    psfs = []
    ratings: dict[int, list[PsfsRating]] = {}
    for rating in session.scalars(select(PsfsRating)):
        ratings.setdefault(rating.activity_id, []).append(rating)
    for activity in session.scalars(select(PsfsActivity)):
        patient, condition, number = episodes[activity.episode_id]
        named = [patient, condition or "", str(number), str(activity.position), activity.name,
                 moment_text(activity.named_at), activity.entered_by]
        psfs += [named + [moment_text(r.rated_at), str(r.score), r.entered_by]
                 for r in ratings.get(activity.id, [])] or [named + ["", "", ""]]
    return sorted_tables({"diary": diary, "pgic": pgic, "psfs": psfs})


_SORT_KEYS = {"diary": [0, 1, 2, 3, 4], "pgic": [0, 1, 2, 3], "psfs": [0, 1, 2, 3, 7]}  # positions in COLUMNS


def sorted_tables(rows: dict[str, list[list[str]]]) -> dict[str, pd.DataFrame]:
    """Return each kind's rows of text cells as its table, sorted by its keys (numbers as numbers): the order an
    export writes, which the sample files (sample_data/diaries.py) share."""
    tables = {}
    for kind, table in rows.items():
        table.sort(key=lambda r, k=_SORT_KEYS[kind]: [int(r[i]) if r[i].isdigit() else r[i] for i in k])
        tables[kind] = pd.DataFrame(table, columns=COLUMNS[kind], dtype=object)
    return tables


def export_tables(session: Session, *, actor: Actor, purpose: str = "") -> dict[str, pd.DataFrame]:
    """Return the three tables (`report_tables`) and audit their export once; `purpose` names the file format."""
    tables = report_tables(session, actor=actor)
    counts = ", ".join(f"{len(table)} {kind} rows" for kind, table in tables.items())
    detail = f"{purpose + ': ' if purpose else ''}patient reports: {counts}"
    audit.record(session, actor, "export", "file", detail=detail)
    return tables
