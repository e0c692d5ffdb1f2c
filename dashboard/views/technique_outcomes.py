"""Technique outcomes: improvement curves, responders and side effects per technique, for managers."""

from datetime import date

import pandas as pd
import streamlit as st

from analytics.outcomes import summary_table
from dashboard import charts, resources
from dashboard.navigation import current_actor
from db.engine import database_url
from db.models import SIDE_EFFECTS, TECHNIQUE_LABELS
from db.queries import OutcomeFilter

actor = current_actor()
url = database_url()
st.title("Technique outcomes")
st.caption(
    "Clinic data are observational, not a trial: patients were not randomised to techniques, so differences "
    "may reflect who received each technique as much as the technique itself."
)

with st.container(horizontal=True):
    _, conditions = resources.form_choices(url, actor)
    chosen = st.multiselect(
        "Condition", conditions, key="filter_conditions", placeholder="All conditions",
        format_func=lambda c: c.replace("_", " "),
    )
    period = st.date_input(
        "First session between", value=(), max_value=date.today(), key="filter_period",
        help="Episodes of care whose first session falls in this range. Leave empty for all.",
    )
start, end = (tuple(period) + (None, None))[:2] if period else (None, None)
where = OutcomeFilter(conditions=tuple(sorted(chosen)), start=start, end=end)
data = resources.technique_outcomes(url, actor, where)
curve = data["curve"]

if curve.empty:
    st.info("No sessions match these filters — widen the filters or record sessions first.")
    st.stop()

st.subheader("Mean improvement since the first session")
st.plotly_chart(charts.technique_curve_figure(curve), key="curve_chart")
st.caption(
    "Shaded ribbons: 95 % confidence intervals. Hollow points: fewer than 10 patients. "
    "Bands: minimal (15 %), important (30 %) and substantial (50 %) improvement (IMMPACT)."
)
if not data["excluded"].empty:
    excluded = int(data["excluded"]["episodes"].sum())
    st.warning(
        f"{excluded} episode(s) left out of the percentages: baseline pain 0, so percent improvement is undefined.",
        icon=":material/info:",
    )

summary = summary_table(curve)
st.dataframe(
    summary.assign(technique=summary["technique"].map(TECHNIQUE_LABELS)),
    hide_index=True, key="summary_table",
    column_config={
        "technique": "Technique",
        "session_number": st.column_config.NumberColumn("Session"),
        "patients": st.column_config.NumberColumn("Patients"),
        "mean_pain_before": st.column_config.NumberColumn("Mean pain before (0–100)", format="%.1f"),
        "mean_improvement_points": st.column_config.NumberColumn("Improvement (points)", format="%.1f"),
        "mean_improvement_pct": st.column_config.NumberColumn("Improvement (%)", format="%.1f %%"),
        "ci95_low_pct": st.column_config.NumberColumn("95 % CI low (%)", format="%.1f"),
        "ci95_high_pct": st.column_config.NumberColumn("95 % CI high (%)", format="%.1f"),
    },
)
st.download_button(
    "Download summary (CSV)", summary.to_csv(index=False, lineterminator="\n"),
    file_name="technique_summary.csv", mime="text/csv", key="download_summary", icon=":material/download:",
)

st.subheader("Responders at the last session")
responders = data["responders"]
st.plotly_chart(charts.responder_figure(responders), key="responder_chart")
st.caption("Share of patients whose pain at their last session was at least 15, 30 or 50 % below their first "
           "(IMMPACT); error bars are 95 % Wilson intervals.")

st.subheader("Side effects per 100 sessions")
safety = data["safety"]
if not data["serious"].empty:
    st.error(f"{len(data['serious'])} significant or serious side effect(s) recorded:", icon=":material/warning:")
    serious = data["serious"].assign(
        code=data["serious"]["code"].map(SIDE_EFFECTS), technique=data["serious"]["technique"].map(TECHNIQUE_LABELS)
    )
    st.dataframe(serious, hide_index=True, key="serious_table")
if safety.empty:
    st.info("No side effects recorded for these sessions.")
else:
    st.plotly_chart(charts.side_effect_figure(safety), key="safety_chart")
    any_effect = safety[safety["code"] == "any"]
    sessions = data["sessions"].set_index("technique")["sessions"]
    cols = st.columns(len(sessions))
    for col, (technique, count) in zip(cols, sessions.items(), strict=True):
        row = any_effect[any_effect["technique"] == technique]
        rate = float(row["per_100_sessions"].iloc[0]) if not row.empty else 0.0
        col.metric(f"{TECHNIQUE_LABELS[technique]}", f"{rate:.1f} per 100", help=f"Sessions with any side effect, "
                   f"out of {count} sessions")
    table = safety[safety["code"] != "any"].assign(
        code=lambda t: t["code"].map(SIDE_EFFECTS), technique=lambda t: t["technique"].map(TECHNIQUE_LABELS)
    )
    st.dataframe(
        pd.DataFrame(table).round(2), hide_index=True, key="safety_table",
        column_config={
            "technique": "Technique", "code": "Side effect", "events": "Events", "sessions": "Sessions",
            "per_100_sessions": st.column_config.NumberColumn("Per 100 sessions", format="%.2f"),
            "ci95_low": st.column_config.NumberColumn("95 % CI low", format="%.2f"),
            "ci95_high": st.column_config.NumberColumn("95 % CI high", format="%.2f"),
        },
    )
