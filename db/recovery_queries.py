"""Reads for expected recovery (issue #18): the sessions the bands are fitted on, with each episode's discharge, the
episodes a clinic-wide filter selects, and the open episodes a clinician's work list may name.

Each read checks the actor (db.access), as db.queries does: the fit's sessions and the filter's episodes are
clinic-wide, pseudonymous figures; the work list names patients, so a clinician gets only the episodes whose first
session they saw, an admin every one.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from db import queries
from db.access import AGGREGATE_READERS, CLINICAL_WRITERS, Actor, require_role
from db.models import Episode, Patient, TreatmentSession, User
from db.queries import OutcomeFilter

OPEN_EPISODE_COLUMNS = ["episode_id", "patient", "patient_id", "clinician", "started_on"]


def recovery_sessions(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every live session (`db.queries.outcome_sessions`' columns) with its episode's discharge `status`
    (None while the episode is open): what the expected-recovery bands are fitted on and the on-track flags read."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    sessions = queries.outcome_sessions(session, actor=actor)
    statuses = dict(session.execute(select(Episode.id, Episode.status).where(Episode.status.is_not(None))).all())
    return sessions.assign(status=sessions["episode_id"].map(statuses).astype(object))


def filtered_episode_ids(session: Session, *, actor: Actor, where: OutcomeFilter) -> list[int]:
    """Return the ids of the episodes a clinic-wide filter selects (by their first session, as every figure does)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = queries._first_sessions(where)  # the one definition of what a filter selects
    return list(session.scalars(select(first.c.episode_id)))


def open_episodes(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return the episodes not discharged whose off-track flags the actor may list: a clinician's own (those whose
    first session they saw), every one for an admin; AccessDenied for any other role.

    Columns OPEN_EPISODE_COLUMNS: `patient` is the patient's record id (what the progress page opens), `patient_id`
    the pseudonym, `clinician` the first session's clinician's username.
    """
    require_role(actor, CLINICAL_WRITERS, "list off-track episodes")
    first = aliased(TreatmentSession, name="first_session")
    stmt = (
        select(Episode.id, Patient.id, Patient.pseudonym, User.username, Episode.started_on)
        .join(first, (first.episode_id == Episode.id) & (first.session_number == 1) & first.deleted_at.is_(None))
        .join(Patient, Patient.id == Episode.patient_id)
        .outerjoin(User, User.id == first.clinician_id)
        .where(Episode.status.is_(None))
        .order_by(Episode.id)
    )
    if actor.role == "clinician":  # an account without an id saw no first session (never `IS NULL`: nobody's)
        stmt = stmt.where(first.clinician_id == actor.id) if actor.id is not None else stmt.where(False)
    return pd.DataFrame(session.execute(stmt).all(), columns=OPEN_EPISODE_COLUMNS)
