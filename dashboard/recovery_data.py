"""Expected recovery's page data (issue #18): the band on a patient's chart, the clinicians' work list of
off-track episodes, observed minus expected per clinician and technique, and the bands' calibration.

Part of the page-data layer (tests/app/test_page_data.py). The fit is an analysis kept once for the clinic per
data version (dashboard.clinic_wide, computed on the worker of dashboard.background), always read as the clinic
(clinic_wide.CLINIC), whoever's page asked first: one model per calendar quarter, the work list of every clinician
and one row per episode for observed minus expected, all small at any scale; an episode's band is predicted from
the models when its chart is drawn, and cached per data version and episode (`_episode_band`). Who may read what
is checked where each reader reads: a clinic-wide figure needs a role that reads them (clinic_wide.clinic_wide); a
band is handed only to someone `resources.patient_record` lets read the patient's record, for an episode in it;
the work list names only the episodes db.recovery_queries.open_episodes lets the actor list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

import pandas as pd
import streamlit as st
from sqlmodel import Session

from analytics import expected_recovery, on_track, outcomes, recovery_stream
from dashboard import charts, charts_science, clinic_wide, resources
from dashboard.background import Analysis
from db import memory, recovery_queries
from db.access import AGGREGATE_READERS, CLINICAL_WRITERS, AccessDenied, Actor, require_role
from db.engine import database_url
from db.queries import OutcomeFilter

KIND = "expected recovery"
AHEAD = 1  # sessions beyond the latest one whose band the patient's chart shows: what to expect next
BAND_ROW_COLUMNS = ["session_number", *expected_recovery.BAND_COLUMNS, "shown", "comparable_episodes",
                    "condition_episodes", "condition_adjusted", "technique", "note"]
GIVE_BACK_EVERY = 100_000  # sessions read between two `give_back`s while the fit's sessions are read
# Episodes' bands drawn lately, each a prediction from the kept models: a few kilobytes each.
BANDS_CACHED = 500


@st.cache_resource(show_spinner=False)
def _kept() -> dict[str, tuple[Hashable, dict]]:
    """Return the process's latest fit per database with the data version it rests on: the analyses of one version
    (the fit itself, each filter's observed minus expected, each work list) share one computation of it."""
    return {}


def _recovery(reading: clinic_wide.Reading) -> dict:
    """Return the fit on the data of `reading`'s version, read as the clinic (clinic_wide.CLINIC) whoever asked
    first: its quarterly `models`, the off-track `work_list` of every clinician (no discharged episode), each
    episode's `latest` session with a band shown (on_track.LATEST_COLUMNS: what observed minus expected compares),
    the bands' held-out `calibration` (recovery_calibration.calibration_table, what Methods shows) and the `episodes`
    and `sessions` it rests on. Computed once a version, reading the sessions twice in order of their episodes'
    first sessions and holding only the latest episodes (analytics.recovery_stream); no episode's band is kept (at a
    million sessions they took 172 MB): a chart predicts its own from the models (`_episode_band`)."""
    url = str(reading.engine.url)
    version, kept = _kept().get(url, (None, None))
    if kept is not None and version == reading.version:
        return kept
    _kept().pop(url, None)  # the last version's figures are not held while this one is computed
    counted = {"episodes": 0, "sessions": 0}

    def improvements(parts):  # each reading counts the same episodes and sessions
        counted.update(episodes=0, sessions=0)
        for sessions in parts:
            counted["episodes"] += sessions["episode_id"].nunique()  # a part holds whole episodes
            counted["sessions"] += len(sessions)
            yield outcomes.cumulative_improvement(sessions)
            if counted["sessions"] // GIVE_BACK_EVERY > (counted["sessions"] - len(sessions)) // GIVE_BACK_EVERY:
                memory.give_back()  # each part's short-lived frames, before the parts kept grow the heap past them

    with Session(reading.engine) as session:
        recovery_queries.one_snapshot(session)  # the episodes counted are the episodes read
        episodes = recovery_stream.counted_episodes(
            recovery_queries.first_session_pain(session, actor=clinic_wide.CLINIC))
        fit = recovery_stream.fit_in_order(lambda: improvements(
            recovery_queries.recovery_session_parts(session, actor=clinic_wide.CLINIC)), episodes=episodes)
    recovery = {"version": reading.version, "models": fit.models, "work_list": fit.work_list, "latest": fit.latest,
                "calibration": fit.calibration, **counted}
    del fit  # its frames are given back by the worker once this returns (dashboard.background)
    _kept()[url] = (reading.version, recovery)
    return recovery


def _narrowed(analysis: Analysis, value) -> Analysis:
    """Return `analysis` with its value replaced by what the asker may see of it (None while there is none yet)."""
    return dataclasses.replace(analysis, value=None if analysis.value is None else value(analysis.value))


# A patient's chart ----------------------------------------------------------------------------------------------------


def episode_expectation(actor: Actor, patient_id: int, episode_id: int) -> Analysis:
    """Return the expected recovery of one episode of a patient the actor may read: its value is a dict of the
    episode's `band` (BAND_ROW_COLUMNS, from session 2 to AHEAD beyond its latest session), the chart `figure` with
    the band behind the improvement (None without a band shown), the `sentence` on its latest session's band (in
    plain words for a patient) and `why_not` (why no band is shown at a session, with the counts; "" if shown).

    AccessDenied unless the actor may read the patient's record (a patient: their own) and the episode is in it.
    The models are fitted for the clinic, whoever asks; the band is predicted from them and the episode's own
    sessions, read as the actor: only this episode's rows leave this function.
    """
    _, sessions, _ = resources.patient_record(actor, patient_id)  # checks the record is the actor's to read
    if episode_id not in set(sessions["episode_id"]):
        raise AccessDenied("this episode is not one of the patient's")
    improvement = resources.episode_progress(actor, patient_id, episode_id)["improvement"]
    to_patient = actor.role == "patient"
    url = database_url()
    return _narrowed(clinic_wide.for_the_clinic(KIND, _recovery), lambda recovery: _episode_band(
        url, clinic_wide.CLINIC, recovery["version"], clinic_wide.data_version(url), episode_id, to_patient,
        recovery["models"], improvement))


@st.cache_resource(show_spinner=False, max_entries=BANDS_CACHED, ttl=3600)
def _episode_band(url: str, actor: Actor, fitted: Hashable, version: Hashable, episode_id: int, to_patient: bool,
                  _models: dict, _improvement: pd.DataFrame) -> dict:
    """Return `_expectation` of one episode from the models fitted on data version `fitted` and its sessions as
    stored at `version`: the rows expected_recovery.expected_bands gives it, predicted for it alone. Kept per
    (versions, episode), the same for every reader: `actor` is the clinic, each reader's access checked before.
    Handed out as built, not a copy (its chart is not unpickled and validated by plotly again on every run): the
    page only reads it."""
    band = expected_recovery.bands_from_models(_improvement, _models)
    return _expectation(band, episode_id, _improvement, to_patient)


def _expectation(bands: pd.DataFrame, episode_id: int, improvement: pd.DataFrame, to_patient: bool) -> dict:
    last = int(improvement["session_number"].max())
    rows = bands[(bands["episode_id"] == episode_id) & (bands["session_number"] <= max(last, 1) + AHEAD)]
    band = rows[BAND_ROW_COLUMNS].drop_duplicates("session_number").sort_values("session_number")
    observed = improvement.set_index("session_number")["improvement_pct"]
    band = band.assign(improvement_pct=band["session_number"].map(observed)).reset_index(drop=True)
    shown = band[band["shown"].astype(bool)]
    # In words: the latest session with a band (before any follow-up, the next one); and, when the latest session
    # has none, why not.
    now = band[band["session_number"] <= max(last, 2)]
    with_band = shown[shown["session_number"] <= max(last, 2)]
    sentence = "" if with_band.empty else expected_recovery.band_sentence(with_band.iloc[-1], to_patient=to_patient)
    if now.empty:  # no row of this episode in the fit
        why_not = ("No expected-recovery band: " + ("the first session's pain was 0, so there is no percentage to "
                   "improve by." if not (improvement["baseline_points"] > 0).any() else "this course began after the "
                   "bands were last computed; they are computed again with every change."))
    elif now.iloc[-1]["shown"]:
        why_not = ""
    elif to_patient:
        why_not = expected_recovery.band_sentence(now.iloc[-1], to_patient=True)
    else:
        why_not = expected_recovery.no_band_sentence(now.iloc[-1])
    figure = charts.patient_progress_figure(improvement, shown, simple=to_patient) if not shown.empty else None
    return {"band": band, "figure": figure, "sentence": sentence, "why_not": why_not}


# The clinicians' work list ------------------------------------------------------------------------------------------


def off_track(actor: Actor) -> Analysis:
    """Return the off-track episodes the actor may list (a clinician: those whose first session they saw; an admin:
    every one), not discharged, newest latest session first: a DataFrame of on_track.WORK_LIST_COLUMNS with the
    patient's record id (`patient`) to open their progress page.

    Computed on the worker, per data version and per clinician (one list for all admins): at a network's million
    sessions an admin's read of every open episode alone takes seconds. The read is the actor's own, so db scopes it.
    """
    require_role(actor, CLINICAL_WRITERS, "list off-track episodes")
    whose = actor.id if actor.role == "clinician" else None
    return clinic_wide.clinic_wide("off track", actor, _off_track, actor.role, whose)


def _off_track(reading: clinic_wide.Reading, role: str, whose: int | None) -> pd.DataFrame:
    """The work list of `reading.actor`, the first to ask for this key: the clinician `whose` or an admin (`role`)."""
    work_list = _recovery(reading)["work_list"]
    with Session(reading.engine) as session:
        allowed = recovery_queries.open_episodes(session, actor=reading.actor, among=work_list["episode_id"])
    return work_list.merge(allowed[["episode_id", "patient"]], on="episode_id", how="inner", sort=False)


# The technique page: observed minus expected ------------------------------------------------------------------------


def observed_minus_expected(actor: Actor, where: OutcomeFilter) -> Analysis:
    """Return, for the episodes the filter selects, observed minus expected improvement per `clinician` and per
    `technique` (on_track.observed_minus_expected, each episode at its latest session with a band) and a funnel
    plot of each (`figures`); kept per data version and filter."""
    return clinic_wide.clinic_wide("observed minus expected", actor, _observed_minus_expected, where)


def _observed_minus_expected(reading: clinic_wide.Reading, where: OutcomeFilter) -> dict:
    latest = _recovery(reading)["latest"]
    if where != OutcomeFilter():
        with Session(reading.engine) as session:
            chosen = recovery_queries.filtered_episode_ids(session, actor=reading.actor, where=where)
        latest = latest[latest["episode_id"].isin(chosen)]
    tables = {by: on_track.observed_minus_expected(latest, by) for by in on_track.BY}
    return tables | {"figures": {by: charts_science.observed_expected_funnel_figure(table, by)
                                 for by, table in tables.items()}}


# Methods: calibration -------------------------------------------------------------------------------------------------


def calibration(actor: Actor) -> Analysis:
    """Return `python -m db summary --calibration`'s table on the data stored now: held-out coverage of the 50 % and
    80 % bands, overall and by condition and technique."""
    return clinic_wide.clinic_wide("calibration", actor, _calibration)


def _calibration(reading: clinic_wide.Reading) -> pd.DataFrame:
    """The calibration on the data of `reading`'s version: computed with the fit, from the same read (`_recovery`);
    the actor's role is checked as their own read of the sessions would check it."""
    require_role(reading.actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    return _recovery(reading)["calibration"]
