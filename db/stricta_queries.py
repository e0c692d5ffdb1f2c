"""Reads of the needling record (STRICTA; docs/DESIGN.md section 5): per session, for the STRICTA table and the form.

Each takes the caller's Session and the acting user, checked as the other reads of `db.queries` check it.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from clinic.vocabulary import ADJUNCT_SEPARATOR, STRICTA_ITEMS
from db.access import AGGREGATE_READERS, CLINICAL_WRITERS, IDENTIFIED_READERS, Actor, require_patient, require_role
from db.models import LIVE_SESSIONS, Episode, Patient, TreatmentSession, User
from db.queries import OutcomeFilter, first_sessions, read_frame

S = TreatmentSession
NEEDLING_COLUMNS = [S.__table__.c[name] for name in STRICTA_ITEMS]
STRICTA_SESSION_COLUMNS = ["session_id", "episode_id", "patient_id", "session_number", "session_date", "technique",
                           "clinician", "condition", *STRICTA_ITEMS, "twitch_response"]


EVERY_EPISODE = OutcomeFilter()  # no filter


def stricta_sessions(session: Session, *, actor: Actor, where: OutcomeFilter = EVERY_EPISODE) -> pd.DataFrame:
    """Return one row per live session of the filtered episodes: `STRICTA_SESSION_COLUMNS` (the patient by
    pseudonymous id, no names, no notes), in episode and session order. Managers, clinicians and admins.

    The filter selects episodes by their first session, as every clinic-wide figure does; a row's `technique` is
    its own session's.
    """
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where)
    stmt = (
        select(S.id.label("session_id"), S.episode_id, Patient.pseudonym.label("patient_id"), S.session_number,
               S.session_date, S.technique, User.username.label("clinician"), Episode.condition, *NEEDLING_COLUMNS,
               S.twitch_response)
        .join(first, first.c.episode_id == S.episode_id)
        .join(Episode, Episode.id == S.episode_id)
        .join(Patient, Patient.id == Episode.patient_id)
        .outerjoin(User, User.id == S.clinician_id)
        .where(LIVE_SESSIONS)
        .order_by(S.episode_id, S.session_number)
    )
    return read_frame(session, stmt, STRICTA_SESSION_COLUMNS)


def needling_record(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return the needling record of every live session: `session_id` and the STRICTA columns (for the exports,
    beside `db.queries.all_sessions`). Clinicians and admins."""
    require_role(actor, IDENTIFIED_READERS, "read every patient's sessions")
    stmt = select(S.id.label("session_id"), *NEEDLING_COLUMNS).where(LIVE_SESSIONS).order_by(S.id)
    return read_frame(session, stmt, ["session_id", *STRICTA_ITEMS])


def patient_needling(session: Session, *, actor: Actor, patient_id: int) -> pd.DataFrame:
    """Return the needling record of one patient's live sessions: `session_id` and the STRICTA columns, to join to
    `db.queries.patient_sessions` by session_id. As that read: the patient's clinicians and admins, and the patient."""
    require_patient(actor, patient_id)
    stmt = (select(S.id.label("session_id"), *NEEDLING_COLUMNS)
            .join(Episode, Episode.id == S.episode_id)
            .where(Episode.patient_id == patient_id, LIVE_SESSIONS)
            .order_by(S.episode_id, S.session_number))
    return read_frame(session, stmt, ["session_id", *STRICTA_ITEMS])


def last_needling_defaults(session: Session, *, actor: Actor, patient_id: int) -> dict:
    """Return the needling record of the patient's latest live session, for the form's defaults (empty if none).

    The STRICTA items by name (None where not recorded); `adjuncts` as a list of codes ([] when not recorded,
    ['none'] when recorded as none), as the form's choice takes it. Clinicians and admins, as they record sessions.
    """
    require_role(actor, CLINICAL_WRITERS, "record sessions")
    row = session.execute(
        select(S.technique, *NEEDLING_COLUMNS)
        .join(Episode, Episode.id == S.episode_id)
        .where(Episode.patient_id == patient_id, LIVE_SESSIONS)
        .order_by(S.session_date.desc(), S.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return {}
    values = dict(row._mapping)
    values["adjuncts"] = values["adjuncts"].split(ADJUNCT_SEPARATOR) if values["adjuncts"] else []
    return values
