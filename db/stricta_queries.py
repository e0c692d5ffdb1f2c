"""Reads of the needling record (STRICTA; docs/DESIGN.md section 5): per session, for the STRICTA table and the form.

Each takes the caller's Session and the acting user, checked as the other reads of `db.queries` check it.

The Needling record page and `summary --stricta` read counts, not sessions (issue #15: a network's million
sessions as a frame took some 770 MB): `completeness_counts` (sessions per clinician, month, technique and number
of items reported) and `item_values` (the sessions storing each value of each item, per technique), both grouped in
the database, and the needling record and pain of a sample of episodes only (`sample_needling`, for dose and
outcome). `stricta_sessions` reads every session: analytics.stricta's tables of it are the definition the counts
are tested against.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator

import pandas as pd
from sqlalchemy import and_, case, func, select, true
from sqlmodel import Session

from clinic.vocabulary import ADJUNCT_SEPARATOR, ESTIM_ITEMS, ESTIM_TECHNIQUE, STRICTA_CODES, STRICTA_ITEMS
from db.access import AGGREGATE_READERS, CLINICAL_WRITERS, IDENTIFIED_READERS, Actor, require_patient, require_role
from db.frames import read_frame, read_frame_parts, whole_groups
from db.models import LIVE_SESSIONS, Episode, Patient, TreatmentSession, User
from db.queries import OutcomeFilter, first_sessions
from db.rollups import month_of

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


COUNT_COLUMNS = ["clinician", "month", "technique", "reported_items", "sessions"]


def completeness_counts(session: Session, *, actor: Actor, where: OutcomeFilter = EVERY_EPISODE) -> pd.DataFrame:
    """Return the live sessions of the filtered episodes counted per clinician of the session (username, None when
    not recorded), month (yyyymm), technique and number of STRICTA items the session reports (recorded, a code not
    as an empty text, and applicable: the `estim_*` items to electrical sessions only): `COUNT_COLUMNS`, counted
    in the database (the dates they cover: `covered_dates`; read with every group, they raised the Needling record
    page's peak by 11 MB at a million sessions). Managers, clinicians and admins.

    A session's completeness is its reported items over those that apply to its technique (analytics.stricta)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where)
    reported = functools.reduce(operator.add, (case((_is_reported(item), 1), else_=0) for item in STRICTA_ITEMS))
    month = month_of(S.session_date)
    stmt = (
        select(User.username, month, S.technique, reported, func.count())
        .join(first, first.c.episode_id == S.episode_id)
        .outerjoin(User, User.id == S.clinician_id)
        .where(LIVE_SESSIONS)
        .group_by(User.username, month, S.technique, reported)
    )
    counts = read_frame(session, stmt, COUNT_COLUMNS)
    return counts.astype({"month": int, "reported_items": int, "sessions": int})


def covered_dates(session: Session, *, actor: Actor, where: OutcomeFilter = EVERY_EPISODE) -> tuple:
    """Return the first and the last date of the live sessions of the filtered episodes ((None, None) without
    any). Managers, clinicians and admins."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where)
    stmt = (select(func.min(S.session_date), func.max(S.session_date))
            .join(first, first.c.episode_id == S.episode_id).where(LIVE_SESSIONS))
    return tuple(session.connection().execute(stmt).one())


def _is_reported(item: str):
    """Return whether a session reports the item, in SQL: recorded (a code not as an empty text) and applicable."""
    column = S.__table__.c[item]
    conditions = [column.is_not(None)]
    if item in STRICTA_CODES:
        conditions.append(column != "")
    if item in ESTIM_ITEMS:
        conditions.append(S.technique == ESTIM_TECHNIQUE)
    return and_(*conditions)


VALUE_COLUMNS = ["technique", "item", "value", "sessions"]


def item_values(session: Session, *, actor: Actor, where: OutcomeFilter = EVERY_EPISODE) -> pd.DataFrame:
    """Return, per technique of the session, STRICTA item and stored value (not missing) of the live sessions of
    the filtered episodes, the `sessions` storing it: `VALUE_COLUMNS`, counted in the database (an item holds a
    few values: codes, and numbers as clinicians record them). Managers, clinicians and admins."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where)
    parts = []
    for item in STRICTA_ITEMS:
        column = S.__table__.c[item]
        stmt = (select(S.technique, column, func.count())
                .join(first, first.c.episode_id == S.episode_id)
                .where(LIVE_SESSIONS, column.is_not(None))
                .group_by(S.technique, column))
        part = read_frame(session, stmt, ["technique", "value", "sessions"])
        parts.append(part.astype({"value": object, "sessions": int}).assign(item=item)[VALUE_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def stricta_counts(session: Session, *, actor: Actor,
                   where: OutcomeFilter = EVERY_EPISODE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (`completeness_counts`, `item_values`) of the filtered episodes: what analytics.stricta
    `table_from_counts` makes the STRICTA table of (`python -m db summary --stricta`). Managers, clinicians and
    admins."""
    return (completeness_counts(session, actor=actor, where=where),
            item_values(session, actor=actor, where=where))


def sample_needling(session: Session, *, actor: Actor, where: OutcomeFilter = EVERY_EPISODE,
                    episodes: int | None = None, columns: tuple[str, ...] = STRICTA_ITEMS,
                    up_to: int | None = None) -> Iterator[pd.DataFrame]:
    """Return the parts, each of whole episodes, of `session_id` and the `columns` (of the sessions table: the
    needling record's items by default) of each live session of the filtered episodes, in episode and session
    order; with `episodes`, of the same fixed sample of at most that many as `db.queries.outcome_sessions` reads;
    with `up_to`, only sessions numbered up to it. Read as they are iterated, within `session`. Managers,
    clinicians and admins."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where, sample=episodes)
    columns = list(dict.fromkeys(["episode_id", *columns]))  # the episode, to cut the parts between episodes
    stmt = (select(S.id.label("session_id"), *(S.__table__.c[column] for column in columns))
            .join(first, first.c.episode_id == S.episode_id)
            .where(LIVE_SESSIONS, S.session_number <= up_to if up_to is not None else true())
            .order_by(S.episode_id, S.session_number))
    return whole_groups(read_frame_parts(session, stmt, ["session_id", *columns]), "episode_id")


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


def session_needling(session: Session, *, actor: Actor, session_id: int) -> dict:
    """Return one live session's needling record, item by item as stored (None: not recorded; `adjuncts` as codes
    joined by ';'): the correction form starts from it and writes every item back, so it is read fresh, never
    from a cache. Clinicians and admins, as they correct sessions; ValueError for no such live session."""
    require_role(actor, CLINICAL_WRITERS, "correct clinical data")
    row = session.execute(select(*NEEDLING_COLUMNS).where(S.id == session_id, LIVE_SESSIONS)).first()
    if row is None:
        raise ValueError(f"session: no session {session_id}")
    return dict(row._mapping)


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
