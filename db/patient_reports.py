"""Writes of what patients report (issue #17): diary entries, corrections, annotations, PGIC, PSFS, reviews.

Each takes the caller's Session (one unit of work: `db.engine.write_session`), checks who is acting, validates,
writes and audits in that one transaction, and returns the row. Bad input raises ValueError with one line that
starts with the field's name (`soreness: …`); a role or patient that may not write raises `db.access.AccessDenied`.

Who may write (docs/DESIGN.md, "Patient-reported data"):
- a diary entry: the patient, for their own live sessions; an admin too, for imports and the sample data (it may
  give the entry's real time, `now`). Clinicians annotate entries and never change them; managers write nothing.
- a correction: only the patient who owns the entry, within CORRECTION_HOURS of first recording it; the values
  before are kept as a `DiaryEntryVersion`.
- PGIC answers and PSFS activities and ratings: the patient for themselves, or a clinician or admin on the
  patient's behalf (`entered_by` says which).
- reviewing a patient-reported side effect: managers and admins, like `db.writes.mark_reviewed`.

Times are aware UTC datetimes, as the other tables store them (a naive one given is taken as UTC). `now`
(default: the clock) is the real time of the write; pages never pass it; imports and tests do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from clinic import side_effects as side_effect_text
from clinic.patient_reports import (
    ACTIVITY_MAX,
    ANNOTATION_MAX,
    CORRECTION_HOURS,
    DIARY_CLOSES_H,
    DIARY_OPENS_H,
    NOTE_MAX,
    PATIENT_EFFECT_CODES,
    PGIC_MAX,
    PGIC_MIN,
    PSFS_MAX,
    PSFS_MAX_ACTIVITIES,
    PSFS_MIN,
    SORENESS_MAX,
    SORENESS_MIN,
    window_for_hours,
)
from clinic.vocabulary import SEVERITIES
from db import audit
from db.access import CLINICAL_WRITERS, AccessDenied, Actor, require_role
from db.models import Episode, Patient, TreatmentSession
from db.report_models import (
    DiaryAnnotation,
    DiaryEntry,
    DiaryEntryVersion,
    PatientSideEffect,
    PgicResponse,
    PsfsActivity,
    PsfsRating,
)
from db.validation import longer_than, unstorable

Pair = tuple[str, str]


def utc(moment: datetime | None) -> datetime:
    """Return `moment` (default now) as an aware UTC datetime, as the tables store times (a naive one is UTC)."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def session_moment(session_date, created_at: datetime | None) -> datetime:
    """Return when a session took place, in UTC: the moment it was recorded if that was on its date (sessions are
    recorded right after they end), else noon of its date (an imported or back-dated session)."""
    created = utc(created_at) if created_at else None
    if created is not None and created.date() == session_date:
        return created
    return datetime.combine(session_date, time(12, 0), tzinfo=UTC)


def hours_after(session_row: TreatmentSession, moment: datetime) -> float:
    """Return the hours from the session (`session_moment`) to `moment`."""
    start = session_moment(session_row.session_date, session_row.created_at)
    return (utc(moment) - start).total_seconds() / 3600


# -- checks -----------------------------------------------------------------------------------------------------------


def _integer(field: str, value, low: int, high: int) -> int:
    """Return `value` as an int within [low, high], else raise ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{field}: must be a whole number from {low} to {high}, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field}: must be from {low} to {high}, not {value:g}")
    return int(value)


def _text(field: str, value: str | None, maximum: int, *, required: bool = False) -> str:
    """Return `value` stripped, checked storable and at most `maximum` characters, else raise ValueError."""
    value = (value or "").strip()
    if required and not value:
        raise ValueError(f"{field}: must not be empty")
    problem = unstorable(value) or longer_than(value, maximum)
    if problem:
        raise ValueError(f"{field}: {problem}")
    return value


def _effects(effects: Iterable[Pair], note: str) -> list[Pair]:
    """Return the checklist's (code, severity) pairs checked: known codes and severities, each code once."""
    pairs = [(str(code), str(severity)) for code, severity in effects]
    for code, severity in pairs:
        if code not in PATIENT_EFFECT_CODES:
            raise ValueError(f"side_effects: '{code}' is not on the patient's checklist")
        if severity not in SEVERITIES:
            raise ValueError(f"side_effects: '{severity}' is not a severity (mild, significant or serious)")
    codes = [code for code, _ in pairs]
    if len(set(codes)) != len(codes):
        raise ValueError("side_effects: each side effect once, at its worst severity")
    if "other" in codes and not note:
        raise ValueError("note: say what the other side effect was")
    return pairs


