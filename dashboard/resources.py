"""Every read a page makes: the engine, the cached analyses and loaders, and the plain reads that must be fresh.

With `dashboard.actions` (every write) this is the page-data layer: views and widgets open no database session and
call no `db` or `analytics` function themselves; they call these and draw. This is the one place that touches
st.cache_*. Caches are shared by every user of the process, so each cached loader takes the acting user as an
argument: the cache key then includes who asked, and the db functions underneath check what that actor may read.
The database URL and the version of its data are in every key too (`on_this_database`), so a write made anywhere is
read at the next run; a write made here also clears every cache (`clear_after_write`), freeing what it held.
The technique page's analyses are the exception: computed once for everyone allowed to read them, kept with the
version of the data they rest on and computed again when it changes, on a worker thread so that a page never waits
for a model (`_clinic_wide`, dashboard.background); the role is checked before one is served.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
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
    missing_data,
    outcomes,
    responders,
    safety,
    survival,
)
from clinic.outcomes import ResponderRule
from clinic.vocabulary import ANSWER_SESSION
from dashboard import background, charts, charts_science, clinic_wide
from db import accounts, audit, corrections, episodes, memory, patient_search, queries
from db.access import Actor
from db.audit import AuditFilter
from db.engine import database_url
from db.queries import OutcomeFilter

# The technique page's analyses of every measurement run on at most this many of the filtered episodes, a fixed
# sample (db.queries.outcome_sessions) beyond it: at a network's million sessions, loading them all took 15 s and
# the adjusted comparison did not finish within minutes (bench/RESULTS.md). The adjusted comparison's models, on
# every session of every episode, take the smaller sample; responders, time to response, safety shares and the
# clinician model (one row per episode) share the larger one.
SAMPLE_EPISODES = 20_000
COMPARISON_EPISODES = 3_000
PROGRESS_KEPT = 500  # episodes whose progress and chart are kept as built (a chart is tens of kilobytes)


def hold_less_memory() -> None:
    """How this process keeps its memory (db.memory.hold_less): the entrypoint's first step on every run."""
    memory.hold_less()


def engine() -> Engine:
    """Return the process's engine for DATABASE_URL."""
    return clinic_wide.engine(database_url())


def on_this_database(load: Callable) -> Callable:
    """Return the cached `load(url, version, …)` called with DATABASE_URL and the version of its data first
    (clinic_wide.data_version). One database's results are never shown for another's (a process's caches are
    shared, and the tests run many databases in one process); and a write made elsewhere, by another server of a
    clinic network or the command line's import, is read at the next run, where it waited for the cache's hour."""

    @functools.wraps(load)
    def on_this_database(*args, **kwargs):
        url = database_url()
        return load(url, clinic_wide.data_version(url), *args, **kwargs)

    return on_this_database


def _read(read: Callable, **arguments):
    """Return `read(session, **arguments)` from one short session; not cached, so always what is stored now."""
    with Session(engine()) as session:
        return read(session, **arguments)


def clear_after_write() -> None:
    """Forget every cached read, so the next run shows what was just written."""
    st.cache_data.clear()


# One patient ---------------------------------------------------------------------------------------------------------


