"""Expected recovery's page data (issue #18): the band on a patient's chart, the clinicians' work list of
off-track episodes, observed minus expected per clinician and technique, and the bands' calibration.

Part of the page-data layer (tests/app/test_page_data.py). The fit is an analysis kept once for the clinic per
data version (dashboard.clinic_wide, computed on the worker of dashboard.background): one fit per calendar quarter
of every episode's band, then each page's figures are look-ups in it. Who may read what is checked here and in
db: a clinic-wide figure needs a role that reads them (clinic_wide.clinic_wide); a patient's band is computed for
the clinic (clinic_wide.for_the_clinic) and the patient is handed only their own episode's rows, once
`resources.patient_record` has checked that the record is theirs and the episode is in it; the work list names
only the episodes db.recovery_queries.open_episodes lets the actor list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

import pandas as pd
import streamlit as st
from sqlmodel import Session

from analytics import expected_recovery, on_track, outcomes
from dashboard import charts, charts_science, clinic_wide, resources
from dashboard.background import Analysis
from db import recovery_queries
from db.access import CLINICAL_WRITERS, AccessDenied, Actor, require_role
from db.queries import OutcomeFilter

KIND = "expected recovery"
AHEAD = 1  # sessions beyond the latest one whose band the patient's chart shows: what to expect next
BAND_ROW_COLUMNS = ["session_number", *expected_recovery.BAND_COLUMNS, "shown", "comparable_episodes",
                    "condition_episodes", "condition_adjusted", "technique", "note"]
# Columns a session row needs no longer once its improvement is computed: not kept with the fit.
UNANALYSED = ["session_id", "pain_before", "body_region"]
# The columns of the bands kept with the fit: what the chart, the work list and observed minus expected read (at a
# million sessions, 1.3 million rows: the rest would add 40 % to the memory they hold).
KEPT_BANDS = ["episode_id", "session_date", "clinician", "improvement_pct", "expected", *BAND_ROW_COLUMNS]


@st.cache_resource(show_spinner=False)
def _kept() -> dict[str, tuple[Hashable, dict]]:
    """Return the process's latest fit per database with the data version it rests on: the analyses of one version
    (the fit itself, each filter's observed minus expected) share one computation of it, on the one worker."""
    return {}


def _recovery(reading: clinic_wide.Reading) -> dict:
    """Return the fit on the data of `reading`'s version: every episode's `bands`, the off-track `work_list` of
    every clinician (no discharged episode) and the `episodes` and `sessions` it rests on; computed once a version."""
    url = str(reading.engine.url)
    version, kept = _kept().get(url, (None, None))
    if kept is not None and version == reading.version:
        return kept
    with Session(reading.engine) as session:
        sessions = recovery_queries.recovery_sessions(session, actor=reading.actor)
    improvement = outcomes.cumulative_improvement(sessions).drop(columns=UNANALYSED)
    bands = expected_recovery.bands_from_models(improvement, expected_recovery.quarterly_models(improvement))
    recovery = {"bands": bands[KEPT_BANDS], "work_list": on_track.work_list(bands),
                "episodes": improvement["episode_id"].nunique(), "sessions": len(improvement)}
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
    A patient's band is fitted for the clinic: only this episode's rows leave this function.
    """
    _, sessions, _ = resources.patient_record(actor, patient_id)  # checks the record is the actor's to read
    if episode_id not in set(sessions["episode_id"]):
        raise AccessDenied("this episode is not one of the patient's")
    improvement = resources.episode_progress(actor, patient_id, episode_id)["improvement"]
    is_patient = actor.role == "patient"
    analysis = (clinic_wide.for_the_clinic(KIND, _recovery) if is_patient
                else clinic_wide.clinic_wide(KIND, actor, _recovery))
    return _narrowed(analysis, lambda recovery: _expectation(recovery["bands"], episode_id, improvement, is_patient))


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
        allowed = recovery_queries.open_episodes(session, actor=reading.actor)
    return work_list.merge(allowed[["episode_id", "patient"]], on="episode_id", how="inner", sort=False)


# The technique page: observed minus expected ------------------------------------------------------------------------


def observed_minus_expected(actor: Actor, where: OutcomeFilter) -> Analysis:
    """Return, for the episodes the filter selects, observed minus expected improvement per `clinician` and per
    `technique` (on_track.observed_minus_expected, each episode at its latest session with a band) and a funnel
    plot of each (`figures`); kept per data version and filter."""
    return clinic_wide.clinic_wide("observed minus expected", actor, _observed_minus_expected, where)


def _observed_minus_expected(reading: clinic_wide.Reading, where: OutcomeFilter) -> dict:
    bands = _recovery(reading)["bands"]
    if where != OutcomeFilter():
        with Session(reading.engine) as session:
            chosen = recovery_queries.filtered_episode_ids(session, actor=reading.actor, where=where)
        bands = bands[bands["episode_id"].isin(chosen)]
    tables = {by: on_track.observed_minus_expected(bands, by) for by in on_track.BY}
    return tables | {"figures": {by: charts_science.observed_expected_funnel_figure(table, by)
                                 for by, table in tables.items()}}


# Methods: calibration -------------------------------------------------------------------------------------------------


def calibration(actor: Actor) -> Analysis:
    """Return `python -m db summary --calibration`'s table on the data stored now: held-out coverage of the 50 % and
    80 % bands, overall and by condition and technique."""
    return clinic_wide.clinic_wide("calibration", actor, _calibration)


def _calibration(reading: clinic_wide.Reading) -> pd.DataFrame:
    with Session(reading.engine) as session:
        sessions = recovery_queries.recovery_sessions(session, actor=reading.actor)
    return expected_recovery.calibration_table(outcomes.cumulative_improvement(sessions))
