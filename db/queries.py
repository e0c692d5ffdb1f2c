"""Reads. Each takes the caller's Session and returns plain data (DataFrames, dicts), never live ORM rows.

The clinic-wide figures are aggregated in SQL so a page costs the same whatever the size of the database; the
aggregates are the same sums `analytics.outcomes` builds from per-session rows, and tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date

import pandas as pd
from sqlalchemy import BigInteger, and_, cast, func, literal, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from clinic.outcomes import EXCLUDED_BASELINE_ZERO, EXCLUDED_SINGLE_SESSION, MOMENT_COLUMNS, SafetyCounts
from clinic.vocabulary import ALERT_SEVERITIES
from db import rollups
from db.access import AGGREGATE_READERS, CLINICAL_WRITERS, IDENTIFIED_READERS, Actor, require_patient, require_role
from db.frames import read_frame, read_frame_parts
from db.models import LIVE_SESSIONS, Episode, Patient, SideEffect, TreatmentSession, User
from db.report_models import DiaryEntry, PatientSideEffect

S = TreatmentSession


@dataclass(frozen=True)
class OutcomeFilter:
    """Which episodes the clinic-wide figures cover. An empty tuple means no restriction.

    Technique, clinician and the date range are those of the episode's first session, like the technique an
    episode is counted under.
    """

    conditions: tuple[str, ...] = ()
    body_regions: tuple[str, ...] = ()
    clinicians: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None

    def dates_in_words(self) -> str:
        """Return the first-session date range in words as `first_sessions` applies it ("" when there is none):
        a range open at one end reads so, not as the one day it starts or ends on."""
        start, end = self.start, self.end
        if start and end:
            return f"first session {start} to {end}" if start != end else f"first session on {start}"
        if start:
            return f"first session on or after {start}"
        return f"first session on or before {end}" if end else ""


def _spread(episode_id):
    """Return an episode id scrambled (Knuth's multiplicative hash mod 2**32): ordering by it spreads a sample."""
    return (cast(episode_id, BigInteger) * literal(2654435761, BigInteger)) % literal(2**32, BigInteger)


def first_sessions(where: OutcomeFilter, sample: int | None = None):
    """Return a subquery of the episode ids of the filtered episodes (by their live first session).

    With `sample`, at most that many of them: those first in `_spread` order, the same ones every time and spread
    over the whole range of ids (and so of dates), not the oldest or the newest.
    """
    first = aliased(TreatmentSession, name="first_session")
    stmt = select(first.episode_id).where(first.session_number == 1, first.deleted_at.is_(None))
    if where.conditions or where.body_regions:  # every session has its episode: join only to filter by it
        stmt = stmt.join(Episode, Episode.id == first.episode_id)
    if where.conditions:
        stmt = stmt.where(Episode.condition.in_(where.conditions))
    if where.body_regions:
        stmt = stmt.where(Episode.body_region.in_(where.body_regions))
    if where.techniques:
        stmt = stmt.where(first.technique.in_(where.techniques))
    if where.clinicians:
        chosen = select(User.id).where(User.username.in_(where.clinicians))
        stmt = stmt.where(first.clinician_id.in_(chosen))
    if where.start:
        stmt = stmt.where(first.session_date >= where.start)
    if where.end:
        stmt = stmt.where(first.session_date <= where.end)
    if sample is not None:
        stmt = stmt.order_by(_spread(first.episode_id)).limit(sample)
    return stmt.subquery("first_sessions")


def technique_moments(session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter()) -> pd.DataFrame:
    """Return the technique curve's sums (`MOMENT_COLUMNS`, as analytics.outcomes.curve_moments), from roll-ups."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    c = rollups.cells(where)
    stmt = (
        select(c.c.technique, c.c.session_number, *(func.sum(c.c[m]) for m in _MOMENT_MEASURES))
        .group_by(c.c.technique, c.c.session_number)
        .having(func.sum(c.c.curve_sessions) > 0)
        .order_by(c.c.technique, c.c.session_number)
    )
    return read_frame(session, stmt, MOMENT_COLUMNS)


_MOMENT_MEASURES = ("curve_sessions", "sum_pain", "sum_improvement", "sum_pct", "sum_pct_squared")


def episode_last_pain(session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter()) -> pd.DataFrame:
    """Return one row per filtered episode: technique, sessions, and the first and last session's scale and pain.

    Columns `episode_id, technique, sessions, baseline_scale, baseline_pain, last_scale, last_pain`: the raw facts
    analytics.outcomes.last_from_pain turns into improvement, so the responder rule is defined in one place only.
    """
    return read_frame(session, _episode_last_pain(actor, where))


def episode_last_pain_parts(session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter()
                            ) -> Iterator[pd.DataFrame]:
    """Yield `episode_last_pain`'s rows a part at a time (a network's 200,000 episodes are never held at once)."""
    return read_frame_parts(session, _episode_last_pain(actor, where))


def _episode_last_pain(actor: Actor, where: OutcomeFilter):
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first, last, later = (aliased(S, name=n) for n in ("episode_first", "episode_last", "episode_later"))
    # One index lookup per episode: 2.6 times faster on SQLite than grouping every session (1M sessions: 0.8 s).
    number = (
        select(func.max(later.session_number))
        .where(later.episode_id == first.episode_id, later.deleted_at.is_(None))
        .scalar_subquery()
    )
    stmt = (
        select(first.episode_id, first.technique, last.session_number.label("sessions"),
               first.pain_scale.label("baseline_scale"), first.pain_before.label("baseline_pain"),
               last.pain_scale.label("last_scale"), last.pain_before.label("last_pain"))
        .join(last, and_(last.episode_id == first.episode_id, last.session_number == number,
                         last.deleted_at.is_(None)))
        .where(first.session_number == 1, first.deleted_at.is_(None))
    )
    if where != OutcomeFilter():  # unfiltered, every live first session is chosen: no join (a third of the time)
        chosen = first_sessions(where)
        stmt = stmt.join(chosen, chosen.c.episode_id == first.episode_id)
    return stmt


def excluded_episodes(session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter()) -> pd.DataFrame:
    """Return per technique and reason the episodes left out (see analytics.outcomes.excluded_episodes)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    c = rollups.cells(where)
    stmt = (select(c.c.technique, func.sum(c.c.baseline_zero).label(EXCLUDED_BASELINE_ZERO),
                   func.sum(c.c.single_session).label(EXCLUDED_SINGLE_SESSION))
            .where(c.c.session_number == 1)  # an episode is counted at its first session (db.rollups.detail_rows)
            .group_by(c.c.technique))
    sums = read_frame(session, stmt)
    long = sums.melt(id_vars="technique", var_name="reason", value_name="episodes")
    long = long[long["episodes"] > 0].astype({"episodes": int})
    return long[["technique", "episodes", "reason"]].sort_values(["technique", "reason"], ignore_index=True)


