"""Reads for expected recovery (issue #18): the sessions the bands are fitted on, with each episode's discharge, the
episodes a clinic-wide filter selects, and the open episodes a clinician's work list may name.

Each read checks the actor (db.access), as db.queries does: the fit's sessions and the filter's episodes are
clinic-wide, pseudonymous figures; the work list names patients, so a clinician gets only the episodes whose first
session they saw, an admin every one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from db import queries
from db.access import AGGREGATE_READERS, CLINICAL_WRITERS, Actor, require_role
from db.frames import READ_PART_ROWS, read_frame, whole_groups
from db.models import LIVE_SESSIONS, Episode, Patient, TreatmentSession, User
from db.queries import OutcomeFilter

RECOVERY_SESSION_COLUMNS = ["episode_id", "patient_id", "session_number", "session_date", "technique", "pain_scale",
                            "pain_before", "condition", "clinician", "status"]
# Not the pseudonyms: pandas keeps texts in Arrow's buffers, so a Python string kept per patient (174,000 at a
# million sessions), made among each part's short-lived objects, would only keep their memory from being given back.
SHARED_COLUMNS = ["session_date", "technique", "pain_scale", "condition", "clinician", "status"]
OPEN_EPISODE_COLUMNS = ["episode_id", "patient", "patient_id", "clinician", "started_on"]


def recovery_sessions(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every live session of the episodes `db.queries.outcome_sessions` reads, with only what the bands are
    fitted on and the on-track flags read (RECOVERY_SESSION_COLUMNS), including its episode's discharge `status`
    (None while the episode is open)."""
    parts = list(recovery_session_parts(session, actor=actor))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RECOVERY_SESSION_COLUMNS)


def first_session_pain(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return the first session of each episode `recovery_session_parts` reads: its `episode_id`, `session_number`,
    `pain_scale` and `pain_before` (how many episodes the fit will read, counted before it reads them:
    analytics.recovery_stream). Read in the same `one_snapshot` session as the parts, it counts what they hold."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = queries.first_sessions(OutcomeFilter())
    opening = aliased(TreatmentSession, name="opening")
    stmt = (select(opening.episode_id, opening.session_number, opening.pain_scale, opening.pain_before)
            .join(first, first.c.episode_id == opening.episode_id)
            .where(opening.session_number == 1, opening.deleted_at.is_(None)))
    return read_frame(session, stmt, ["episode_id", "session_number", "pain_scale", "pain_before"])


def one_snapshot(session: Session) -> None:
    """Have every read of `session` see the data as it was at its first: PostgreSQL's default isolation reads each
    statement afresh; a SQLite transaction holds one snapshot already. Call before the session's first read."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def recovery_session_parts(session: Session, *, actor: Actor, rows: int = READ_PART_ROWS) -> Iterator[pd.DataFrame]:
    """Yield `recovery_sessions` a part of about `rows` sessions at a time, each part holding whole episodes, in
    order of the episode's first session date, then of episode and session (as the fit reads them, twice:
    analytics.recovery_stream); equal texts and dates share one object across the parts. So a network's million
    sessions are never held at once, nor a copy of the same text per session (a million of each held 1.1 GB).
    """
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = queries.first_sessions(OutcomeFilter())  # the one definition of the episodes a figure reads
    opening = aliased(TreatmentSession, name="opening")
    stmt = (
        select(TreatmentSession.episode_id, Patient.pseudonym, TreatmentSession.session_number,
               TreatmentSession.session_date, TreatmentSession.technique, TreatmentSession.pain_scale,
               TreatmentSession.pain_before, Episode.condition, User.username, Episode.status)
        .join(first, first.c.episode_id == TreatmentSession.episode_id)
        .join(opening, (opening.episode_id == first.c.episode_id) & (opening.session_number == 1)
              & opening.deleted_at.is_(None))
        .join(Episode, Episode.id == TreatmentSession.episode_id)
        .join(Patient, Patient.id == Episode.patient_id)
        .outerjoin(User, User.id == TreatmentSession.clinician_id)
        .where(LIVE_SESSIONS)
        .order_by(opening.session_date, TreatmentSession.episode_id, TreatmentSession.session_number)
    )
    shared: dict = {}
    streamed = session.connection().execute(stmt, execution_options={"stream_results": True})
    yield from whole_groups((_frame(chunk, shared) for chunk in streamed.partitions(rows)), "episode_id")


def _frame(rows: list, shared: dict) -> pd.DataFrame:
    columns = dict(zip(RECOVERY_SESSION_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
    for name in SHARED_COLUMNS:
        columns[name] = [shared.setdefault(value, value) for value in columns[name]]
    return pd.DataFrame(columns, columns=RECOVERY_SESSION_COLUMNS)


def filtered_episode_ids(session: Session, *, actor: Actor, where: OutcomeFilter) -> list[int]:
    """Return the ids of the episodes a clinic-wide filter selects (by their first session, as every figure does)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = queries.first_sessions(where)  # the one definition of what a filter selects
    return list(session.scalars(select(first.c.episode_id)))


def open_episodes(session: Session, *, actor: Actor, among: Collection[int] | None = None,
                  rows: int = READ_PART_ROWS) -> pd.DataFrame:
    """Return the episodes not discharged whose off-track flags the actor may list: a clinician's own (those whose
    first session they saw), every one for an admin; AccessDenied for any other role. With `among`, only those of
    these episode ids, read `rows` at a time: at a network's million sessions an admin's open episodes (190,000, as
    Python rows) raised the server's peak by 59 MB when read at once to name a work list of 25,741.

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
    if among is None:
        return pd.DataFrame(session.execute(stmt).all(), columns=OPEN_EPISODE_COLUMNS)
    wanted = set(among)
    if not wanted:
        return pd.DataFrame(columns=OPEN_EPISODE_COLUMNS)
    streamed = session.connection().execute(stmt, execution_options={"stream_results": True})
    kept = [row for part in streamed.partitions(rows) for row in part if row[0] in wanted]
    return pd.DataFrame(kept, columns=OPEN_EPISODE_COLUMNS)
