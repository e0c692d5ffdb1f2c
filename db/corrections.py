"""Corrections of recorded sessions: edit with history, soft delete with a reason, restore. All audited."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
from sqlalchemy import delete, func, select
from sqlmodel import Session

from clinic.vocabulary import ESTIM_ITEMS, STRICTA_ITEMS, STRICTA_LABELS, condition_words
from db import audit, episodes, numbering, rollups
from db.access import CLINICAL_WRITERS, IDENTIFIED_READERS, Actor, require_role
from db.fields import AUDITED_FIELDS, SESSION_FIELDS, audited, session_values
from db.models import LIVE_SESSIONS, AuditEvent, Episode, Patient, SideEffect, TreatmentSession, User, utcnow
from db.session_rules import estim_problem, twitch_problem
from db.validation import InvalidInput, Problem, SessionInput, longer_than, unstorable

REASON_MAX = TreatmentSession.__table__.c.deleted_reason.type.length
FIELD_WORDS = {
    "session_date": "date", "technique": "technique", "muscles": "muscles", "twitch_response": "twitch response",
    "pain_scale": "pain scale", "pain_before": "pain before", "pain_after": "pain after", "notes": "notes",
    "side_effects": "side effects",
} | {name: STRICTA_LABELS[name][0].lower() for name in STRICTA_ITEMS}


def snapshot(session: Session, row: TreatmentSession) -> dict:
    """Return the audited values of one session, side effects as `code:severity;…`."""
    effects = session.execute(
        select(SideEffect.code, SideEffect.severity).where(SideEffect.session_id == row.id).order_by(SideEffect.id)
    ).all()
    return audited({name: getattr(row, name) for name in SESSION_FIELDS}, effects)


def _live_session(session: Session, session_id: int) -> TreatmentSession:
    row = session.get(TreatmentSession, session_id)
    if row is None or row.deleted_at is not None:
        raise ValueError(f"session: no session {session_id}")
    return row


def _refuse_after_discharge(session: Session, row: TreatmentSession, session_date: date) -> None:
    """Raise InvalidInput when the session, dated `session_date`, would fall after its episode's discharge: a session
    after a discharge belongs to a new episode of care (db.episodes), which a correction or a restore cannot start."""
    episode = session.get(Episode, row.episode_id)
    if episode.discharged_on is not None and session_date > episode.discharged_on:
        raise InvalidInput([Problem("session_date", (
            f"{session_date} is after episode {episode.number} ({condition_words(episode.condition)}) was discharged "
            f"on {episode.discharged_on}; a session after a discharge belongs to a new episode of care: record it as "
            "a new session"))])


def _ask_before_a_new_baseline(session: Session, row: TreatmentSession, session_date: date,
                               answer: episodes.Answer | None) -> None:
    """Raise EpisodeUndecided when a new date would put a later session before the episode's first, making it
    session 1 and the baseline, and `answer` does not say the date is right (as recording such a session asks)."""
    first = session.execute(
        select(func.min(TreatmentSession.session_date))
        .where(TreatmentSession.episode_id == row.episode_id, TreatmentSession.id != row.id, LIVE_SESSIONS)
    ).scalar_one()
    if first is None or session_date >= first or row.session_number == 1:
        return
    episode = session.get(Episode, row.episode_id)
    course = episodes.Course(episode.number, None, first_session=first)
    asked = episodes.Question(episode.condition, session_date, course, gap_days=0)  # no gap is asked about
    if not asked.answered_by(answer):
        raise episodes.EpisodeUndecided(asked)


def correct_session(session: Session, *, actor: Actor, session_id: int, entry: SessionInput,
                    answer: episodes.Answer | None = None) -> tuple[TreatmentSession, bool]:
    """Replace a session's values with a corrected entry (same patient and episode); the audit keeps the old ones.
    Return the session and whether any audited value changed (when none did, nothing is audited).
    A new date after the episode's discharge is refused (InvalidInput naming `session_date`); one that would make a
    later session the episode's first, and its baseline, raises EpisodeUndecided until `answer` says it is right.

    An item of the needling record that the entry does not give (not even as None) keeps its stored value, so a
    correction form without them never erases the record; a kept value the corrected session contradicts (a twitch
    count against a new twitch answer, stimulation on a session no longer electrical) is dropped.
    """
    require_role(actor, CLINICAL_WRITERS, "correct clinical data")
    row = _live_session(session, session_id)
    if entry.session_date != row.session_date:  # a session stored past a discharge can still have its values mended
        _refuse_after_discharge(session, row, entry.session_date)
        _ask_before_a_new_baseline(session, row, entry.session_date, answer)
    rollups.touch(session, [row.episode_id])
    before = snapshot(session, row)
    values = session_values(entry)
    for name in STRICTA_ITEMS:
        if name not in entry.model_fields_set:
            kept = getattr(row, name)
            if name == "twitch_count" and twitch_problem(kept, values["twitch_response"]):
                kept = None
            values[name] = None if name in ESTIM_ITEMS and estim_problem(name, kept, values["technique"]) else kept
    for name, value in values.items():
        setattr(row, name, value)
    session.execute(delete(SideEffect).where(SideEffect.session_id == row.id))
    session.add_all(SideEffect(session_id=row.id, code=c, severity=s) for c, s in entry.side_effects)
    session.flush()
    after = snapshot(session, row)
    changed = {k for k in AUDITED_FIELDS if before[k] != after[k]}
    if changed:
        audit.record(session, actor, "update", "session", row.id,
                     before={k: before[k] for k in changed}, after={k: after[k] for k in changed})
        numbering.renumber(session, [row.episode_id])
    return row, bool(changed)


def delete_session(session: Session, *, actor: Actor, session_id: int, reason: str) -> None:
    """Soft-delete a session with a reason: it leaves every chart and figure, and an admin can restore it."""
    require_role(actor, CLINICAL_WRITERS, "delete clinical data")
    if not reason.strip():
        raise ValueError("Reason: say why the session is deleted")
    problem = unstorable(reason) or longer_than(reason.strip(), REASON_MAX)
    if problem:
        raise ValueError(f"Reason: {problem}")
    row = _live_session(session, session_id)
    rollups.touch(session, [row.episode_id])
    row.deleted_at, row.deleted_by, row.deleted_reason = utcnow(), actor.id, reason.strip()
    session.flush()
    audit.record(session, actor, "delete", "session", row.id, before=snapshot(session, row), detail=reason.strip())
    numbering.renumber(session, [row.episode_id])


def restore_session(session: Session, *, actor: Actor, session_id: int) -> None:
    """Bring a soft-deleted session back (admins only); its episode is renumbered by date again. A session dated
    after its episode's discharge, given since it was deleted, stays deleted (InvalidInput naming `session_date`)."""
    require_role(actor, ("admin",), "restore deleted sessions")
    row = session.get(TreatmentSession, session_id)
    if row is None or row.deleted_at is None:
        raise ValueError(f"session: no deleted session {session_id}")
    _refuse_after_discharge(session, row, row.session_date)
    rollups.touch(session, [row.episode_id])
    row.session_number = numbering.aside(row.id)  # out of the live numbers' way until renumbering places it
    row.deleted_at, row.deleted_by, row.deleted_reason = None, None, None
    session.flush()
    audit.record(session, actor, "restore", "session", row.id, after=snapshot(session, row))
    numbering.renumber(session, [row.episode_id])