def _may_report_for(actor: Actor, patient_id: int, what: str, *, clinic: tuple[str, ...]) -> None:
    """Raise AccessDenied unless the actor is this patient, or has one of the `clinic` roles."""
    if actor is not None and actor.role == "patient":
        if actor.patient_id is None or actor.patient_id != patient_id:
            raise AccessDenied(f"a patient may not {what} for another patient")
        return
    require_role(actor, clinic, what)


def _pseudonym(session: Session, patient_id: int) -> str | None:
    return session.scalar(select(Patient.pseudonym).where(Patient.id == patient_id))


def _live_session_of(session: Session, session_id: int) -> tuple[TreatmentSession, Episode]:
    row = session.get(TreatmentSession, session_id)
    if row is None or row.deleted_at is not None:
        raise ValueError(f"session_id: no session {session_id}")
    return row, session.get(Episode, row.episode_id)


def _entered_by(actor: Actor) -> str:
    return actor.role  # patient, clinician or admin: the roles allowed to enter PGIC and PSFS


# -- the diary --------------------------------------------------------------------------------------------------------


def record_diary_entry(
    session: Session, *, actor: Actor, session_id: int, soreness: int, note: str = "",
    effects: Iterable[Pair] = (), window_h: int | None = None, now: datetime | None = None,
) -> DiaryEntry:
    """Store a patient's diary entry for one of their sessions at its real time (`now`), in the window that time
    falls in, with the side effects ticked; audited. Return the entry.

    `window_h`, if given, must be that window (a page offers the window due). One entry per session and window.
    """
    row, episode = _live_session_of(session, session_id)
    _may_report_for(actor, episode.patient_id, "write diary entries", clinic=("admin",))
    soreness = _integer("soreness", soreness, SORENESS_MIN, SORENESS_MAX)
    note = _text("note", note, NOTE_MAX)
    pairs = _effects(effects, note)
    moment = utc(now)
    hours = hours_after(row, moment)
    window = window_for_hours(hours)
    if window is None:
        when = "is not due yet" if hours < DIARY_OPENS_H else "is closed"
        raise ValueError(f"window_h: the diary of this session {when} (it is open {DIARY_OPENS_H}–{DIARY_CLOSES_H} h "
                         f"after the session; now {hours:.0f} h)")
    if window_h is not None and window_h != window:
        raise ValueError(f"window_h: an entry {hours:.0f} h after the session belongs to the {window} h window, "
                         f"not the {window_h} h one")
    taken = session.scalar(select(DiaryEntry.id).where(DiaryEntry.session_id == row.id,
                                                       DiaryEntry.window_h == window))
    if taken is not None:
        raise ValueError(f"window_h: the {window} h entry of this session is recorded already; correct it instead")
    entry = DiaryEntry(session_id=row.id, patient_id=episode.patient_id, window_h=window, soreness=soreness,
                       note=note, recorded_at=moment, created_by=actor.id)
    session.add(entry)
    session.flush()
    session.add_all(PatientSideEffect(entry_id=entry.id, code=c, severity=s) for c, s in pairs)
    audit.record(session, actor, "create", "diary_entry", entry.id, patient=_pseudonym(session, episode.patient_id),
                 after={"session_id": row.id, "window_h": window, "soreness": soreness, "note": note,
                        "side_effects": side_effect_text.format(pairs), "recorded_at": moment})
    return entry


def entry_effects(session: Session, entry_id: int) -> list[Pair]:
    """Return the (code, severity) pairs of a diary entry, in checklist order."""
    rows = session.execute(select(PatientSideEffect.code, PatientSideEffect.severity)
                           .where(PatientSideEffect.entry_id == entry_id)).all()
    return sorted(((c, s) for c, s in rows), key=lambda pair: PATIENT_EFFECT_CODES.index(pair[0]))


