"""Scoped reads of what patients report (issue #17): what is due, one patient's reports, and the managers' inputs.

Each takes the caller's Session and the acting user, checks what the actor may read before reading, and returns
DataFrames (never ORM rows). A patient reads only their own reports; clinicians and admins any patient's; managers
none, only the aggregate inputs at the end (pseudonymous ids, no names, no notes). Times are aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import func, literal, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from clinic.patient_reports import (
    CORRECTION_HOURS,
    DIARY_CLOSES_H,
    PSFS_MAX_ACTIVITIES,
    PSFS_RATE_EVERY_DAYS,
    WINDOW_HOURS,
)
from db.access import AGGREGATE_READERS, Actor, require_patient, require_role
from db.frames import read_frame
from db.models import LIVE_SESSIONS, Episode, Patient, SideEffect, TreatmentSession, User
from db.report_models import (
    DiaryAnnotation,
    DiaryEntry,
    DiaryEntryVersion,
    PatientSideEffect,
    PgicResponse,
    PsfsActivity,
    PsfsRating,
)

S = TreatmentSession


def _adjuncts():
    """Return the sessions' `adjuncts` column (issue #16: codes joined by ';', 'none', or NULL: not recorded), or
    NULL for every session while the schema has no such column."""
    column = S.__table__.c.get("adjuncts")
    return (column if column is not None else literal(None)).label("adjuncts")


def session_moments(session_date: pd.Series, created_at: pd.Series) -> pd.Series:
    """Return when each session took place (db.patient_reports.session_moment, vectorised), aware UTC."""
    noon = pd.to_datetime(session_date).dt.tz_localize(UTC) + pd.Timedelta(hours=12)
    created = pd.to_datetime(created_at, utc=True)
    same_day = created.dt.date == pd.to_datetime(session_date).dt.date
    return created.where(same_day, noon)


def _hours(moment: pd.Series, since: pd.Series) -> pd.Series:
    return ((pd.to_datetime(moment, utc=True) - since).dt.total_seconds() / 3600).round(2)


# -- a patient's page: what is due ------------------------------------------------------------------------------------

DUE_COLUMNS = ["kind", "status", "episode_id", "session_id", "session_date", "technique", "window_h", "opens_at",
               "closes_at", "activity_id", "position", "activity"]


def due_entries(session: Session, *, actor: Actor, patient_id: int, now: datetime | None = None) -> pd.DataFrame:
    """Return what the patient should fill in now or soon, one row each (columns DUE_COLUMNS), diary first.

    - `kind` 'diary': each window of the patient's recent live sessions not yet filled and not closed; `status`
      'due' when it is open now, 'soon' when it opens later (`opens_at`, `closes_at`).
    - `kind` 'pgic': each open episode with sessions whose latest session has no PGIC answered after it: asked
      before the next session; `session_id` is that latest session.
    - `kind` 'psfs_activities': an open episode with fewer than three activities named and none rated yet (the
      start of the episode); `kind` 'psfs_rating': each activity never rated, or last rated PSFS_RATE_EVERY_DAYS ago.
    Windows, prompts and intervals: clinic.patient_reports.
    """
    require_patient(actor, patient_id)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rows: list[dict] = []
    oldest = (now - timedelta(hours=DIARY_CLOSES_H + 24)).date()
    sessions = read_frame(session, select(S.id.label("session_id"), S.episode_id, S.session_date, S.technique,
                                          S.created_at)
                          .join(Episode, Episode.id == S.episode_id)
                          .where(Episode.patient_id == patient_id, LIVE_SESSIONS, S.session_date >= oldest)
                          .order_by(S.session_date, S.id))
    filled = set(session.execute(select(DiaryEntry.session_id, DiaryEntry.window_h)
                                 .where(DiaryEntry.patient_id == patient_id)).all())
    if not sessions.empty:
        sessions["moment"] = session_moments(sessions["session_date"], sessions["created_at"])
    for row in sessions.itertuples(index=False):
        for window, (start, end) in WINDOW_HOURS.items():
            opens, closes = row.moment + pd.Timedelta(hours=start), row.moment + pd.Timedelta(hours=end)
            if (row.session_id, window) in filled or now >= closes:
                continue
            rows.append({"kind": "diary", "status": "due" if now >= opens else "soon", "episode_id": row.episode_id,
                         "session_id": row.session_id, "session_date": row.session_date, "technique": row.technique,
                         "window_h": window, "opens_at": opens.to_pydatetime(), "closes_at": closes.to_pydatetime()})
    rows += _pgic_due(session, patient_id)
    rows += _psfs_due(session, patient_id, now)
    frame = pd.DataFrame(rows, columns=DUE_COLUMNS)
    # Ids and numbers stay whole numbers where a kind has none (pandas would make them floats around the gaps).
    return frame.astype({name: "Int64" for name in ("episode_id", "session_id", "window_h", "activity_id",
                                                    "position")})


def _open_episodes_latest(session: Session, patient_id: int) -> pd.DataFrame:
    """Return the patient's open episodes with sessions: episode_id, the latest live session's id, date, created_at."""
    latest = (select(S.episode_id, func.max(S.session_number).label("number")).where(LIVE_SESSIONS)
              .group_by(S.episode_id).subquery())
    return read_frame(session, select(Episode.id.label("episode_id"), S.id.label("session_id"), S.session_date,
                                      S.created_at)
                      .join(latest, latest.c.episode_id == Episode.id)
                      .join(S, (S.episode_id == Episode.id) & (S.session_number == latest.c.number) & LIVE_SESSIONS)
                      .where(Episode.patient_id == patient_id, Episode.discharged_on.is_(None))
                      .order_by(Episode.id))


def _pgic_due(session: Session, patient_id: int) -> list[dict]:
    episodes = _open_episodes_latest(session, patient_id)
    if episodes.empty:
        return []
    episodes["moment"] = session_moments(episodes["session_date"], episodes["created_at"])
    answers = read_frame(session, select(PgicResponse.episode_id, func.max(PgicResponse.answered_at).label("last"))
                         .where(PgicResponse.patient_id == patient_id).group_by(PgicResponse.episode_id))
    last = dict(zip(answers["episode_id"], pd.to_datetime(answers["last"], utc=True), strict=True))
    return [{"kind": "pgic", "status": "due", "episode_id": row.episode_id, "session_id": row.session_id,
             "session_date": row.session_date}
            for row in episodes.itertuples(index=False)
            if row.episode_id not in last or last[row.episode_id] < row.moment]


def _psfs_due(session: Session, patient_id: int, now: datetime) -> list[dict]:
    episodes = _open_episodes_latest(session, patient_id)
    if episodes.empty:
        return []
    activities = read_frame(session, select(PsfsActivity.id.label("activity_id"), PsfsActivity.episode_id,
                                            PsfsActivity.position, PsfsActivity.name,
                                            func.max(PsfsRating.rated_at).label("last"))
                            .outerjoin(PsfsRating, PsfsRating.activity_id == PsfsActivity.id)
                            .where(PsfsActivity.episode_id.in_(list(episodes["episode_id"])))
                            .group_by(PsfsActivity.id, PsfsActivity.episode_id, PsfsActivity.position,
                                      PsfsActivity.name)
                            .order_by(PsfsActivity.episode_id, PsfsActivity.position))
    rows = []
    for episode_id in episodes["episode_id"]:
        own = activities[activities["episode_id"] == episode_id]
        if len(own) < PSFS_MAX_ACTIVITIES and own["last"].isna().all():
            rows.append({"kind": "psfs_activities", "status": "due", "episode_id": episode_id})
        for row in own.itertuples(index=False):
            last = pd.to_datetime(row.last, utc=True) if row.last is not None and pd.notna(row.last) else None
            if last is None or now - last >= timedelta(days=PSFS_RATE_EVERY_DAYS):
                rows.append({"kind": "psfs_rating", "status": "due", "episode_id": episode_id,
                             "activity_id": row.activity_id, "position": row.position, "activity": row.name})
    return rows


# -- one patient's reports --------------------------------------------------------------------------------------------


def patient_reports(session: Session, *, actor: Actor, patient_id: int) -> dict[str, pd.DataFrame]:
    """Return one patient's reports as frames: 'diary', 'effects', 'history', 'annotations', 'pgic',
    'psfs_activities', 'psfs_ratings' (columns below; ids link them). The patient reads their own; clinicians
    and admins any; a patient gets no annotations (clinicians' notes, like a session's notes)."""
    require_patient(actor, patient_id)
    creator = aliased(User, name="creator")
    diary = read_frame(session, select(
        DiaryEntry.id.label("entry_id"), DiaryEntry.session_id, S.episode_id, S.session_date, S.technique,
        S.created_at.label("session_created_at"), DiaryEntry.window_h, DiaryEntry.soreness, DiaryEntry.note,
        DiaryEntry.recorded_at, DiaryEntry.corrected_at, creator.username.label("recorded_by"))
        .join(S, S.id == DiaryEntry.session_id).outerjoin(creator, creator.id == DiaryEntry.created_by)
        .where(DiaryEntry.patient_id == patient_id, LIVE_SESSIONS)
        .order_by(S.session_date, S.id, DiaryEntry.window_h))
    moments = session_moments(diary["session_date"], diary["session_created_at"]) if len(diary) else pd.Series()
    diary["hours_after"] = _hours(diary["recorded_at"], moments) if len(diary) else pd.Series(dtype=float)
    diary["correctable_until"] = pd.to_datetime(diary["recorded_at"], utc=True) + pd.Timedelta(hours=CORRECTION_HOURS)
    diary = diary.drop(columns="session_created_at")
    entries = list(diary["entry_id"])
    effects = read_frame(session, select(
        PatientSideEffect.entry_id, PatientSideEffect.id.label("effect_id"), PatientSideEffect.code,
        PatientSideEffect.severity, PatientSideEffect.reviewed_at)
        .where(PatientSideEffect.entry_id.in_(entries)).order_by(PatientSideEffect.entry_id, PatientSideEffect.id))
    history = read_frame(session, select(
        DiaryEntryVersion.entry_id, DiaryEntryVersion.version, DiaryEntryVersion.soreness, DiaryEntryVersion.note,
        DiaryEntryVersion.side_effects, DiaryEntryVersion.valid_from, DiaryEntryVersion.replaced_at)
        .where(DiaryEntryVersion.entry_id.in_(entries)).order_by(DiaryEntryVersion.entry_id, DiaryEntryVersion.version))
    annotations = read_frame(session, select(
        DiaryAnnotation.entry_id, DiaryAnnotation.id.label("annotation_id"), User.username.label("author"),
        DiaryAnnotation.at, DiaryAnnotation.text)
        .outerjoin(User, User.id == DiaryAnnotation.author_id)
        .where(DiaryAnnotation.entry_id.in_(entries if actor.role != "patient" else []))
        .order_by(DiaryAnnotation.entry_id, DiaryAnnotation.id))
    pgic = read_frame(session, select(
        PgicResponse.id.label("pgic_id"), PgicResponse.episode_id, PgicResponse.answered_at, PgicResponse.score,
        PgicResponse.before_session_id, PgicResponse.entered_by, User.username.label("recorded_by"))
        .outerjoin(User, User.id == PgicResponse.recorded_by)
        .where(PgicResponse.patient_id == patient_id).order_by(PgicResponse.answered_at, PgicResponse.id))
    mine = select(Episode.id).where(Episode.patient_id == patient_id)
    activities = read_frame(session, select(
        PsfsActivity.id.label("activity_id"), PsfsActivity.episode_id, PsfsActivity.position, PsfsActivity.name,
        PsfsActivity.named_at, PsfsActivity.entered_by)
        .where(PsfsActivity.episode_id.in_(mine)).order_by(PsfsActivity.episode_id, PsfsActivity.position))
    ratings = read_frame(session, select(
        PsfsRating.id.label("rating_id"), PsfsRating.activity_id, PsfsActivity.episode_id, PsfsActivity.position,
        PsfsRating.rated_at, PsfsRating.score, PsfsRating.entered_by)
        .join(PsfsActivity, PsfsActivity.id == PsfsRating.activity_id)
        .where(PsfsActivity.episode_id.in_(mine)).order_by(PsfsRating.rated_at, PsfsRating.id))
    return {"diary": diary, "effects": effects, "history": history, "annotations": annotations, "pgic": pgic,
            "psfs_activities": activities, "psfs_ratings": ratings}


# -- the managers' aggregate inputs (pseudonymous ids only) -----------------------------------------------------------


def _episode_first():
    """Return a subquery: each episode's live first session (technique and adjuncts the episode is counted under)."""
    return (select(S.episode_id, S.technique, _adjuncts())
            .where(S.session_number == 1, LIVE_SESSIONS).subquery("episode_first"))


