"""Every read a page makes: the engine, the cached analyses and loaders, and the plain reads that must be fresh.

With `dashboard.actions` (every write) this is the page-data layer: views and widgets open no database session and
call no `db` or `analytics` function themselves; they call these and draw. This is the one place that touches
st.cache_*. Caches are shared by every user of the process, so each cached loader takes the acting user as an
argument: the cache key then includes who asked, and the db functions underneath check what that actor may read.
The database URL is in every key too (`_on_this_database`); a write clears every cache (`clear_after_write`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlmodel import Session

from analytics import (
    clinicians,
    comparison,
    comparison_sentences,
    effect_sizes,
    outcomes,
    responders,
    safety,
    survival,
)
from clinic.outcomes import ResponderRule, SafetyCounts
from clinic.vocabulary import ANSWER_SESSION
from dashboard import charts
from db import accounts, audit, corrections, patient_search, queries
from db.access import Actor
from db.audit import AuditFilter
from db.engine import database_url, make_engine, migrate
from db.queries import OutcomeFilter

# The technique page's analyses of every measurement run on at most this many of the filtered episodes, a fixed
# sample (db.queries.outcome_sessions) beyond it: at a network's million sessions, loading them all took 15 s and
# the adjusted comparison did not finish within minutes (bench/RESULTS.md). The adjusted comparison's models, on
# every session of every episode, take the smaller sample; responders, time to response, safety shares and the
# clinician model (one row per episode) share the larger one.
SAMPLE_EPISODES = 20_000
COMPARISON_EPISODES = 3_000


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    migrate(url)  # a no-op when the schema is current; makes a fresh install usable at once
    return make_engine(url)


def engine() -> Engine:
    """Return the process's engine for DATABASE_URL."""
    return _engine(database_url())


def _on_this_database(load: Callable) -> Callable:
    """Return the cached `load(url, …)` called with DATABASE_URL first: one database's results are never shown
    for another's (a process's caches are shared, and the tests run many databases in one process)."""

    @functools.wraps(load)
    def on_this_database(*args, **kwargs):
        return load(database_url(), *args, **kwargs)

    return on_this_database


def _read(read: Callable, **arguments):
    """Return `read(session, **arguments)` from one short session; not cached, so always what is stored now."""
    with Session(engine()) as session:
        return read(session, **arguments)


def clear_after_write() -> None:
    """Forget every cached read, so the next run shows what was just written."""
    st.cache_data.clear()


# One patient ---------------------------------------------------------------------------------------------------------


