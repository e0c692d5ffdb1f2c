"""The one place that touches st.cache_*: the engine, and cached loaders keyed by database URL and actor.

Caches are shared by every user of the process, so each loader takes the acting user as an argument: the cache
key then includes who asked, and the db functions underneath check what that actor may read.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy import Engine
from sqlmodel import Session

from analytics import clinicians, comparison, outcomes
from clinic.outcomes import SafetyCounts
from dashboard import charts
from db import queries
from db.access import Actor
from db.engine import database_url, make_engine, migrate

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


@st.cache_data(show_spinner=False, ttl=3600)
def patient_record(url: str, actor: Actor, patient_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return one patient's (episodes, sessions), if the actor may read them."""
    with Session(_engine(url)) as session:
        return (
            queries.episodes(session, actor=actor, patient_id=patient_id),
            queries.patient_sessions(session, actor=actor, patient_id=patient_id),
        )


@st.cache_data(show_spinner=False, ttl=3600)
def episode_progress(url: str, actor: Actor, patient_id: int, episode_id: int) -> tuple[pd.DataFrame, go.Figure]:
    """Return one episode's cumulative improvement and its chart, if the actor may read the patient's record.

    The chart is cached too: plotly takes about 50 ms to build it, a third of the patient page's time.
    """
    _, sessions = patient_record(url, actor, patient_id)
    improvement = outcomes.cumulative_improvement(sessions[sessions["episode_id"] == episode_id])
    return improvement, charts.patient_progress_figure(improvement)


@st.cache_data(show_spinner="Computing outcomes…", ttl=3600)
def technique_outcomes(url: str, actor: Actor, where: queries.OutcomeFilter) -> dict[str, pd.DataFrame]:
    """Return the tables every view of the technique page shows, aggregated in the database."""
    with Session(_engine(url)) as session:
        curve = outcomes.technique_curve(queries.technique_moments(session, actor=actor, where=where))
        return {
            "curve": curve,
            # Alerts ignore the filters: a serious event must not hide behind a condition filter.
            "serious": queries.serious_events(session, actor=actor),
            "excluded": queries.excluded_episodes(session, actor=actor, where=where),
        }


@st.cache_data(show_spinner="Counting responders…", ttl=3600)
def responders(url: str, actor: Actor, where: queries.OutcomeFilter, rule: outcomes.ResponderRule) -> pd.DataFrame:
    """Return responder shares at the last session of every filtered episode, classified by `rule`."""
    with Session(_engine(url)) as session:
        last = outcomes.last_from_pain(queries.episode_last_pain(session, actor=actor, where=where))
        return outcomes.responder_table(outcomes.count_responders(last, rule=rule))


@st.cache_data(show_spinner="Counting side effects…", ttl=3600)
def safety_counts(url: str, actor: Actor, where: queries.OutcomeFilter) -> SafetyCounts:
    """Return the side-effect counts of every filtered session (the technique filter applies to sessions)."""
    with Session(_engine(url)) as session:
        return queries.safety_events(session, actor=actor, where=where)


@st.cache_data(show_spinner=False, ttl=3600)
def filter_choices(url: str, actor: Actor) -> dict[str, list[str]]:
    """Return the values of the clinic-wide filters (conditions, body regions, clinicians)."""
    with Session(_engine(url)) as session:
        return queries.filter_choices(session, actor=actor)


@st.cache_data(show_spinner=False, ttl=3600)
def episode_count(url: str, actor: Actor, where: queries.OutcomeFilter) -> int:
    """Return how many episodes of care the filter selects."""
    with Session(_engine(url)) as session:
        return queries.count_episodes(session, actor=actor, where=where)


@st.cache_data(show_spinner="Loading the measurements of the filtered episodes…", ttl=3600)
def outcome_improvement(url: str, actor: Actor, where: queries.OutcomeFilter, episodes: int) -> pd.DataFrame:
    """Return cumulative improvement per session of at most `episodes` of the filtered episodes (a fixed sample)."""
    with Session(_engine(url)) as session:
        sessions = queries.outcome_sessions(session, actor=actor, where=where, episodes=episodes)
    if sessions.empty:
        return sessions
    return outcomes.cumulative_improvement(sessions)


@st.cache_data(show_spinner="Fitting the adjusted models…", ttl=3600)
def adjusted_comparison(
    url: str, actor: Actor, where: queries.OutcomeFilter, episodes: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (mixed model, ANCOVA) technique comparisons for the filter; fit notes are in each frame's attrs."""
    improvement = outcome_improvement(url, actor, where, episodes)
    return comparison.mixed_model_comparison(improvement), comparison.ancova_comparison(improvement)


@st.cache_data(show_spinner="Fitting the clinician model…", ttl=3600)
def clinician_benchmark(
    url: str, actor: Actor, where: queries.OutcomeFilter, episodes: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (caterpillar, funnel) tables of clinicians' adjusted improvement for the filter."""
    improvement = outcome_improvement(url, actor, where, episodes)
    return clinicians.clinician_benchmark(improvement), clinicians.clinician_funnel(improvement)


def clear_after_write() -> None:
    """Forget every cached read, so the next run shows what was just written."""
    st.cache_data.clear()