def deleted_sessions(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return soft-deleted sessions with who deleted them, when and why (admins only)."""
    require_role(actor, ("admin",), "list deleted sessions")
    deleter = User.__table__.alias("deleter")
    stmt = (
        select(TreatmentSession.id.label("session_id"), Patient.pseudonym.label("patient_id"),
               TreatmentSession.session_date, TreatmentSession.technique, TreatmentSession.deleted_at,
               deleter.c.username.label("deleted_by"), TreatmentSession.deleted_reason)
        .join(Episode, Episode.id == TreatmentSession.episode_id)
        .join(Patient, Patient.id == Episode.patient_id)
        .outerjoin(deleter, deleter.c.id == TreatmentSession.deleted_by)
        .where(TreatmentSession.deleted_at.is_not(None))
        .order_by(TreatmentSession.deleted_at.desc())
    )
    result = session.execute(stmt)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _value_words(value: object) -> str:
    return "(blank)" if value is None or value == "" else str(value)


def _describe(event: AuditEvent) -> str:
    when = event.at.strftime("%Y-%m-%d %H:%M")
    if event.action == "update":
        before, after = json.loads(event.before or "{}"), json.loads(event.after or "{}")
        changes = "; ".join(
            f"{FIELD_WORDS.get(k, k)} from {_value_words(before.get(k))} to {_value_words(after.get(k))}"
            for k in sorted(after)
        )
        return f"corrected {changes} by {event.actor} on {when}"
    if event.action == "delete":
        return f"deleted by {event.actor} on {when}: {event.detail}"
    if event.action == "restore":
        return f"restored by {event.actor} on {when}"
    if event.action == "create":
        how = "imported" if event.detail.startswith("import") else "recorded"
        return f"{how} by {event.actor} on {when}"
    return f"{event.action} by {event.actor} on {when}"


def session_history(session: Session, *, actor: Actor, session_id: int) -> list[str]:
    """Return a session's corrections in plain words, oldest first (clinicians and admins)."""
    require_role(actor, IDENTIFIED_READERS, "read a session's history")
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity == "session", AuditEvent.entity_id == session_id)
        .order_by(AuditEvent.id)
    )
    return [_describe(e) for e in events]

