"""What an import of validated sessions would do, read from the database before anything is written.

The database is read in a few queries per thousands of patients; each row of the file is then classified in
Python as new, changed, unchanged, deleted in the app or in conflict with a correction made in the app.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from clinic import side_effects
from clinic.vocabulary import condition_words
from db import bulk, episodes, patient_search
from db.fields import SESSION_FIELDS, keep_absent, stored_columns
from db.file_problems import ImportRefused, RowProblem
from db.file_validation import ValidRows
from db.import_result import FIRST_EPISODE, NUMBERED_IN_FILE, FieldChange, ImportResult, NewBaseline, NewEpisode
from db.interchange import STRICTA_COLUMNS, cell_text, identity_keys
from db.models import AuditEvent, Episode, SideEffect, TreatmentSession, User
from db.writes import not_a_clinician

TakeFileValues = bool | Collection[int]  # True: every conflict; or the session ids whose file values win
_NEW = object()  # the id of a patient, episode or clinician that the import has yet to create
# Read as Core rows, unpacked by position: a re-import reads every session of the file's patients.
_SESSIONS, _EPISODES = TreatmentSession.__table__, Episode.__table__


@dataclass
class Plan:
    """What the database holds for the file's patients, and what each row of the file is to do."""

    rows: ValidRows  # the file's validated sessions
    stored: dict[str, list]  # each row's values as a session stores them (`db.fields.stored_columns`)
    patients: dict[str, int]  # pseudonym -> id, existing patients
    episodes: dict[tuple, dict]  # (patient pseudonym, condition, number) -> {"id", "body_region"}, existing ones
    row_episodes: list[tuple]  # each row's episode, as such a key (an unwritten row's may be None)
    users: dict[str, int]  # username -> id
    live: dict[int, dict]  # session id -> stored values, every live session of the file's patients
    new: list[int]  # the rows to insert, by position
    updates: list[tuple[int, dict]]  # (row, its stored session) for the rows that change a stored session
    result: ImportResult


