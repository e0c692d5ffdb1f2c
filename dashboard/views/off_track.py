"""Off track: the clinician's courses of treatment whose recovery is behind what earlier patients like them had,
newest first, each one click from the patient's progress page (issue #18; docs/METHODS.md, "On track")."""

import pandas as pd
import streamlit as st

from dashboard import recovery_data
from dashboard.analysis_status import ready
from dashboard.auth import current_actor
from dashboard.tables import show_table
from dashboard.text import literal

SHOWN = 50  # listed with their own button; the rest in a table below

actor = current_actor()
st.title("Off track")
st.caption(
    ("Your" if actor.role == "clinician" else "Every clinician's") + " courses of treatment not discharged yet "
    "whose latest session is off track: two sessions in a row below the expected 25th percentile of earlier patients "
    "like them, or no minimal important improvement (15 %) by session 4. A reason to look again, not a verdict: "
    "the band is observational, what happened to earlier patients here, not what this one should do."
)

listed = ready(lambda: recovery_data.off_track(actor), "off_track")
if listed is None:
    st.stop()
if listed.empty:
    st.success("No course of treatment is off track.", icon=":material/check_circle:")
    st.stop()

st.caption(f"**{len(listed)} course(s) of treatment off track**, the most recent session first.")
for row in listed.head(SHOWN).itertuples():
    text, button = st.columns([5, 1], vertical_alignment="center")
    improvement = "—" if pd.isna(row.improvement_pct) else f"{row.improvement_pct:.0f} %"
    text.markdown(
        f"**{literal(row.patient_id)}** · session {row.session_number} on "
        f"{pd.Timestamp(row.latest_session_date):%Y-%m-%d} · better by {improvement} · {literal(row.reason)}"
        + ("" if actor.role == "clinician" else f" · {literal(row.clinician or 'no clinician recorded')}")
    )
    if button.button("Open", key=f"open_{row.episode_id}", icon=":material/show_chart:",
                     help="Open this patient's progress at this course of treatment."):
        # The progress page's patient picker and course choice, set before it draws them.
        st.session_state["progress_patient"] = row.patient_id
        st.session_state["progress_episode"] = int(row.episode_id)
        st.session_state.pop("progress_patient_search", None)
        st.switch_page("views/patient_progress.py")
if len(listed) > SHOWN:
    st.caption(f"{len(listed) - SHOWN} older course(s) off track; open them from *Patient progress*:")
    show_table(listed.iloc[SHOWN:].drop(columns=["patient"]), "older_off_track",
               patient_id="Patient", latest_session_date="Latest session", improvement_pct="Better by (%)")
