"""Technique outcomes: the responder rule, set by the manager, and the section "Completed and dropped out" (#14).

Drawn by the technique page (dashboard/views/technique_outcomes.py), one call each: `responder_rule()` returns the
rule every responder figure of the page classifies by, `completed_and_dropped_out(…)` shows the outcomes by
discharge status and how much the figures depend on the dropouts (analytics.missing_data), computed as the page's
other analyses are (dashboard.background).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from analytics.missing_data import SCENARIO_LABELS
from clinic.outcomes import DEFAULT_RULE, ResponderRule
from dashboard import resources
from dashboard.background import Analysis
from dashboard.tables import show_table
from db.access import Actor
from db.queries import OutcomeFilter

RULE_KEYS = {"rule_mcid_points": DEFAULT_RULE.mcid_points, "rule_min_baseline": DEFAULT_RULE.min_baseline_points}
GROUP_LABELS = {"completed": "Completed (goal met, referred on, other)", "dropped_out": "Dropped out",
                "open": "Not discharged yet"}
FIGURE_HEADERS = {
    "episodes": "Episodes", "mean_improvement_pct": "Mean improvement (%)", "ci95_low": "95 % CI low (%)",
    "ci95_high": "95 % CI high (%)", "responders_30": "Improved by 30 % or more", "share_30": "Share improved by 30 %",
    "ci95_low_30": "Share: 95 % CI low", "ci95_high_30": "Share: 95 % CI high",
}
# Shown as the contract tables are rounded (`db summary`): percent figures to 2 decimals, shares (0–1) to 4.
FIGURE_DECIMALS = {"mean_improvement_pct": 2, "ci95_low": 2, "ci95_high": 2, "share_30": 4, "ci95_low_30": 4,
                   "ci95_high_30": 4}


def responder_rule() -> ResponderRule:
    """Draw the "Responder rule" expander (the points and the baseline, disclosed in words); return the rule."""
    # Streamlit forgets a widget's value when another page is shown; a copy under another key brings it back.
    for key, default in RULE_KEYS.items():
        st.session_state.setdefault(key, st.session_state.get(f"kept_{key}", default))
    with st.expander("Responder rule", icon=":material/rule:"):
        left, right = st.columns(2)
        mcid = left.number_input(
            "Minimal important difference (points of 0–100)", min_value=0.0, max_value=100.0, step=1.0,
            key="rule_mcid_points", help="IMMPACT's absolute threshold: 20 points (2 on the 0–10 scale) by default.")
        floor = right.number_input(
            "Percent alone counts from a first pain of (0–100)", min_value=0.0, max_value=100.0, step=1.0,
            key="rule_min_baseline",
            help="Below this first pain, an improvement must also reach the minimal important difference. "
                 "Set 0 to judge by the percent alone.")
        rule = ResponderRule(mcid_points=float(mcid), min_baseline_points=float(floor))
        st.caption(rule.sentence())
    for key in RULE_KEYS:
        st.session_state[f"kept_{key}"] = st.session_state[key]
    return rule


def completed_and_dropped_out(actor: Actor, where: OutcomeFilter, rule: ResponderRule,
                              ready: Callable[[Callable[[], Analysis], str], dict | None]) -> None:
    """Draw the outcomes at the last session by discharge status, and the sensitivity table for dropouts.

    `ready` is the technique page's own: it draws how far the analysis is, and returns its latest result or None.
    """
    st.header("Completed and dropped out")
    data = ready(lambda: resources.episode_outcomes(actor, where, rule), "episode_outcomes")
    if data is None:
        return
    st.caption("The figures above take each episode's last recorded session, also for patients who stopped coming. "
               "Episodes with a follow-up session by how they ended, at their last session; responders by the rule "
               "above, 30 % or more, with 95 % t and Wilson intervals.")
    by_status = data["by_status"]
    show_table(by_status.assign(status_group=by_status["status_group"].map(GROUP_LABELS)).round(FIGURE_DECIMALS),
               "status_table", percent=("share_30", "ci95_low_30", "ci95_high_30"), status_group="Discharge status",
               **FIGURE_HEADERS)
    st.info(data["sentence"], icon=":material/person_off:")
    sensitivity = data["sensitivity"]
    show_table(sensitivity.assign(scenario=sensitivity["scenario"].map(SCENARIO_LABELS)).round(FIGURE_DECIMALS),
               "sensitivity_table", percent=("share_30", "ci95_low_30", "ci95_high_30"), scenario="Assumption",
               imputed="Dropouts set to their baseline", note="Note", **FIGURE_HEADERS)
    st.download_button(
        "Download completed and dropped out (CSV)", sensitivity.round(4).to_csv(index=False, lineterminator="\n"),
        file_name="technique_dropout_sensitivity.csv", mime="text/csv", key="download_sensitivity",
        icon=":material/download:",
    )
