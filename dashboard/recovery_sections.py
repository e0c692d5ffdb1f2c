"""Expected recovery's sections (issue #18), drawn by the pages that show it: the band on a patient's chart, observed
minus expected on the technique page, the calibration on Methods. They read through dashboard.recovery_data and
draw; each analysis is computed on the worker (dashboard.background), so a page never waits for a fit: it says
"Being computed…", then draws it, with when it was computed and a Refresh button.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from clinic.vocabulary import condition_words
from dashboard import charts, recovery_data
from dashboard.analysis_status import ready
from dashboard.tables import show_table
from db.access import Actor
from db.queries import OutcomeFilter

OBSERVATIONAL = (
    "Observational: the band is what happened to earlier patients of this clinic like this one (same technique, "
    "condition, first pain and scale), not what this treatment will do. It is fitted only on courses that began "
    "before this one's calendar quarter."
)
FOR_THE_PATIENT = (
    "The shaded band shows how the middle half of earlier patients like you were doing at each session. It is what "
    "happened to others treated here, not a promise: many people do better or worse than most."
)
def progress_chart(actor: Actor, patient_id: int, episode_id: int, plain: go.Figure) -> None:
    """Draw the patient's chart with the expected-recovery band behind their improvement (the `plain` chart until
    the band is computed, or when there is none) and what the band says: in plain words for the patient."""
    to_patient = actor.role == "patient"
    with st.container(key="expected_recovery"):
        # A patient does not set the clinic's fit going again: it is computed anew with every change anyway.
        expected = ready(lambda: recovery_data.episode_expectation(actor, patient_id, episode_id), "expected_band",
                         refresh=not to_patient)
        figure = plain if expected is None or expected["figure"] is None else expected["figure"]
        st.plotly_chart(figure, key="progress_chart", config=charts.CONFIG)
        if expected is None:
            return
        if expected["sentence"]:
            if to_patient:
                st.info(expected["sentence"], icon=":material/groups:")
            else:
                st.caption(expected["sentence"])
        if expected["why_not"]:
            st.caption(expected["why_not"])
        st.caption(FOR_THE_PATIENT if to_patient else OBSERVATIONAL)


def observed_minus_expected(actor: Actor, where: OutcomeFilter) -> None:
    """Draw observed minus expected improvement per clinician and per technique, each on a funnel plot."""
    st.header("Observed minus expected improvement")
    st.caption(
        "Each episode of care the filters select counts once, at its latest session with an expected-recovery band: "
        "its improvement minus the mean improvement of earlier episodes like it (technique, condition, first pain, "
        "scale, session number). Above 0: better than expected. Funnel limits: 95 % (dashed) and 99.8 % (dotted) "
        "around the clinic's mean, by number of episodes. Observational: it adjusts for the case mix recorded, not "
        "for why a patient saw that clinician or had that technique; a technique is compared with its own earlier "
        "episodes, not with the other techniques (see the adjusted comparison for that)."
    )
    st.caption(
        "The two intervals answer different questions. The table's 95 % CI is a group's own difference, from its own "
        "spread, against 0 (as expected); the funnel limits are how far chance alone strays from the clinic's mean, "
        "with the clinic's spread, at that number of episodes: *Outside the 95 % limits* reads the funnel. The "
        "Clinicians section can rank a clinician otherwise: its mixed model adjusts for first pain and technique only "
        "and pulls small caseloads towards the mean."
    )
    result = ready(lambda: recovery_data.observed_minus_expected(actor, where), "observed_minus_expected")
    if result is None:
        return
    for by, title in (("clinician", "Per clinician (first session)"), ("technique", "Per technique")):
        st.subheader(title)
        if result[by].empty:
            st.info("No episode with an expected-recovery band in these filters.")
            continue
        st.plotly_chart(result["figures"][by], key=f"expected_funnel_{by}", config=charts.CONFIG)
        show_table(result[by][[by, "episodes", "observed_mean", "expected_mean", "difference", "ci95_low",
                               "ci95_high", "outside95"]], f"expected_table_{by}",
                   observed_mean="Observed (%)", expected_mean="Expected (%)", difference="Observed − expected (%)",
                   outside95="Outside the 95 % limits")


def calibration(actor: Actor) -> None:
    """Draw the bands' held-out calibration on the data stored now, with what a band is and is not."""
    st.header("Expected recovery on this clinic's data")
    st.markdown(
        "**What a band is.** For a course of treatment at a given session, the band shows how earlier patients of "
        "this clinic with the same technique, condition, first pain and pain scale were doing then: the middle line "
        "is the median, the darker band holds the middle half of them (25th to 75th percentile), the lighter one 8 "
        "in 10 (10th to 90th). **What it is not.** It is not a prediction of what the needling will do for this "
        "patient, nor a target: it is observational, and patients who stopped early are not in it. A band is shown "
        "only when at least 30 earlier courses stand behind it.\n\n"
        "**Is it honest?** Fitted on the older 80 % of the courses and tested on the newer 20 %, about half of the "
        "newer sessions should fall inside the 50 % band and about 8 in 10 inside the 80 % band:"
    )
    table = ready(lambda: recovery_data.calibration(actor), "calibration")
    if table is not None:
        words = table["condition"].map(lambda c: "All conditions" if c == "all" else condition_words(c))
        show_table(table.assign(condition=words), "calibration_table", percent=("coverage_50", "coverage_80"),
                   episodes="Held-out episodes", observations="Held-out sessions",
                   coverage_50="Inside the 50 % band", coverage_80="Inside the 80 % band")