def safety_events(session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter()) -> SafetyCounts:
    """Return the counts of the safety figures (see clinic.outcomes.SafetyCounts) for the filter, every session.

    A side effect belongs to the technique of its session. The technique filter selects sessions by their own
    technique, whatever technique their episode began with; the other filters select episodes.
    """
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    episodes = replace(where, techniques=())

    def scoped(stmt):
        if episodes != OutcomeFilter():
            chosen = first_sessions(episodes)
            stmt = stmt.join(chosen, chosen.c.episode_id == S.episode_id)
        if where.techniques:
            stmt = stmt.where(S.technique.in_(where.techniques))
        return stmt.where(LIVE_SESSIONS)

    with_effect = select(S.technique).select_from(SideEffect).join(S, S.id == SideEffect.session_id)
    sessions = read_frame(session, scoped(select(S.technique, func.count().label("sessions")).select_from(S))
                      .group_by(S.technique))
    events = read_frame(session, scoped(with_effect.add_columns(SideEffect.code, SideEffect.severity,
                                                           func.count().label("events")))
                    .group_by(S.technique, SideEffect.code, SideEffect.severity))
    distinct = func.count(func.distinct(S.id)).label("sessions_with")
    by_severity = read_frame(session, scoped(with_effect.add_columns(SideEffect.severity, distinct))
                         .group_by(S.technique, SideEffect.severity))
    any_severity = read_frame(session, scoped(with_effect.add_columns(distinct)).group_by(S.technique))
    with_any = pd.concat([by_severity, any_severity.assign(severity="any")], ignore_index=True)
    return SafetyCounts(
        events=events.astype({"events": int}),
        sessions=sessions.astype({"sessions": int}),
        sessions_with=with_any[["technique", "severity", "sessions_with"]].astype({"sessions_with": int}),
    )