def correct_diary_entry(
    session: Session, *, actor: Actor, entry_id: int, soreness: int, note: str = "", effects: Iterable[Pair] = (),
    now: datetime | None = None,
) -> DiaryEntry:
    """Replace the values of the patient's own diary entry, within CORRECTION_HOURS of its first recording; the
    values before are kept as a version, and the change audited. Return the entry (unchanged values: no version).

    The entry keeps its window and real time; an unchanged side effect keeps its review.
    """
    entry = session.get(DiaryEntry, entry_id)
    if entry is None:
        raise ValueError(f"entry_id: no diary entry {entry_id}")
    if actor is None or actor.role != "patient" or actor.patient_id != entry.patient_id:
        raise AccessDenied("only the patient who wrote a diary entry may correct it")
    moment = utc(now)
    if moment - utc(entry.recorded_at) > timedelta(hours=CORRECTION_HOURS):
        raise ValueError(f"entry_id: an entry can be corrected for {CORRECTION_HOURS} h after it was recorded; "
                         "this one no longer")
    soreness = _integer("soreness", soreness, SORENESS_MIN, SORENESS_MAX)
    note = _text("note", note, NOTE_MAX)
    pairs = _effects(effects, note)
    old_pairs = entry_effects(session, entry.id)
    before = {"soreness": entry.soreness, "note": entry.note, "side_effects": side_effect_text.format(old_pairs)}
    after = {"soreness": soreness, "note": note,
             "side_effects": side_effect_text.format(sorted(pairs, key=lambda p: PATIENT_EFFECT_CODES.index(p[0])))}
    changed = {name for name in before if before[name] != after[name]}
    if not changed:
        return entry
    version = session.scalar(select(func.count()).where(DiaryEntryVersion.entry_id == entry.id)) + 1
    session.add(DiaryEntryVersion(entry_id=entry.id, version=version, soreness=entry.soreness, note=entry.note,
                                  side_effects=before["side_effects"],
                                  valid_from=entry.corrected_at or entry.recorded_at, replaced_at=moment,
                                  replaced_by=actor.id))
    wanted = dict(pairs)
    for effect in session.scalars(select(PatientSideEffect).where(PatientSideEffect.entry_id == entry.id)):
        if effect.code not in wanted:
            session.delete(effect)
        elif effect.severity != wanted[effect.code]:
            effect.severity, effect.reviewed_at, effect.reviewed_by = wanted[effect.code], None, None
    held = {code for code, _ in old_pairs}
    session.add_all(PatientSideEffect(entry_id=entry.id, code=c, severity=s) for c, s in pairs if c not in held)
    entry.soreness, entry.note, entry.corrected_at = soreness, note, moment
    audit.record(session, actor, "update", "diary_entry", entry.id, patient=_pseudonym(session, entry.patient_id),
                 before={k: before[k] for k in changed}, after={k: after[k] for k in changed},
                 detail=f"corrected by the patient (version {version} kept)")
    return entry


def annotate_entry(
    session: Session, *, actor: Actor, entry_id: int, text: str, now: datetime | None = None,
) -> DiaryAnnotation:
    """Add a clinician's (or admin's) note to a diary entry, audited; the entry itself is never changed."""
    require_role(actor, CLINICAL_WRITERS, "annotate diary entries")
    entry = session.get(DiaryEntry, entry_id)
    if entry is None:
        raise ValueError(f"entry_id: no diary entry {entry_id}")
    text = _text("text", text, ANNOTATION_MAX, required=True)
    note = DiaryAnnotation(entry_id=entry.id, author_id=actor.id, at=utc(now), text=text)
    session.add(note)
    session.flush()
    audit.record(session, actor, "create", "diary_annotation", note.id,
                 patient=_pseudonym(session, entry.patient_id), after={"entry_id": entry.id, "text": text})
    return note


def review_patient_effect(session: Session, *, actor: Actor, effect_id: int, now: datetime | None = None) -> None:
    """Mark a patient-reported side effect as reviewed by a manager (or admin); audited (as db.writes.mark_reviewed)."""
    require_role(actor, ("manager", "admin"), "review side effects")
    effect = session.get(PatientSideEffect, effect_id)
    if effect is None or effect.reviewed_at is not None:
        raise ValueError(f"side_effect_id: no unreviewed patient-reported side effect {effect_id}")
    effect.reviewed_at, effect.reviewed_by = utc(now), actor.id
    patient_id = session.scalar(select(DiaryEntry.patient_id).where(DiaryEntry.id == effect.entry_id))
    audit.record(session, actor, "update", "patient_side_effect", effect.id, patient=_pseudonym(session, patient_id),
                 before={"reviewed": False}, after={"reviewed": True, "code": effect.code, "severity": effect.severity})


