"""Tables on screen with human column headers; the CSV downloads keep the contract's column names."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from clinic.vocabulary import SIDE_EFFECTS, TECHNIQUE_LABELS

# One header per analytic column, in the clinic's words. "patients" columns count episodes of care.
HEADERS = {
    "technique": "Technique", "model": "Model", "timepoint": "When",
    "threshold_pct": "Improvement of at least (%)", "session_number": "Session", "patients": "Episodes",
    "share": "Share", "estimate": "Difference (points)", "p_value": "p", "sessions": "Sessions",
    "clinician": "Clinician", "clinic_mean": "Clinic mean (points)",
    "outside_clinic_mean": "Differs from the clinic mean", "responses": "Responded",
    "median_sessions": "Median sessions", "median_ci95_low": "95 % CI low", "median_ci95_high": "95 % CI high",
    "code": "Side effect", "severity": "Severity", "events": "Events", "per_100_sessions": "Per 100 sessions",
    "ci95_low": "95 % CI low", "ci95_high": "95 % CI high", "p_holm": "p (Holm)", "df": "Degrees of freedom",
    "distinct_patients": "Patients", "structure": "Fitted as",
}
POOLED = {"all": "All techniques", "any": "Any side effect"}  # the pooled rows of the safety tables
PERCENT = ("share",)  # fractions 0–1 shown as percent


def show_table(frame: pd.DataFrame, key: str, *, percent: tuple[str, ...] = (), **headers: str) -> None:
    """Draw `frame` with human headers and readable values (technique and side-effect names, percentages, empty
    cells for missing values rather than the word "None").

    `percent` names further fraction columns (0–1) to show as percent; `headers` overrides a column's header.
    """
    shown = frame.copy()
    if "technique" in shown:
        shown["technique"] = shown["technique"].map(lambda t: TECHNIQUE_LABELS.get(t, POOLED.get(t, t)))
    if "code" in shown:
        shown["code"] = shown["code"].map(lambda c: SIDE_EFFECTS.get(c, POOLED.get(c, c)))
    config = {}
    for column in shown.columns:
        label = headers.get(column) or HEADERS.get(column, column.replace("_", " ").capitalize())
        if column in PERCENT or column in percent:
            config[column] = st.column_config.NumberColumn(label, format="percent")
        elif pd.api.types.is_float_dtype(shown[column]):
            config[column] = st.column_config.NumberColumn(label, format="%.2f")
        else:
            config[column] = st.column_config.Column(label)
    st.dataframe(shown, hide_index=True, placeholder="", key=key, column_config=config)