def serious_events(session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter()) -> pd.DataFrame:
    """Return the significant or serious side effects not yet reviewed, newest session first: `side_effect_id,
    session_date, technique, code, severity, clinician, patient_id, source`.

    `source` is 'clinician' (recorded in the session; review with db.writes.mark_reviewed) or 'patient' (reported in
    the patient's diary after it, issue #17; review with db.patient_reports.review_patient_effect); `side_effect_id`
    is the id within its source.
    """
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where)

    def alerts(effect, joined) -> pd.DataFrame:
        stmt = (
            select(effect.id.label("side_effect_id"), S.session_date, S.technique, effect.code, effect.severity,
                   User.username.label("clinician"), Patient.pseudonym.label("patient_id"))
            .select_from(joined)
            .join(first, first.c.episode_id == S.episode_id)
            .join(Episode, Episode.id == S.episode_id)
            .join(Patient, Patient.id == Episode.patient_id)
            .outerjoin(User, User.id == S.clinician_id)
            .where(effect.severity.in_(ALERT_SEVERITIES), effect.reviewed_at.is_(None), LIVE_SESSIONS)
        )
        return read_frame(session, stmt)

    recorded = alerts(SideEffect, S.__table__.join(SideEffect.__table__, SideEffect.session_id == S.id))
    reported = alerts(PatientSideEffect, S.__table__.join(DiaryEntry.__table__, DiaryEntry.session_id == S.id)
                      .join(PatientSideEffect.__table__, PatientSideEffect.entry_id == DiaryEntry.id))
    frame = pd.concat([recorded.assign(source="clinician"), reported.assign(source="patient")], ignore_index=True)
    frame = frame.sort_values(["session_date", "source", "side_effect_id"], ascending=[False, True, True],
                              kind="stable", ignore_index=True)
    return frame.astype({"side_effect_id": int}) if len(frame) else frame


def conditions(session: Session, *, actor: Actor) -> list[str]:
    """Return the conditions that have episodes, sorted."""
    require_role(actor, AGGREGATE_READERS, "list the clinic's conditions")
    stmt = select(Episode.condition).where(Episode.condition.is_not(None)).distinct().order_by(Episode.condition)
    return list(session.scalars(stmt))


def episodes(session: Session, *, actor: Actor, patient_id: int) -> pd.DataFrame:
    """Return the patient's episodes of care: id, condition, body region, sessions."""
    require_patient(actor, patient_id)
    stmt = (
        select(Episode.id, Episode.condition, Episode.body_region, func.count(S.id).label("sessions"))
        .outerjoin(S, and_(S.episode_id == Episode.id, LIVE_SESSIONS))
        .where(Episode.patient_id == patient_id)
        .group_by(Episode.id, Episode.condition, Episode.body_region)
        .order_by(Episode.id)
    )
    return read_frame(session, stmt)


SIDE_EFFECT_COLUMNS = ["session_id", "code", "severity"]


def _side_effects_frame(session: Session, scoped) -> pd.DataFrame:
    """Return the side effects of live sessions `scoped(stmt)` selects, one row each, in session then entry order."""
    stmt = (
        select(SideEffect.session_id, SideEffect.code, SideEffect.severity)
        .join(S, S.id == SideEffect.session_id)
        .where(LIVE_SESSIONS)
        .order_by(SideEffect.session_id, SideEffect.id)
    )
    return read_frame(session, scoped(stmt), SIDE_EFFECT_COLUMNS)


def patient_side_effects(session: Session, *, actor: Actor, patient_id: int) -> pd.DataFrame:
    """Return the side effects of one patient's live sessions: `session_id, code, severity`, one row each."""
    require_patient(actor, patient_id)
    return _side_effects_frame(
        session, lambda stmt: stmt.join(Episode, Episode.id == S.episode_id).where(Episode.patient_id == patient_id)
    )


