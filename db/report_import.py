"""Import checked patient-reported rows (`db.report_exchange.validate`) in the caller's one transaction: all or none.

A row names its session or episode of care as the file identifies it; one the database does not hold refuses the
file, naming the row and column. A record already stored with the same values is left alone, so importing a file
twice changes nothing; a record stored with other values is refused, never overwritten: patients' entries are
changed only by the patient (db/patient_reports.py). Every new record is audited, with the import itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import Session

from clinic import side_effects
from db import audit, bulk
from db.access import CLINICAL_WRITERS, Actor, require_role
from db.file_problems import ImportRefused, RowProblem
from db.models import Episode, Patient, TreatmentSession
from db.report_exchange import KINDS, WHAT, DiaryRow, PgicRow, PsfsRow, session_keys
from db.report_models import DiaryEntry, PatientSideEffect, PgicResponse, PsfsActivity, PsfsRating


@dataclass
class ReportImportResult:
    """How many records of each table an import inserted, and how many it found stored already."""

    inserted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def summary(self) -> str:
        parts = [f"{WHAT[kind]}: {self.inserted[kind]} new, {self.unchanged[kind]} unchanged"
                 for kind in KINDS if self.inserted[kind] or self.unchanged[kind]]
        return "; ".join(parts) or "no patient reports"


def _rows_in(session: Session, stmt, column, values) -> list:
    """Return the rows of `stmt` whose `column` is one of `values`, read an IN list at a time."""
    return [row for chunk in bulk.chunks(sorted(values)) for row in session.execute(stmt.where(column.in_(chunk)))]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Where:
    """Names a row's column in a problem: `soreness`, or `soreness (sheet diary)` in a workbook."""

    def __init__(self, sheets: bool):
        self.sheets = sheets

    def __call__(self, kind: str, name: str) -> str:
        return f"{name} (sheet {kind})" if self.sheets else name


def import_reports(session: Session, *, actor: Actor, rows: dict[str, list], source: str = "",
                   sheets: bool = False) -> ReportImportResult:
    """Write the checked rows of each table (`diary`, `pgic`, `psfs`) in the caller's transaction; raise
    ImportRefused, with nothing written, when a row names what the database does not hold or contradicts a stored
    record. Diary entries are written by an admin only (clinicians never write a patient's diary); PGIC and PSFS by
    clinicians and admins, as on the patient's behalf. `sheets`: name columns with their sheet, for a workbook."""
    require_role(actor, CLINICAL_WRITERS, "import patient reports")
    if rows.get("diary"):
        require_role(actor, ("admin",), "import diary entries (a patient's diary is theirs; clinicians annotate it)")
    where = _Where(sheets)
    result = ReportImportResult()
    patients = {row.session[0] if isinstance(row, DiaryRow) else row.episode[0] for table in rows.values()
                for row in table}
    patients |= {row.session[0] for row in rows.get("pgic", ()) if row.session}
    ids = dict(_rows_in(session, select(Patient.pseudonym, Patient.id), Patient.pseudonym, patients))
    sessions = {key: sid for sid, key in session_keys(session, set(ids)).items()} if ids else {}
    episodes = {(pseudonym, e.condition, e.number): e.id for e, pseudonym in _rows_in(
        session, select(Episode, Patient.pseudonym).join(Patient, Patient.id == Episode.patient_id),
        Patient.pseudonym, ids)}
    problems: list[RowProblem] = []
    plans = {
        "diary": _diary(session, rows.get("diary", []), ids, sessions, problems, where),
        "pgic": _pgic(session, rows.get("pgic", []), episodes, sessions, problems, where),
        "psfs": _psfs(session, rows.get("psfs", []), episodes, problems, where),
    }
    if problems:
        raise ImportRefused(sorted(problems, key=lambda p: p.row))
    pseudonyms = {patient_id: pseudonym for pseudonym, patient_id in ids.items()}
    for kind, (new, unchanged) in plans.items():
        for write in new:
            write(session, actor, source, pseudonyms)
        result.unchanged[kind], result.inserted[kind] = unchanged, len(rows.get(kind, ())) - unchanged
    audit.record(session, actor, "import", "file", detail=f"{source}: patient reports: {result.summary()}")
    return result


def _missing_session(row, kind, where) -> RowProblem:
    patient, day, technique, entry = row.session
    nth = f" (session {entry} of that day and technique)" if entry > 1 else ""
    return RowProblem(row.line, where(kind, "session_date"), day,
                      f"no session of {patient} on {day} with technique {technique}{nth}: import the sessions first")