# -- PGIC and PSFS ----------------------------------------------------------------------------------------------------


def _episode_of(session: Session, episode_id: int) -> Episode:
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise ValueError(f"episode_id: no episode {episode_id}")
    return episode


def record_pgic(
    session: Session, *, actor: Actor, episode_id: int, score: int, before_session_id: int | None = None,
    now: datetime | None = None,
) -> PgicResponse:
    """Store a PGIC answer (1–7) for an episode, by the patient or on their behalf, optionally for the session it
    preceded (a live session of that episode); audited."""
    episode = _episode_of(session, episode_id)
    _may_report_for(actor, episode.patient_id, "answer PGIC", clinic=CLINICAL_WRITERS)
    score = _integer("score", score, PGIC_MIN, PGIC_MAX)
    if before_session_id is not None:
        row, of = _live_session_of(session, before_session_id)
        if of.id != episode.id:
            raise ValueError(f"before_session_id: session {before_session_id} is not of this episode")
    answer = PgicResponse(patient_id=episode.patient_id, episode_id=episode.id, answered_at=utc(now),
                          score=score, before_session_id=before_session_id, recorded_by=actor.id,
                          entered_by=_entered_by(actor))
    session.add(answer)
    session.flush()
    audit.record(session, actor, "create", "pgic", answer.id, patient=_pseudonym(session, episode.patient_id),
                 after={"episode_id": episode.id, "score": score, "before_session_id": before_session_id,
                        "entered_by": answer.entered_by})
    return answer


def name_psfs_activity(
    session: Session, *, actor: Actor, episode_id: int, position: int, name: str, now: datetime | None = None,
) -> PsfsActivity:
    """Name one of an episode's up to three PSFS activities (position 1–3, once each), by the patient or on their
    behalf; audited."""
    episode = _episode_of(session, episode_id)
    _may_report_for(actor, episode.patient_id, "name PSFS activities", clinic=CLINICAL_WRITERS)
    position = _integer("position", position, 1, PSFS_MAX_ACTIVITIES)
    name = _text("name", name, ACTIVITY_MAX, required=True)
    taken = session.scalar(select(PsfsActivity.id).where(PsfsActivity.episode_id == episode.id,
                                                         PsfsActivity.position == position))
    if taken is not None:
        raise ValueError(f"position: activity {position} of this episode is named already")
    activity = PsfsActivity(episode_id=episode.id, position=position, name=name, named_at=utc(now),
                            named_by=actor.id, entered_by=_entered_by(actor))
    session.add(activity)
    session.flush()
    audit.record(session, actor, "create", "psfs_activity", activity.id,
                 patient=_pseudonym(session, episode.patient_id),
                 after={"episode_id": episode.id, "position": position, "name": name,
                        "entered_by": activity.entered_by})
    return activity


def rate_psfs_activity(
    session: Session, *, actor: Actor, activity_id: int, score: int, now: datetime | None = None,
) -> PsfsRating:
    """Store a 0–10 rating of a PSFS activity, by the patient or on their behalf; audited. The first is the
    baseline."""
    activity = session.get(PsfsActivity, activity_id)
    if activity is None:
        raise ValueError(f"activity_id: no PSFS activity {activity_id}")
    episode = _episode_of(session, activity.episode_id)
    _may_report_for(actor, episode.patient_id, "rate PSFS activities", clinic=CLINICAL_WRITERS)
    score = _integer("score", score, PSFS_MIN, PSFS_MAX)
    rating = PsfsRating(activity_id=activity.id, rated_at=utc(now), score=score, rated_by=actor.id,
                        entered_by=_entered_by(actor))
    session.add(rating)
    session.flush()
    audit.record(session, actor, "create", "psfs_rating", rating.id, patient=_pseudonym(session, episode.patient_id),
                 after={"activity_id": activity.id, "score": score, "entered_by": rating.entered_by})
    return rating
