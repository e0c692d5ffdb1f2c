"""Patient progress: pain at each session, improvement since the first, side effects, in plain words."""

import pandas as pd
import streamlit as st

from analytics.outcomes import cumulative_improvement, progress_sentence
from dashboard import charts, resources
from dashboard.navigation import current_viewer
from db.engine import database_url
from db.models import SIDE_EFFECTS, TECHNIQUE_LABELS

viewer = current_viewer()
url = database_url()
is_patient = viewer.role == "patient"
st.title("My progress" if is_patient else "Patient progress")

if is_patient:
    # A patient sees their own record only: the id comes from who they are, never from a widget or the URL.
    patient_id, pseudonym = viewer.patient_id, viewer.patient_pseudonym
else:
    patients = resources.patient_list(url)
    if patients.empty:
        st.info("No patients yet — record the first session on the *Record session* page.")
        st.stop()
    pseudonym = st.selectbox("Patient", patients["patient_id"].tolist(), key="progress_patient")
    patient_id = int(patients.loc[patients["patient_id"] == pseudonym, "id"].iloc[0])

if patient_id is None:
    st.info("There is no record to show yet.")
    st.stop()

episodes, sessions = resources.patient_record(url, patient_id)
if sessions.empty:
    st.info("No sessions yet — record the first one on the *Record session* page.")
    st.stop()

episode_labels = {
    int(row.id): f"{(row.condition or 'unspecified condition').replace('_', ' ')} ({row.sessions} sessions)"
    for row in episodes.itertuples()
    if row.sessions
}
episode_id = next(iter(episode_labels))
if len(episode_labels) > 1:
    episode_id = st.selectbox("Course of treatment", list(episode_labels), format_func=episode_labels.get,
                              key="progress_episode")
improvement = cumulative_improvement(sessions[sessions["episode_id"] == episode_id])
last = improvement.iloc[-1]

st.info(progress_sentence(improvement), icon=":material/insights:")

first_col, second_col, third_col = st.columns(3)
first_col.metric("Sessions", len(improvement))
second_col.metric(
    "Pain now (0–100)", f"{last['pain_before_points']:.0f}",
    delta=f"{-last['improvement_points']:+.0f} points since first session" if len(improvement) > 1 else None,
    delta_color="inverse",
)
third_col.metric(
    "Improvement",
    f"{last['improvement_pct']:.0f} %" if pd.notna(last["improvement_pct"]) else "—",
    help="Reduction in pain before this session compared with before the first session. "
         "15 % is a minimal, 30 % an important and 50 % a substantial improvement (IMMPACT).",
)

st.plotly_chart(charts.patient_progress_figure(improvement), key="progress_chart")


def _effects_text(codes: str) -> str:
    if not codes:
        return "none"
    items = [item.split(":") for item in codes.split(";")]
    return ", ".join(f"{SIDE_EFFECTS.get(code, code).lower()} ({severity})" for code, severity in items)


table = pd.DataFrame(
    {
        "Session": improvement["session_number"],
        "Date": improvement["session_date"],
        "Technique": improvement["technique"].map(TECHNIQUE_LABELS),
        "Pain before (0–100)": improvement["pain_before_points"],
        "Pain after (0–100)": improvement["pain_after_points"],
        "Improvement (points)": improvement["improvement_points"],
        "Improvement (%)": improvement["improvement_pct"].round(0),
        "Side effects": improvement["side_effects"].map(_effects_text),
    }
)
if not is_patient:
    table["Muscles"] = improvement["muscles"].str.replace(";", ", ").str.replace("_", " ")
    table["Clinician"] = improvement["clinician"]
    table["Notes"] = improvement["notes"]  # shown as plain text by st.dataframe, never as markdown or HTML
st.subheader("Session by session")
st.dataframe(table, hide_index=True, key="progress_table")