def diary_soreness(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return one row per diary entry of a live session: `entry_id, session_id, episode_id, patient_id`
    (pseudonym), `technique, adjuncts` (of the entry's session; adjuncts as stored: codes joined by ';', 'none',
    or None when not recorded), `window_h, soreness, hours_after` (from the session to the entry's real time)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide patient reports")
    frame = read_frame(session, select(
        DiaryEntry.id.label("entry_id"), DiaryEntry.session_id, S.episode_id, Patient.pseudonym.label("patient_id"),
        S.technique, _adjuncts(), DiaryEntry.window_h, DiaryEntry.soreness, DiaryEntry.recorded_at, S.session_date,
        S.created_at)
        .join(S, S.id == DiaryEntry.session_id).join(Patient, Patient.id == DiaryEntry.patient_id)
        .where(LIVE_SESSIONS).order_by(DiaryEntry.session_id, DiaryEntry.window_h))
    frame["hours_after"] = (_hours(frame["recorded_at"], session_moments(frame["session_date"], frame["created_at"]))
                            if len(frame) else pd.Series(dtype=float))
    return frame.drop(columns=["recorded_at", "session_date", "created_at"])


def reported_effects(session: Session, *, actor: Actor) -> dict[str, pd.DataFrame]:
    """Return the inputs of side effects per 100 sessions as patients and clinicians report them, on the same
    sessions (those with any diary entry): 'sessions' (`session_id, patient_id, technique, adjuncts, entries`),
    'patient' and 'clinician' (`session_id, code, severity`, one row per effect; the patient's as reported in
    any of the session's entries, a code counted once per session at its highest severity)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide patient reports")
    diaried = (select(DiaryEntry.session_id, func.count().label("entries")).group_by(DiaryEntry.session_id)
               .subquery("diaried"))
    sessions = read_frame(session, select(
        S.id.label("session_id"), Patient.pseudonym.label("patient_id"), S.technique, _adjuncts(),
        diaried.c.entries)
        .join(diaried, diaried.c.session_id == S.id).join(Episode, Episode.id == S.episode_id)
        .join(Patient, Patient.id == Episode.patient_id).where(LIVE_SESSIONS).order_by(S.id))
    # Joined to the diaried live sessions, never a list of their ids: a network's diaries would pass SQLite's limit
    # of bound parameters.
    live = select(S.id).join(diaried, diaried.c.session_id == S.id).where(LIVE_SESSIONS)
    patient = read_frame(session, select(DiaryEntry.session_id, PatientSideEffect.code, PatientSideEffect.severity)
                         .join(DiaryEntry, DiaryEntry.id == PatientSideEffect.entry_id)
                         .where(DiaryEntry.session_id.in_(live)).order_by(DiaryEntry.session_id))
    rank = {"mild": 0, "significant": 1, "serious": 2}
    patient = (patient.assign(rank=patient["severity"].map(rank)).sort_values(["session_id", "code", "rank"])
               .drop_duplicates(["session_id", "code"], keep="last").drop(columns="rank").reset_index(drop=True))
    clinician = read_frame(session, select(SideEffect.session_id, SideEffect.code, SideEffect.severity)
                           .where(SideEffect.session_id.in_(live)).order_by(SideEffect.session_id, SideEffect.id))
    return {"sessions": sessions, "patient": patient, "clinician": clinician}


def pgic_answers(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every PGIC answer: `episode_id, patient_id` (pseudonym), `technique, adjuncts` (of the episode's
    first session), `answered_at, score, entered_by`, in episode and time order."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide patient reports")
    first = _episode_first()
    return read_frame(session, select(
        PgicResponse.episode_id, Patient.pseudonym.label("patient_id"), first.c.technique, first.c.adjuncts,
        PgicResponse.answered_at, PgicResponse.score, PgicResponse.entered_by)
        .join(first, first.c.episode_id == PgicResponse.episode_id)
        .join(Patient, Patient.id == PgicResponse.patient_id)
        .order_by(PgicResponse.episode_id, PgicResponse.answered_at, PgicResponse.id))


def psfs_ratings(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every PSFS rating: `episode_id, patient_id` (pseudonym), `technique, adjuncts` (of the episode's first
    session), `activity_id, position, rated_at, score`, in episode, activity and time order (the first rating of an
    activity is its baseline)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide patient reports")
    first = _episode_first()
    return read_frame(session, select(
        PsfsActivity.episode_id, Patient.pseudonym.label("patient_id"), first.c.technique, first.c.adjuncts,
        PsfsRating.activity_id, PsfsActivity.position, PsfsRating.rated_at, PsfsRating.score)
        .join(PsfsActivity, PsfsActivity.id == PsfsRating.activity_id)
        .join(first, first.c.episode_id == PsfsActivity.episode_id)
        .join(Episode, Episode.id == PsfsActivity.episode_id).join(Patient, Patient.id == Episode.patient_id)
        .order_by(PsfsActivity.episode_id, PsfsActivity.position, PsfsRating.rated_at, PsfsRating.id))
