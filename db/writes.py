"""Writes of clinical data. Each takes the caller's Session; the caller's unit of work commits or rolls back."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from db import audit, episodes, fields, numbering, patient_search, rollups
from db.access import CLINICAL_WRITERS, Actor, require_role
from db.models import LIVE_SESSIONS, Patient, SideEffect, TreatmentSession, User, utcnow
from db.validation import InvalidInput, Problem, SessionInput, longer_than, unstorable

PATIENT_NAME_MAX = Patient.__table__.c.name.type.length


def get_or_create_patient(session: Session, pseudonym: str, name: str | None = None) -> Patient:
    """Return the patient with this pseudonymous id, creating it (with an optional name) if new."""
    patient = session.scalars(select(Patient).where(Patient.pseudonym == pseudonym)).first()
    if patient is None:
        name = (name or "").strip()
        problem = unstorable(name) or longer_than(name, PATIENT_NAME_MAX)
        if problem:
            raise InvalidInput([Problem("patient_name", problem)])
        patient = patient_search.add_patient(session, pseudonym, name or None)
    return patient


def _new_patient_problem(session: Session, pseudonym: str) -> str | None:
    """Return why a patient entered as new is not: their id, or the same id in other capitals ("p0002" for
    "P0002"), is a stored patient's. Saved anyway, the session would join that patient's record, or split one
    person's record in two."""
    existing = next((stored for stored, _ in patient_search.in_any_capitals(session, [pseudonym])), None)
    if existing is None:
        return None
    if existing == pseudonym:
        return f"{pseudonym} is already a patient: choose them in the Patient list"
    return f"{pseudonym} is the id of patient {existing} in other capitals: choose {existing} in the Patient list"


def not_a_clinician(username: str, role: str) -> str:
    """Return why a session cannot name this account, of another role, as its clinician."""
    return f"'{username}' is {'an' if role[0] in 'aeiou' else 'a'} {role} account, not a clinician's"


def get_or_create_clinician(session: Session, username: str, actor: Actor | None = None, detail: str = "") -> User:
    """Return the clinician account with this username, creating one without a password if new (audited as `actor`).

    Raises InvalidInput when the name belongs to an account of another role: a session is never attributed to an
    admin, a manager or a patient.
    """
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        user = User(username=username, display_name=username, role="clinician")
        session.add(user)
        session.flush()
        if actor is not None:
            audit.record(session, actor, "user_add", "user", user.id, detail=detail or "named as a session's clinician",
                         after={"username": username, "role": "clinician", "email": None, "patient_id": None,
                                "is_active": True})
    elif user.role != "clinician":
        raise InvalidInput([Problem("clinician", not_a_clinician(username, user.role))])
    return user


def record_session(
    session: Session, *, actor: Actor, entry: SessionInput, patient_name: str | None = None,
    answer: episodes.Answer | None = None, gap_days: int | None = None, new_patient: bool = False,
) -> TreatmentSession:
    """Store one validated session for its patient and episode, audited, and return it with its session number.

    The episode is the one `db.episodes` chooses; a session after a discharge or a long gap (`gap_days`, by default
    the configured one) raises EpisodeUndecided until `answer` says whether it starts a new episode. A session for a
    `new_patient` whose id is a stored patient's, in any capitals, is refused (InvalidInput naming `patient_id`).
    """
    require_role(actor, CLINICAL_WRITERS, "record sessions")
    if new_patient and (problem := _new_patient_problem(session, entry.patient_id)):
        raise InvalidInput([Problem("patient_id", problem)])
    rollups.touch_patients(session, [entry.patient_id])  # before anything changes, the body region included
    patient = get_or_create_patient(session, entry.patient_id, patient_name)
    episode = episodes.episode_for_session(
        session, actor, patient, condition=entry.condition, body_region=entry.body_region,
        session_date=entry.session_date, gap=episodes.gap_days(gap_days), answer=answer)
    clinician = get_or_create_clinician(session, entry.clinician, actor) if entry.clinician else None
    # The episode's last number, and how many of its sessions are dated after this one (then it is back-dated).
    last, later = session.execute(
        select(
            func.max(TreatmentSession.session_number),
            func.count().filter(TreatmentSession.session_date > entry.session_date),
        ).where(TreatmentSession.episode_id == episode.id, LIVE_SESSIONS)
    ).one()
    row = TreatmentSession(
        episode_id=episode.id,
        session_number=(last or 0) + 1,
        clinician_id=clinician.id if clinician else None,
        **fields.session_values(entry),
    )
    session.add(row)
    session.flush()
    session.add_all(SideEffect(session_id=row.id, code=c, severity=s) for c, s in entry.side_effects)
    if later:
        numbering.renumber(session, [episode.id])
        session.flush()
        session.refresh(row)  # its number moved with the others
    after = fields.audited(fields.session_values(entry), entry.side_effects) | {
        "patient_id": entry.patient_id, "episode": episode.number, "session_number": row.session_number}
    audit.record(session, actor, "create", "session", row.id, after=after)
    return row


def mark_reviewed(session: Session, *, actor: Actor, side_effect_id: int) -> None:
    """Mark a significant or serious side effect as reviewed by a manager (or admin); audited."""
    require_role(actor, ("manager", "admin"), "review side effects")
    effect = session.get(SideEffect, side_effect_id)
    if effect is None or effect.reviewed_at is not None:
        raise ValueError(f"side effect: no unreviewed side effect {side_effect_id}")
    effect.reviewed_at, effect.reviewed_by = utcnow(), actor.id
    audit.record(session, actor, "update", "side_effect", effect.id, before={"reviewed": False},
                 after={"reviewed": True, "code": effect.code, "severity": effect.severity})