def _diary(session: Session, rows: list[DiaryRow], ids, sessions, problems, where) -> tuple[list, int]:
    found = [sessions.get(row.session) for row in rows]
    stored = {(e.session_id, e.window_h): e for (e,) in _rows_in(
        session, select(DiaryEntry), DiaryEntry.session_id, {s for s in found if s})}
    effects: dict[int, set] = {}
    for entry_id, code, severity in _rows_in(
            session, select(PatientSideEffect.entry_id, PatientSideEffect.code, PatientSideEffect.severity),
            PatientSideEffect.entry_id, [e.id for e in stored.values()]):
        effects.setdefault(entry_id, set()).add((code, severity))
    new, unchanged = [], 0
    for row, session_id in zip(rows, found, strict=True):
        if session_id is None:
            problems.append(_missing_session(row, "diary", where))
            continue
        entry = stored.get((session_id, row.window_h))
        if entry is None:
            new.append((row, session_id, ids[row.session[0]]))
            continue
        held = {"recorded_at": _utc(entry.recorded_at), "soreness": entry.soreness, "note": entry.note,
                "side_effects": effects.get(entry.id, set())}
        given = {"recorded_at": row.recorded_at, "soreness": row.soreness, "note": row.note,
                 "side_effects": set(row.effects)}
        differs = [name for name in held if held[name] != given[name]]
        if differs:
            problems.append(RowProblem(row.line, where("diary", differs[0]), "", f"the stored {row.window_h} h entry "
                                       "of this session says otherwise; an import never changes a patient's entry"))
        else:
            unchanged += 1
    return ([_new_entries(new)] if new else []), unchanged


def _new_entries(new: list[tuple[DiaryRow, int, int]]):
    """Return the writer of new diary entries (row, session id, patient id): inserted together, each audited."""
    def write(session: Session, actor: Actor, source: str, pseudonyms: dict) -> None:
        entries = [DiaryEntry(session_id=session_id, patient_id=patient_id, window_h=row.window_h,
                              soreness=row.soreness, note=row.note, recorded_at=row.recorded_at, created_by=actor.id)
                   for row, session_id, patient_id in new]
        session.add_all(entries)
        session.flush()
        session.add_all(PatientSideEffect(entry_id=entry.id, code=c, severity=s)
                        for entry, (row, _, _) in zip(entries, new, strict=True) for c, s in row.effects)
        rows = [row for row, _, _ in new]
        audit.record_many(session, actor, "create", "diary_entry", [entry.id for entry in entries], {
            "session_id": [session_id for _, session_id, _ in new], "window_h": [row.window_h for row in rows],
            "soreness": [row.soreness for row in rows], "note": [row.note for row in rows],
            "side_effects": [side_effects.format(row.effects) for row in rows],
            "recorded_at": [row.recorded_at for row in rows],
        }, detail=f"import {source}", patients=[pseudonyms[patient_id] for _, _, patient_id in new])
    return write


def _episode(row, kind, episodes, problems, where) -> int | None:
    episode_id = episodes.get(row.episode)
    if episode_id is None:
        patient, condition, number = row.episode
        problems.append(RowProblem(row.line, where(kind, "episode"), str(number),
                                   f"{patient} has no episode {number} for {condition or 'no condition'}: import the "
                                   "sessions first"))
    return episode_id


def _pgic(session: Session, rows: list[PgicRow], episodes, sessions, problems, where) -> tuple[list, int]:
    wanted = {episodes.get(row.episode) for row in rows} - {None}
    stored = {(a.episode_id, _utc(a.answered_at)): a for (a,) in _rows_in(
        session, select(PgicResponse), PgicResponse.episode_id, wanted)}
    befores = {sessions.get(row.session) for row in rows if row.session} - {None}
    live = set(sessions.values())
    episode_of = dict(_rows_in(session, select(TreatmentSession.id, TreatmentSession.episode_id), TreatmentSession.id,
                               befores))
    new, unchanged = [], 0
    for row in rows:
        episode_id = _episode(row, "pgic", episodes, problems, where)
        before = sessions.get(row.session) if row.session else None
        if row.session and before is None:
            problems.append(_missing_session(row, "pgic", where))
            continue
        if episode_id is None:
            continue
        if before is not None and episode_of[before] != episode_id:
            problems.append(RowProblem(row.line, where("pgic", "session_date"), row.session[1],
                                       "this session is not of the row's episode of care"))
            continue
        answer = stored.get((episode_id, row.answered_at))
        if answer is None:
            new.append((row, episode_id, before))
        elif (answer.score, answer.entered_by, answer.before_session_id if answer.before_session_id in live else None
              ) != (row.score, row.entered_by, before):  # a deleted session is no longer named (nor exported)
            problems.append(RowProblem(row.line, where("pgic", "score"), str(row.score),
                                       "the answer stored for this episode and time says otherwise; an import "
                                       "never changes one"))
        else:
            unchanged += 1
    return ([_new_answers(new)] if new else []), unchanged


def _new_answers(new: list[tuple[PgicRow, int, int | None]]):
    """Return the writer of new PGIC answers (row, episode id, session before): inserted together, each audited."""
    def write(session: Session, actor: Actor, source: str, pseudonyms: dict) -> None:
        patient_of = dict(_rows_in(session, select(Episode.id, Episode.patient_id), Episode.id,
                                   {episode_id for _, episode_id, _ in new}))
        answers = [PgicResponse(patient_id=patient_of[episode_id], episode_id=episode_id, answered_at=row.answered_at,
                                score=row.score, before_session_id=before, recorded_by=actor.id,
                                entered_by=row.entered_by)
                   for row, episode_id, before in new]
        session.add_all(answers)
        session.flush()
        audit.record_many(session, actor, "create", "pgic", [answer.id for answer in answers], {
            "episode_id": [answer.episode_id for answer in answers], "score": [answer.score for answer in answers],
            "before_session_id": [answer.before_session_id for answer in answers],
            "entered_by": [answer.entered_by for answer in answers],
            "answered_at": [row.answered_at for row, _, _ in new],
        }, detail=f"import {source}", patients=[pseudonyms[answer.patient_id] for answer in answers])
    return write


