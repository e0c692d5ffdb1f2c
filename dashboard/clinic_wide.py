"""The technique page's analyses: kept once for everyone allowed to read them, per version of the data.

Part of the page-data layer (dashboard.resources builds each analysis on these): the key of an analysis is the
database, its kind and its arguments, not who asked, since its figures are the same for everyone allowed to read
them; so `clinic_wide` checks the role, as db.queries does before every clinic-wide read, before serving one. The
data version is the newest audit row that records a change (db.audit): every write is audited, so it moves with
every write, and a sign-in leaves it. The analyses run on the process's worker (dashboard.background).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlmodel import Session

from analytics import outcomes
from dashboard import background
from db import audit, queries
from db.access import AGGREGATE_READERS, Actor, require_role
from db.engine import database_url, make_engine, migrate
from db.queries import OutcomeFilter

# A page waits for an analysis whose last computation took this long or less, then draws without it: a slower one
# shows a note and appears on a later run, so the page's run stays short with any size of data.
PATIENCE_SECONDS = 0.3


@st.cache_resource(show_spinner=False)
def engine(url: str) -> Engine:
    """Return the process's engine for the database at `url`, migrated first (a no-op when the schema is current;
    makes a fresh install usable at once)."""
    migrate(url)
    return make_engine(url)


@dataclass(frozen=True)
class Reading:
    """What an analysis reads the database with: the engine, the actor who first asked, the data version then."""

    engine: Engine
    actor: Actor
    version: Hashable


@st.cache_resource(show_spinner=False)
def _analyses() -> background.Analyses:
    return background.Analyses()


@st.cache_resource(show_spinner=False)
def _versions() -> dict[str, tuple[int, Hashable]]:
    """Return the process's memory of each database's newest audit id read and its data version."""
    return {}


def data_version(url: str) -> Hashable:
    """Return the id of the newest audit row that records a change (not a sign-in or an export). Every write is
    audited in its own transaction, made here or elsewhere (the command line's import), so this changes with every
    write; a clinic signing in all morning changes no figure. After the first call, only the rows added since the
    last are read, a range of the primary key; the audit rows are appended in id order under the chain's lock."""
    with Session(engine(url)) as session:
        newest = audit.newest_id(session)
        seen, version = _versions().get(url, (None, newest))
        if seen is not None and newest < seen:  # an older copy of the database restored: nothing kept holds
            version = (newest, seen)
        elif seen is not None and newest > seen:
            version = audit.newest_change_after(session, seen) or version
    _versions()[url] = (newest, version)
    return version


def clinic_wide(kind: str, actor: Actor, compute: Callable[..., Any], *arguments: Hashable) -> background.Analysis:
    """Return the analysis `kind` of `arguments`, `compute(reading, *arguments)`, on the data as stored now.

    Kept once for every user: the key is the database, the kind and its arguments, not who asked, since the figures
    are the same for everyone allowed to read them. So the role is checked here, before anything kept is served,
    as db.queries checks it before every clinic-wide read. Computed on the process's worker: the page waits
    PATIENCE_SECONDS at most, and only for a quick one, then shows the latest result, if any, until it is ready.
    """
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    return _kept(kind, actor, compute, *arguments)


# Who an analysis kept for the clinic itself reads as: the expected-recovery models are fitted on every episode,
# which no patient may read, so they are computed for the clinic, whoever's page asks first (a patient's, a
# clinician's or an admin's), and the page-data layer hands each reader only what they may read of them
# (dashboard.recovery_data: a patient their own episode's band, a clinician their own work list).
CLINIC = Actor(id=None, username="system:clinic-wide analyses", role="manager")


def for_the_clinic(kind: str, compute: Callable[..., Any], *arguments: Hashable) -> background.Analysis:
    """Return `clinic_wide`'s analysis `kind`, read as the clinic (CLINIC), whoever asks: its value is clinic-wide,
    so the caller must never hand it on as it is, only what the user asking may read of it."""
    return _kept(kind, CLINIC, compute, *arguments)


def _kept(kind: str, actor: Actor, compute: Callable[..., Any], *arguments: Hashable) -> background.Analysis:
    url = database_url()
    version = data_version(url)
    reading = Reading(engine(url), actor, version)
    return _analyses().get(kind, (url, kind, *arguments), version, functools.partial(compute, reading, *arguments),
                           patience=PATIENCE_SECONDS)


def settled(timeout: float) -> bool:
    """Return True once no analysis is being computed, False if one still is after `timeout` seconds."""
    return _analyses().settled(timeout)


# A sample's columns no analysis reads once the improvement is computed: not kept.
UNANALYSED = ["session_id", "session_date", "pain_scale", "pain_before", "body_region"]


@st.cache_resource(show_spinner=False)
def _last_samples() -> dict[int, tuple[Hashable, pd.DataFrame]]:
    """Return the process's last sample read of each size, each replaced by the next of its size. The Responders,
    Time to response and Clinicians sections analyse the same sample, read once rather than once each: reading
    20,000 episodes takes 1.3 s and 140 MB at its peak; keeping their measurements takes 20 MB, which the read
    leaves resident anyway."""
    return {}


def sample(reading: Reading, where: OutcomeFilter, episodes: int) -> pd.DataFrame:
    """Return cumulative improvement per session of at most `episodes` of the filtered episodes (a fixed sample)."""
    key = (reading.engine.url, reading.version, where)
    kept_key, kept = _last_samples().get(episodes, (None, None))
    if kept_key == key:
        return kept
    with Session(reading.engine) as session:
        sessions = queries.outcome_sessions(session, actor=reading.actor, where=where, episodes=episodes)
    if sessions.empty:
        return sessions
    improvement = outcomes.cumulative_improvement(sessions).drop(columns=UNANALYSED)
    _last_samples()[episodes] = (key, improvement)
    return improvement