def plan(session: Session, rows: ValidRows, take_file_values: TakeFileValues = False,
         gap_days: int | None = None) -> Plan:
    """Read what the file's patients already have and decide, row by row, what the import does. No writes.

    Each row's episode of care is the one its `episode` cell numbers, else its stored session's, else the one
    `db.episodes`' rule gives, with `gap_days` (by default the configured one) as the long gap.
    Raises ImportRefused when a `patient_id` cell is another patient's id in other capitals, a `clinician` cell
    names an account of another role, or an `episode` cell a discharged episode that a session after its discharge
    would extend.
    """
    columns, lines = rows.columns, rows.lines
    pseudonyms = list(dict.fromkeys(columns["patient_id"]))
    patients = _stored_patients(session, pseudonyms, columns["patient_id"], lines)
    by_id = {patient_id: pseudonym for pseudonym, patient_id in patients.items()}
    stored: dict[tuple, dict] = {}
    key_of: dict[int, tuple] = {}  # episode id -> its key
    existing: dict[tuple, dict] = {}
    live: dict[int, dict] = {}
    for chunk in bulk.chunks(list(by_id)):
        found = session.execute(
            select(Episode.id, Episode.patient_id, Episode.condition, Episode.number, Episode.body_region,
                   Episode.discharged_on, Episode.status)
            .where(Episode.patient_id.in_(chunk))
        )
        for row in found:
            key = key_of[row.id] = (by_id[row.patient_id], row.condition, row.number)
            stored[key] = {"id": row.id, "body_region": row.body_region, "discharged_on": row.discharged_on,
                           "status": row.status}
        _read_sessions(session, chunk, by_id, existing, live)
    accounts = session.execute(select(User.username, User.id, User.role)).all()
    users = {username: user_id for username, user_id, _ in accounts}
    _refuse_other_roles(columns["clinician"], lines, {username: role for username, _, role in accounts})
    result = ImportResult()
    result.new_clinicians = list(dict.fromkeys(c for c in columns["clinician"] if c and c not in users))
    result.new_patients = len(pseudonyms) - len(patients)
    values = stored_columns(columns)
    if existing:
        keys = identity_keys(zip(columns["patient_id"], columns["session_date"], columns["technique"], strict=True))
        matched = [existing.get(key) for key in keys]
    else:  # none of the file's patients has a session yet: every row is new
        matched = [None] * len(rows)
    keep_absent(values, rows.absent, matched)
    placed = _place(rows, matched, stored, key_of, live, episodes.gap_days(gap_days))
    new, changed = [], []
    for index, current in enumerate(matched):
        if current is None:
            new.append(index)
        elif current["deleted"]:
            result.deleted += 1
        else:
            episode = stored.get(placed.keys[index])
            clinician = columns["clinician"][index]
            if (
                any(current[name] != values[name][index] for name in SESSION_FIELDS)
                or current["episode_id"] != (episode["id"] if episode else _NEW)
                or current["clinician_id"] != (users.get(clinician, _NEW) if clinician else None)
                or current["side_effects"] != columns["side_effects"][index]
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
        result.changes += _field_changes(columns, values, placed.keys, index, lines[index], current, key_of, names,
                                         conflict, applied)
        if applied:
            updates.append((index, current))
        else:
            result.conflicts += 1
    result.inserted, result.updated = len(new), len(updates)
    written = {placed.keys[i] for i in new} | {placed.keys[i] for i, _ in updates}
    result.new_episodes = sorted((e for key, e in placed.new.items() if key in written), key=lambda e: e.row)
    result.new_baselines = _new_baselines(rows, new, placed.keys, live, key_of)
    return Plan(rows, values, patients, stored, placed.keys, users, live, new, updates, result)


def _stored_patients(session: Session, pseudonyms: list[str], cells: list[str], lines: list[int]) -> dict[str, int]:
    """Return the id of each of `pseudonyms` already stored, by pseudonym.

    Raises ImportRefused for every row whose patient id is another's in other capitals: a stored patient's ("p0002"
    for "P0002"), or one written earlier in the file. Imported, it would split one person's record in two; the
    search and *Record session* take such ids for one patient.
    """
    patients: dict[str, int] = {}
    spelt: dict[str, str] = {}  # an id lower-cased -> its stored spelling, else its first in the file
    for chunk in bulk.chunks(pseudonyms):
        wanted = set(chunk)
        for pseudonym, patient_id in patient_search.in_any_capitals(session, chunk):
            spelt.setdefault(pseudonym.lower(), pseudonym)
            if pseudonym in wanted:
                patients[pseudonym] = patient_id
    stored = set(spelt.values())
    for pseudonym in pseudonyms:
        spelt.setdefault(pseudonym.lower(), pseudonym)
    problems = []
    for line, pseudonym in zip(lines, cells, strict=True):
        other = spelt[pseudonym.lower()]
        if other != pseudonym and pseudonym not in patients:
            whose = "a stored patient's" if other in stored else "an earlier row's"
            problems.append(RowProblem(line, "patient_id", pseudonym,
                                       f"{pseudonym} is {whose} id {other} in other capitals: write {other}"))
    if problems:
        raise ImportRefused(problems)
    return patients


@dataclass
class _Placed:
    """Each row's episode key, and the episodes of care the rows start (by key)."""

    keys: list[tuple | None]
    new: dict[tuple, NewEpisode]


def _place(rows: ValidRows, matched: list[dict | None], stored: dict[tuple, dict], key_of: dict[int, tuple],
           live: dict[int, dict], gap: int) -> _Placed:
    """Return the episode of care of every row that may be written (see `plan`); ImportRefused when an `episode`
    cell would extend a discharged episode past its discharge.

    Rows with a number, or a stored session of the same condition, are placed first; then the rest of each patient
    and condition in date (then file) order, each by the rule against the episodes and sessions placed so far.
    """
    columns, lines = rows.columns, rows.lines
    patients, conditions, days = columns["patient_id"], columns["condition"], columns["session_date"]
    last: dict[tuple, date] = {}  # the latest session date of each episode, stored or placed
    for current in live.values():
        key = key_of[current["episode_id"]]
        last[key] = max(last.get(key, current["session_date"]), current["session_date"])
    latest: dict[tuple, int] = {}  # (patient, condition) -> its highest episode number
    for patient, condition, number in stored:
        latest[(patient, condition)] = max(latest.get((patient, condition), 0), number)
    placed = _Placed([None] * len(matched), {})
    waiting, problems = [], []

    def place(index: int, key: tuple, reason: str) -> None:
        placed.keys[index] = key
        if key not in stored and key not in placed.new:
            placed.new[key] = NewEpisode(lines[index], key[0], key[1], key[2], reason)
        course = key[:2]
        latest[course] = max(latest.get(course, 0), key[2])
        last[key] = max(last.get(key, days[index]), days[index])

    for index, (current, number) in enumerate(zip(matched, rows.episodes, strict=True)):
        if current is not None and current["deleted"]:
            continue  # left deleted: written nowhere
        own = key_of[current["episode_id"]] if current is not None else None
        if number is not None:
            key = (patients[index], conditions[index], number)
            discharged = stored.get(key, {}).get("discharged_on")
            if key != own and discharged is not None and days[index] > discharged:
                problems.append(RowProblem(lines[index], "episode", str(number), (
                    f"episode {number} of {patients[index]} ({condition_words(conditions[index])}) was "
                    f"discharged on {discharged}; a session on {days[index]} after it would extend it: leave the "
                    "cell empty to start a new episode, or give the next number")))
            place(index, key, NUMBERED_IN_FILE)
        elif own is not None and own[1] == conditions[index]:
            place(index, own, "")  # stays where it is: a stored episode, never a new one
        else:
            waiting.append(index)
    if problems:
        raise ImportRefused(problems)
    for index in sorted(waiting, key=lambda i: (patients[i], conditions[i] or "", days[i], i)):
        course = (patients[index], conditions[index])
        number = latest.get(course)
        if number is None:
            place(index, (*course, 1), FIRST_EPISODE)
            continue
        key = (*course, number)
        episode = stored.get(key, {})
        asked = episodes.question(
            episodes.Course(number, last.get(key), episode.get("discharged_on"), episode.get("status")),
            days[index], gap, course[1])
        place(index, (*course, number + 1) if asked else key, asked.reason() if asked else "")
    return placed


def _new_baselines(rows: ValidRows, new: list[int], keys: list[tuple | None], live: dict[int, dict],
                   key_of: dict[int, tuple]) -> list[NewBaseline]:
    """Return the stored episodes whose first live session comes after a new row of theirs, by the earliest such
    row: it becomes the episode's session 1 and baseline (`db.episodes` asks first when it is recorded in the app)."""
    first: dict[tuple, date] = {}
    for current in live.values():
        key = key_of[current["episode_id"]]
        first[key] = min(first.get(key, current["session_date"]), current["session_date"])
    days, lines = rows.columns["session_date"], rows.lines
    earliest: dict[tuple, int] = {}
    for index in new:  # in file order: of the rows on the earliest date, the first is session 1
        key = keys[index]
        if key in first and days[index] < first[key] and (key not in earliest or days[index] < days[earliest[key]]):
            earliest[key] = index
    return sorted((NewBaseline(lines[i], *key, first[key]) for key, i in earliest.items()), key=lambda b: b.row)


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


def _field_changes(rows: dict[str, list], stored: dict[str, list], placed: list[tuple | None], index: int, line: int,
                   current: dict, key_of: dict[int, tuple], names: dict[int, str], conflict: bool,
                   applied: bool) -> list[FieldChange]:
    """Return each field that row `index` of the file changes in its stored session, as interchange text."""
    pairs = {name: (current[name], stored[name][index]) for name in SESSION_FIELDS if name != "session_date"}
    _, condition, number = key_of[current["episode_id"]]
    pairs["condition"] = (condition, rows["condition"][index])
    pairs["episode"] = (number, placed[index][2])
    pairs["clinician"] = (names.get(current["clinician_id"]), rows["clinician"][index])
    pairs["side_effects"] = (side_effects.format(current["side_effects"]),
                             side_effects.format(rows["side_effects"][index]))
    patient, day = rows["patient_id"][index], rows["session_date"][index].isoformat()
    return [FieldChange(line, patient, day, name, cell_text(name, old), cell_text(name, new), current["session_id"],
                        conflict, applied)
            for name in _CHANGE_ORDER if (old := pairs[name][0]) != (new := pairs[name][1])
            and cell_text(name, old) != cell_text(name, new)]


# Fields in the interchange format's column order; the date and technique identify a session, so never change.
_CHANGE_ORDER = ("pain_scale", "pain_before", "pain_after", "side_effects", "condition", "clinician",
                 "twitch_response", "notes", "muscles", "technique", "episode", *STRICTA_COLUMNS)


_READ = ("session_id", "episode_id", "clinician_id", "session_number", "deleted_at", "patient_id", *SESSION_FIELDS)


def _read_sessions(session: Session, patient_ids: list[int], by_id: dict[int, str], existing: dict, live: dict):
    """Add the sessions of these patients to `existing` (by identity key) and the live ones to `live` (by id)."""
    connection = session.connection()
    sessions, episodes = _SESSIONS.c, _EPISODES.c
    rows = connection.execute(
        select(sessions.id, sessions.episode_id, sessions.clinician_id, sessions.session_number, sessions.deleted_at,
               episodes.patient_id, *(sessions[name] for name in SESSION_FIELDS))
        .join(_EPISODES, episodes.id == sessions.episode_id)
        .where(episodes.patient_id.in_(patient_ids))
        .order_by(episodes.patient_id, sessions.session_date, sessions.id)
    ).all()
    effects: dict[int, list[side_effects.Pair]] = {}
    effect_rows = connection.execute(
        select(SideEffect.session_id, SideEffect.code, SideEffect.severity)
        .join(_SESSIONS, sessions.id == SideEffect.session_id)
        .join(_EPISODES, episodes.id == sessions.episode_id)
        .where(episodes.patient_id.in_(patient_ids))
        .order_by(SideEffect.session_id, SideEffect.id)
    )
    for session_id, code, severity in effect_rows:
        effects.setdefault(session_id, []).append((code, severity))
    date_at, technique_at = _READ.index("session_date"), _READ.index("technique")
    keys = identity_keys((by_id[r[5]], r[date_at], r[technique_at]) for r in rows)
    for key, row in zip(keys, rows, strict=True):
        current = dict(zip(_READ, row, strict=True))
        current["deleted"] = current.pop("deleted_at") is not None
        current["side_effects"] = effects.get(current["session_id"], [])
        existing[key] = current
        if not current["deleted"]:
            live[current["session_id"]] = current