def _psfs(session: Session, rows: list[PsfsRow], episodes, problems, where) -> tuple[list, int]:
    """Plan the activities the file names and the ratings it gives: one write per new activity (with its new
    ratings) and per new rating of a stored activity."""
    wanted = {episodes.get(row.episode) for row in rows} - {None}
    activities = {(a.episode_id, a.position): a for (a,) in _rows_in(
        session, select(PsfsActivity), PsfsActivity.episode_id, wanted)}
    ratings = {(r.activity_id, _utc(r.rated_at)): r for (r,) in _rows_in(
        session, select(PsfsRating), PsfsRating.activity_id, [a.id for a in activities.values()])}
    new, unchanged, planned = [], 0, {}
    for row in rows:
        episode_id = _episode(row, "psfs", episodes, problems, where)
        if episode_id is None:
            continue
        activity = activities.get((episode_id, row.position))
        if activity is not None:
            held = (activity.name, _utc(activity.named_at), activity.entered_by)
            if held != (row.activity, row.named_at, row.named_by):
                problems.append(RowProblem(row.line, where("psfs", "activity"), row.activity[:80],
                                           f"activity {row.position} of this episode is stored as '{activity.name}' "
                                           f"named {held[1]:%Y-%m-%d %H:%M} by the {held[2]}; an import never "
                                           "changes it"))
                continue
        key = (episode_id, row.position)
        if activity is None and key not in planned:
            planned[key] = _NewActivity(row, episode_id)
            new.append(planned[key])
        if row.rated_at is None:
            unchanged += activity is not None
            continue
        rating = ratings.get((activity.id, row.rated_at)) if activity is not None else None
        if rating is None:
            if activity is None:
                planned[key].ratings.append(row)
            else:
                new.append(_NewRatings(activity.id, episode_id, [row]))
        elif (rating.score, rating.entered_by) != (row.score, row.rated_by):
            problems.append(RowProblem(row.line, where("psfs", "score"), str(row.score),
                                       "the rating stored for this activity and time says otherwise; an import "
                                       "never changes one"))
        else:
            unchanged += 1
    return ([_psfs_writer(new)] if new else []), unchanged


class _NewRatings:
    """Ratings of one activity to write (a stored one, or that of a `_NewActivity`, written first)."""

    def __init__(self, activity_id: int | None, episode_id: int, rows: list[PsfsRow]):
        self.activity_id, self.episode_id, self.ratings = activity_id, episode_id, rows


class _NewActivity(_NewRatings):
    """A new activity with its ratings from the file."""

    def __init__(self, row: PsfsRow, episode_id: int):
        super().__init__(None, episode_id, [])
        self.row = row


def _psfs_writer(new: list[_NewRatings]):
    """Return the writer of new PSFS activities, then of every new rating: each table inserted together, each
    record audited."""
    def write(session: Session, actor: Actor, source: str, pseudonyms: dict) -> None:
        patient_of = dict(_rows_in(session, select(Episode.id, Episode.patient_id), Episode.id,
                                   {plan.episode_id for plan in new}))
        named = [plan for plan in new if isinstance(plan, _NewActivity)]
        activities = [PsfsActivity(episode_id=plan.episode_id, position=plan.row.position, name=plan.row.activity,
                                   named_at=plan.row.named_at, named_by=actor.id, entered_by=plan.row.named_by)
                      for plan in named]
        session.add_all(activities)
        session.flush()
        for plan, activity in zip(named, activities, strict=True):
            plan.activity_id = activity.id
        audit.record_many(session, actor, "create", "psfs_activity", [activity.id for activity in activities], {
            "episode_id": [a.episode_id for a in activities], "position": [a.position for a in activities],
            "name": [a.name for a in activities], "entered_by": [a.entered_by for a in activities],
            "named_at": [plan.row.named_at for plan in named],
        }, detail=f"import {source}", patients=[pseudonyms[patient_of[a.episode_id]] for a in activities])
        given = [(plan, row) for plan in new for row in plan.ratings]
        ratings = [PsfsRating(activity_id=plan.activity_id, rated_at=row.rated_at, score=row.score, rated_by=actor.id,
                              entered_by=row.rated_by) for plan, row in given]
        session.add_all(ratings)
        session.flush()
        audit.record_many(session, actor, "create", "psfs_rating", [rating.id for rating in ratings], {
            "activity_id": [r.activity_id for r in ratings], "score": [r.score for r in ratings],
            "entered_by": [r.entered_by for r in ratings], "rated_at": [row.rated_at for _, row in given],
        }, detail=f"import {source}", patients=[pseudonyms[patient_of[plan.episode_id]] for plan, _ in given])
    return write