@on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def patient_record(url: str, version: Hashable, actor: Actor,
                   patient_id: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return one patient's (episodes, sessions, side effects one row each), if the actor may read them."""
    with Session(clinic_wide.engine(url)) as session:
        return (
            queries.episodes(session, actor=actor, patient_id=patient_id),
            queries.patient_sessions(session, actor=actor, patient_id=patient_id),
            queries.patient_side_effects(session, actor=actor, patient_id=patient_id),
        )


def episode_progress(actor: Actor, patient_id: int, episode_id: int) -> dict:
    """Return one episode's `improvement` per session, its `figure` and its `sentence` in words (addressed to the
    patient when the actor is one), if the actor may read the patient's record. Callers only read what it returns.
    """
    url = database_url()
    return _episode_progress(url, clinic_wide.data_version(url), actor, patient_id, episode_id)


@st.cache_resource(show_spinner=False, ttl=3600, max_entries=PROGRESS_KEPT)
def _episode_progress(url: str, version: Hashable, actor: Actor, patient_id: int, episode_id: int) -> dict:
    """Kept as built, per data version (any write makes a new one), and handed out without a copy: plotly takes
    about 50 ms to build the chart, and st.cache_data's copy of it was unpickled and validated again by plotly on
    every run, a third of the patient page's CPU (#15)."""
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
    """Return the technique, muscles, scale, pain before, condition and body region of the patient's latest
    session."""
    return _read(queries.last_session_defaults, actor=actor, patient_id=patient_id)


def session_history(actor: Actor, session_id: int) -> list[str]:
    """Return a session's corrections in plain words, oldest first."""
    return _read(corrections.session_history, actor=actor, session_id=session_id)


# The clinic: the technique page ------------------------------------------------------------------------------------


@on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def filter_choices(url: str, version: Hashable, actor: Actor) -> dict[str, list[str]]:
    """Return the values of the clinic-wide filters (conditions, body regions, clinicians)."""
    with Session(clinic_wide.engine(url)) as session:
        return queries.filter_choices(session, actor=actor)


@on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def episode_count(url: str, version: Hashable, actor: Actor, where: OutcomeFilter) -> int:
    """Return how many episodes of care the filter selects."""
    with Session(clinic_wide.engine(url)) as session:
        return queries.count_episodes(session, actor=actor, where=where)


@on_this_database
@st.cache_data(show_spinner="Computing outcomes…", ttl=3600)
def technique_outcomes(url: str, version: Hashable, actor: Actor, where: OutcomeFilter) -> dict:
    """Return what every view of the technique page shows, aggregated in the database: the technique `curve`, its
    `summary` table and the `best` technique by session 4 in words, the `serious` side effects to review and the
    `excluded` episodes."""
    with Session(clinic_wide.engine(url)) as session:
        curve = outcomes.technique_curve(queries.technique_moments(session, actor=actor, where=where))
        return {
            "curve": curve,
            "summary": outcomes.summary_table(curve),
            "best": outcomes.best_by_session_sentence(curve),
            # Alerts ignore the filters: a serious event must not hide behind a condition filter.
            "serious": queries.serious_events(session, actor=actor),
            "excluded": queries.excluded_episodes(session, actor=actor, where=where),
        }


# The technique page's analyses: one for every user, kept per data version (dashboard.clinic_wide) -----------------


def analyses_settled(timeout: float) -> bool:
    """Return True once no analysis is being computed, False if one still is after `timeout` seconds (for tests and
    the benchmark: a result is awaited by its state, never by a sleep)."""
    return clinic_wide.settled(timeout)


def responders_at_last_session(actor: Actor, where: OutcomeFilter, rule: ResponderRule) -> background.Analysis:
    """Return the responder shares at the last session of every filtered episode, classified by `rule` (`table`),
    and their `figure`."""
    return clinic_wide.clinic_wide("responders", actor, _responders, where, rule)


def _responders(reading: clinic_wide.Reading, where: OutcomeFilter, rule: ResponderRule) -> dict:
    with Session(reading.engine) as session:
        parts = queries.episode_last_pain_parts(session, actor=reading.actor, where=where)
        counts = outcomes.count_responders_in_parts(map(outcomes.last_from_pain, parts), rule=rule)
    table = outcomes.responder_table(counts)
    return {"table": table, "figure": charts.responder_figure(table)}


def safety_tables(actor: Actor, where: OutcomeFilter) -> background.Analysis:
    """Return the safety section's tables from every filtered session (the technique filter applies to sessions):
    the `rates` per 100 sessions; the `serious` ones beside the published rates, with their `serious_sentence`; the
    `summary` to download; the `shares` of sessions with a side effect; and the `figures` (`serious`, `published`:
    the mild ones beside the published rates, `by_type`: the rate of each side effect), none without sessions."""
    return clinic_wide.clinic_wide("safety", actor, _safety_tables, where)


def _safety_tables(reading: clinic_wide.Reading, where: OutcomeFilter) -> dict:
    with Session(reading.engine) as session:
        counts = queries.safety_events(session, actor=reading.actor, where=where)
    rates = safety.rate_table(counts.events, counts.sessions)
    serious = safety.serious_vs_published(rates)
    by_type = rates[(rates["severity"] == safety.ANY) & (rates["side_effect"] != safety.ANY)
                    & (rates["technique"] != safety.ALL)]
    return {
        "rates": rates,
        "serious": serious,
        "serious_sentence": safety.serious_sentence(serious),
        "summary": safety.summary_table(counts),
        "shares": safety.share_table(counts.sessions_with, counts.sessions),
        "figures": {} if rates.empty else {
            "serious": charts_science.serious_comparison_figure(serious),
            "published": charts_science.safety_comparison_figure(safety.safety_vs_published(rates)),
            "by_type": charts.side_effect_figure(by_type.rename(columns={"side_effect": "code"})),
        },
    }


def responder_analyses(actor: Actor, where: OutcomeFilter, rule: ResponderRule, episodes: int) -> background.Analysis:
    """Return, for at most `episodes` of the filtered episodes (a fixed sample): the share `reached` by each session
    (Kaplan–Meier) and `reached_by_then`, by session 4; the `curve_figure` of the cumulative responder curve, the
    `effect_sizes` at session 4 and at the last session, and the `kaplan_meier_figure` of sessions until a 30 %
    improvement with each technique's `medians`; responders classified by `rule`."""
    return clinic_wide.clinic_wide("responder analyses", actor, _responder_analyses, where, rule, episodes)


def _responder_analyses(reading: clinic_wide.Reading, where: OutcomeFilter, rule: ResponderRule, episodes: int) -> dict:
    improvement = clinic_wide.sample(reading, where, episodes)
    times = survival.time_to_response(improvement, rule=rule)
    kaplan_meier, medians = survival.kaplan_meier(times), survival.median_sessions(times)
    reached = survival.reached_summary(improvement, rule)
    return {
        "reached": reached,
        "reached_by_then": survival.reached_by(reached, ANSWER_SESSION),
        "curve_figure": charts_science.responder_curve_figure(responders.responder_curve(improvement, rule)),
        "effect_sizes": effect_sizes.effect_sizes(improvement, ANSWER_SESSION),
        "kaplan_meier_figure": charts_science.kaplan_meier_figure(kaplan_meier, medians),
        "medians": medians,
    }


def adjusted_comparison(actor: Actor, where: OutcomeFilter, episodes: int) -> background.Analysis:
    """Return, for at most `episodes` of the filtered episodes, the technique comparisons of the mixed model, the
    clustered OLS fit and the ANCOVA in one `table` with its forest `figure` (None when empty), the mixed model's
    `sentence` and `multiple_comparisons` sentence, and the `fit_notes` of each model."""
    return clinic_wide.clinic_wide("adjusted comparison", actor, _adjusted_comparison, where, episodes)


def _adjusted_comparison(reading: clinic_wide.Reading, where: OutcomeFilter, episodes: int) -> dict:
    improvement = clinic_wide.sample(reading, where, episodes)
    fits = {
        comparison.MIXED: comparison.mixed_model_comparison(improvement),
        comparison.CLUSTERED_OLS: comparison.clustered_ols_comparison(improvement),
        comparison.ANCOVA: comparison.ancova_comparison(improvement),
    }
    mixed = fits[comparison.MIXED]
    fitted = [fit for fit in fits.values() if not fit.empty]
    table = pd.concat(fitted, ignore_index=True) if fitted else mixed
    return {
        "table": table,
        "figure": charts_science.comparison_forest_figure(table) if fitted else None,
        "sentence": comparison_sentences.comparison_sentence(mixed),
        "multiple_comparisons": comparison_sentences.multiple_comparison_sentence(mixed),
        "fit_notes": {model: fit.attrs.get("fit_notes", []) for model, fit in fits.items()},
    }


def clinician_benchmark(actor: Actor, where: OutcomeFilter, episodes: int) -> background.Analysis:
    """Return, for at most `episodes` of the filtered episodes, the clinicians' adjusted improvement (`benchmark`)
    with its `caterpillar_figure` and `funnel_figure` (None when it is empty)."""
    return clinic_wide.clinic_wide("clinician benchmark", actor, _clinician_benchmark, where, episodes)


def _clinician_benchmark(reading: clinic_wide.Reading, where: OutcomeFilter, episodes: int) -> dict:
    improvement = clinic_wide.sample(reading, where, episodes)
    benchmark = clinicians.clinician_benchmark(improvement)
    shown = not benchmark.empty
    return {
        "benchmark": benchmark,
        "caterpillar_figure": charts_science.clinician_caterpillar_figure(benchmark) if shown else None,
        "funnel_figure": charts_science.clinician_funnel_figure(clinicians.clinician_funnel(improvement))
        if shown else None,
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


# Episodes of care (issue #14) ----------------------------------------------------------------------------------------


def episode_gap_days() -> int:
    """Return the days after an episode's last session beyond which a session asks whether it starts a new episode:
    the `episode_gap_days` secret, else EPISODE_GAP_DAYS from the environment, else 90 (ValueError if not a number)."""
    try:
        configured = st.secrets.get("episode_gap_days")
    except FileNotFoundError:  # no secrets file at all
        configured = None
    return episodes.gap_days(configured)


@on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def patient_episodes(url: str, version: Hashable, actor: Actor, patient_id: int) -> pd.DataFrame:
    """Return the patient's episodes of care with their number, goal, dates, status and sessions."""
    with Session(clinic_wide.engine(url)) as session:
        return episodes.patient_episodes(session, actor=actor, patient_id=patient_id)


def episode_outcomes(actor: Actor, where: OutcomeFilter, rule: ResponderRule) -> background.Analysis:
    """Return the last-session outcomes of every filtered episode `by_status` (completed, dropped out, open), the
    `sensitivity` table with dropouts at their baseline, and its `sentence` in words; responders by `rule`."""
    return clinic_wide.clinic_wide("episode_outcomes", actor, _episode_outcomes, where, rule)


def _episode_outcomes(reading: clinic_wide.Reading, where: OutcomeFilter, rule: ResponderRule) -> dict:
    with Session(reading.engine) as session:
        last = outcomes.last_from_pain(queries.episode_last_pain(session, actor=reading.actor, where=where))
        status = episodes.discharge_statuses(session, actor=reading.actor)
    sensitivity = missing_data.sensitivity_table(last, status, rule)
    return {"by_status": missing_data.status_table(last, status, rule), "sensitivity": sensitivity,
            "sentence": missing_data.sensitivity_sentence(sensitivity)}