@_on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def patient_record(url: str, actor: Actor, patient_id: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return one patient's (episodes, sessions, side effects one row each), if the actor may read them."""
    with Session(_engine(url)) as session:
        return (
            queries.episodes(session, actor=actor, patient_id=patient_id),
            queries.patient_sessions(session, actor=actor, patient_id=patient_id),
            queries.patient_side_effects(session, actor=actor, patient_id=patient_id),
        )


@_on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def episode_progress(url: str, actor: Actor, patient_id: int, episode_id: int) -> dict:
    """Return one episode's `improvement` per session, its `figure` and its `sentence` in words (addressed to the
    patient when the actor is one), if the actor may read the patient's record.

    The chart is cached too: plotly takes about 50 ms to build it, a third of the patient page's time.
    """
    _, sessions, _ = patient_record(actor, patient_id)
    improvement = outcomes.cumulative_improvement(sessions[sessions["episode_id"] == episode_id])
    return {
        "improvement": improvement,
        "figure": charts.patient_progress_figure(improvement),
        "sentence": outcomes.progress_sentence(improvement, to_patient=actor.role == "patient"),
    }


def find_patients(actor: Actor, search: str, *, limit: int = patient_search.PICKER_LIMIT,
                  include: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return up to `limit` patients whose id starts with, or name contains, `search`; those in `include` too."""
    return _read(patient_search.find_patients, actor=actor, search=search, limit=limit, include=include)


def last_session_defaults(actor: Actor, patient_id: int) -> dict:
    """Return the technique, muscles, scale, condition and body region of the patient's latest session."""
    return _read(queries.last_session_defaults, actor=actor, patient_id=patient_id)


def session_history(actor: Actor, session_id: int) -> list[str]:
    """Return a session's corrections in plain words, oldest first."""
    return _read(corrections.session_history, actor=actor, session_id=session_id)


# The clinic: the technique page ------------------------------------------------------------------------------------


@_on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def filter_choices(url: str, actor: Actor) -> dict[str, list[str]]:
    """Return the values of the clinic-wide filters (conditions, body regions, clinicians)."""
    with Session(_engine(url)) as session:
        return queries.filter_choices(session, actor=actor)


@_on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def episode_count(url: str, actor: Actor, where: OutcomeFilter) -> int:
    """Return how many episodes of care the filter selects."""
    with Session(_engine(url)) as session:
        return queries.count_episodes(session, actor=actor, where=where)


@_on_this_database
@st.cache_data(show_spinner="Computing outcomes…", ttl=3600)
def technique_outcomes(url: str, actor: Actor, where: OutcomeFilter) -> dict:
    """Return what every view of the technique page shows, aggregated in the database: the technique `curve`, its
    `summary` table and the `best` technique by session 4 in words, the `serious` side effects to review and the
    `excluded` episodes."""
    with Session(_engine(url)) as session:
        curve = outcomes.technique_curve(queries.technique_moments(session, actor=actor, where=where))
        return {
            "curve": curve,
            "summary": outcomes.summary_table(curve),
            "best": outcomes.best_by_session_sentence(curve),
            # Alerts ignore the filters: a serious event must not hide behind a condition filter.
            "serious": queries.serious_events(session, actor=actor),
            "excluded": queries.excluded_episodes(session, actor=actor, where=where),
        }


@_on_this_database
@st.cache_data(show_spinner="Counting responders…", ttl=3600)
def responders_at_last_session(url: str, actor: Actor, where: OutcomeFilter, rule: ResponderRule) -> pd.DataFrame:
    """Return responder shares at the last session of every filtered episode, classified by `rule`."""
    with Session(_engine(url)) as session:
        last = outcomes.last_from_pain(queries.episode_last_pain(session, actor=actor, where=where))
    return outcomes.responder_table(outcomes.count_responders(last, rule=rule))


@_on_this_database
@st.cache_data(show_spinner="Loading the measurements of the filtered episodes…", ttl=3600)
def outcome_improvement(url: str, actor: Actor, where: OutcomeFilter, episodes: int) -> pd.DataFrame:
    """Return cumulative improvement per session of at most `episodes` of the filtered episodes (a fixed sample)."""
    with Session(_engine(url)) as session:
        sessions = queries.outcome_sessions(session, actor=actor, where=where, episodes=episodes)
    if sessions.empty:
        return sessions
    return outcomes.cumulative_improvement(sessions)


@_on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def responder_details(url: str, actor: Actor, where: OutcomeFilter, rule: ResponderRule, episodes: int) -> dict:
    """Return, for at most `episodes` of the filtered episodes: the share `reached` by each session (Kaplan–Meier),
    the cumulative responder `curve` and the `effect_sizes` at session 4 and at the last session."""
    improvement = outcome_improvement(actor, where, episodes)
    return {
        "reached": survival.reached_summary(improvement, rule),
        "curve": responders.responder_curve(improvement, rule),
        "effect_sizes": effect_sizes.effect_sizes(improvement, ANSWER_SESSION),
    }


@_on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def time_to_response(url: str, actor: Actor, where: OutcomeFilter, rule: ResponderRule, episodes: int) -> dict:
    """Return the `kaplan_meier` curve of sessions until a 30 % improvement and each technique's `medians`."""
    times = survival.time_to_response(outcome_improvement(actor, where, episodes), rule=rule)
    return {"kaplan_meier": survival.kaplan_meier(times), "medians": survival.median_sessions(times)}


@_on_this_database
@st.cache_data(show_spinner="Fitting the adjusted models…", ttl=3600)
def adjusted_comparison(url: str, actor: Actor, where: OutcomeFilter, episodes: int) -> dict:
    """Return the technique comparisons of the mixed model then the ANCOVA (`both`), the mixed model's `sentence`
    and the models' `fit_notes`."""
    improvement = outcome_improvement(actor, where, episodes)
    mixed, ancova = comparison.mixed_model_comparison(improvement), comparison.ancova_comparison(improvement)
    return {
        "both": pd.concat([mixed, ancova], ignore_index=True),
        "sentence": comparison_sentences.comparison_sentence(mixed),
        "fit_notes": mixed.attrs.get("fit_notes", []) + ancova.attrs.get("fit_notes", []),
    }


@_on_this_database
@st.cache_data(show_spinner="Fitting the clinician model…", ttl=3600)
def clinician_benchmark(
    url: str, actor: Actor, where: OutcomeFilter, episodes: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (caterpillar, funnel) tables of clinicians' adjusted improvement for the filter."""
    improvement = outcome_improvement(actor, where, episodes)
    return clinicians.clinician_benchmark(improvement), clinicians.clinician_funnel(improvement)


@_on_this_database
@st.cache_data(show_spinner="Counting side effects…", ttl=3600)
def safety_counts(url: str, actor: Actor, where: OutcomeFilter) -> SafetyCounts:
    """Return the side-effect counts of every filtered session (the technique filter applies to sessions)."""
    with Session(_engine(url)) as session:
        return queries.safety_events(session, actor=actor, where=where)


@_on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def safety_tables(url: str, actor: Actor, where: OutcomeFilter) -> dict:
    """Return the safety section's tables from every filtered session: the `rates` per 100 sessions; the
    `serious` ones beside the published rates, with their `serious_sentence`; the mild ones beside the
    `published` rates; the rate of each side effect `by_type`; the `summary` to download; the `shares` of
    sessions with a side effect."""
    counts = safety_counts(actor, where)
    rates = safety.rate_table(counts.events, counts.sessions)
    serious = safety.serious_vs_published(rates)
    by_type = rates[(rates["severity"] == safety.ANY) & (rates["side_effect"] != safety.ANY)
                    & (rates["technique"] != safety.ALL)]
    return {
        "rates": rates,
        "serious": serious,
        "serious_sentence": safety.serious_sentence(serious),
        "published": safety.safety_vs_published(rates),
        "by_type": by_type.rename(columns={"side_effect": "code"}),
        "summary": safety.summary_table(counts),
        "shares": safety.share_table(counts.sessions_with, counts.sessions),
    }


# Administration and sign-in (not cached: an admin acts on what is stored now) ---------------------------------------


def accounts_table(actor: Actor) -> pd.DataFrame:
    """Return every account without its password hash (admins)."""
    return _read(accounts.users, actor=actor)


def audit_events(actor: Actor, where: AuditFilter, limit: int) -> pd.DataFrame:
    """Return at most `limit` audit rows the filter selects, newest first, their values as readable changes."""
    return _read(audit.events, actor=actor, where=where, limit=limit)


def deleted_sessions(actor: Actor) -> pd.DataFrame:
    """Return the deleted sessions with who deleted them, when and why (admins)."""
    return _read(corrections.deleted_sessions, actor=actor)


def session_ended(actor: Actor, logged_in_at: datetime) -> str | None:
    """Return why the actor's session that began at `logged_in_at` is over ("disabled", "ended"), or None."""
    return _read(accounts.session_ended, actor=actor, logged_in_at=logged_in_at)