def all_side_effects(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return the side effects of every live session: `session_id, code, severity`, one row each."""
    require_role(actor, IDENTIFIED_READERS, "read every patient's sessions")
    return _side_effects_frame(session, lambda stmt: stmt)


def outcome_side_effects(
    session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter(), episodes: int | None = None
) -> pd.DataFrame:
    """Return the side effects of the sessions `outcome_sessions` returns: `session_id, code, severity`.

    The episodes (and their sample) are chosen in SQL, so a sample reads only its own side effects (issue #15:
    reading the whole table, 272k rows at 1M sessions, to keep a sample's few).
    """
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where, sample=episodes)
    return _side_effects_frame(session, lambda stmt: stmt.join(first, first.c.episode_id == S.episode_id))


SESSION_COLUMNS = [
    S.id.label("session_id"),
    S.episode_id,
    S.session_number,
    S.session_date,
    S.technique,
    S.pain_scale,
    S.pain_before,
    S.pain_after,
    S.muscles,
    S.twitch_response,
    S.notes,
    User.username.label("clinician"),
    Episode.condition,
    Episode.body_region,
    Patient.pseudonym.label("patient_id"),
]


def _sessions_select():
    return (
        select(*SESSION_COLUMNS)
        .join(Episode, Episode.id == S.episode_id)
        .join(Patient, Patient.id == Episode.patient_id)
        .outerjoin(User, User.id == S.clinician_id)
    )


def patient_sessions(session: Session, *, actor: Actor, patient_id: int) -> pd.DataFrame:
    """Return one patient's sessions in episode and session order (their side effects: `patient_side_effects`).

    A patient reading their own record gets it without the clinicians' notes.
    """
    require_patient(actor, patient_id)
    stmt = _sessions_select().where(Patient.id == patient_id, LIVE_SESSIONS).order_by(S.episode_id, S.session_number)
    frame = read_frame(session, stmt)
    if actor.role not in IDENTIFIED_READERS:
        frame["notes"] = ""
    return frame


def all_sessions(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every live session in patient, date and entry order (the interchange export's); `all_side_effects`
    has their side effects."""
    require_role(actor, IDENTIFIED_READERS, "read every patient's sessions")
    stmt = _sessions_select().where(LIVE_SESSIONS).order_by(Patient.pseudonym, S.session_date, S.id)
    return read_frame(session, stmt)


def last_session_defaults(session: Session, *, actor: Actor, patient_id: int) -> dict:
    """Return the patient's latest session's technique, muscles, scale, pain before, condition and body region."""
    require_role(actor, CLINICAL_WRITERS, "record sessions")
    row = session.execute(
        select(S.technique, S.muscles, S.pain_scale, S.pain_before, Episode.condition, Episode.body_region)
        .join(Episode, Episode.id == S.episode_id)
        .where(Episode.patient_id == patient_id, LIVE_SESSIONS)
        .order_by(S.session_date.desc(), S.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row else {}


def clinicians(session: Session, *, actor: Actor) -> list[str]:
    """Return the usernames of active clinicians, sorted."""
    require_role(actor, AGGREGATE_READERS, "list clinicians")
    stmt = select(User.username).where(User.role == "clinician", User.is_active).order_by(User.username)
    return list(session.scalars(stmt))


def count_sessions(session: Session, *, actor: Actor) -> int:
    """Return the number of live sessions stored."""
    require_role(actor, AGGREGATE_READERS, "count sessions")
    return session.execute(select(func.count()).select_from(S).where(LIVE_SESSIONS)).scalar_one()


def count_episodes(session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter()) -> int:
    """Return how many episodes the filter selects (those with a live first session)."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    return session.execute(select(func.count()).select_from(first_sessions(where))).scalar_one()


def outcome_sessions(
    session: Session, *, actor: Actor, where: OutcomeFilter = OutcomeFilter(), episodes: int | None = None
) -> pd.DataFrame:
    """Return one row per live session of the filtered episodes, for the models that need every measurement.

    Columns: episode_id, patient_id (pseudonymous), session_number, session_date, technique (of the session),
    pain_scale, pain_before, condition, body_region, clinician (side effects: `outcome_side_effects`). No notes, no
    names. With `episodes`, the sessions of at most that many episodes: a fixed sample spread over them all (see
    `first_sessions`), for the analyses that would take minutes on a network's every measurement.
    """
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    first = first_sessions(where, sample=episodes)
    stmt = (
        select(S.id.label("session_id"), S.episode_id, Patient.pseudonym.label("patient_id"), S.session_number,
               S.session_date, S.technique, S.pain_scale, S.pain_before, Episode.condition, Episode.body_region,
               User.username.label("clinician"))
        .join(first, first.c.episode_id == S.episode_id)
        .join(Episode, Episode.id == S.episode_id)
        .join(Patient, Patient.id == Episode.patient_id)
        .outerjoin(User, User.id == S.clinician_id)
        .where(LIVE_SESSIONS)
        .order_by(S.episode_id, S.session_number)
    )
    return read_frame(session, stmt)


def filter_choices(session: Session, *, actor: Actor) -> dict[str, list[str]]:
    """Return the values each clinic-wide filter can take: conditions, body regions and clinicians in use."""
    require_role(actor, AGGREGATE_READERS, "list the clinic's filters")
    regions = select(Episode.body_region).where(Episode.body_region.is_not(None)).distinct()
    return {
        "conditions": conditions(session, actor=actor),
        "body_regions": sorted(session.scalars(regions)),
        "clinicians": clinicians(session, actor=actor),
    }
