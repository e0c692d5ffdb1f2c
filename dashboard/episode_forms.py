"""Episodes of care on the patient's page: the courses listed, a new one started, an open one discharged (#14).

Each write goes through `dashboard.actions` to `db.episodes`, which checks the role, validates and audits it.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from clinic.vocabulary import CONDITIONS, EPISODE_STATUSES, condition_words
from dashboard import actions
from dashboard.confirm import done
from dashboard.text import literal, refusal
from db.access import Actor
from db.validation import InvalidInput

COURSE_HEADERS = {"number": "Episode", "condition": "Condition", "body_region": "Body region", "goal": "Goal",
                  "started_on": "Started", "sessions": "Sessions", "last_session": "Last session",
                  "discharged_on": "Discharged", "status": "Status"}


def course_label(row) -> str:
    """Return an episode in words: "neck pain, episode 2"."""
    return f"{condition_words(row.condition)}, episode {row.number}"


def courses_table(episodes: pd.DataFrame) -> None:
    """Draw the patient's episodes of care, open ones with the status "open"."""
    shown = episodes.assign(
        condition=episodes["condition"].map(condition_words),
        status=episodes["status"].map(lambda s: EPISODE_STATUSES.get(s, "Open")),
    )[list(COURSE_HEADERS)]
    st.dataframe(shown.rename(columns=COURSE_HEADERS), hide_index=True, placeholder="", key="courses_table")


def start_form(actor: Actor, patient_id: int, pseudonym: str, page: str) -> None:
    """Draw the form that starts the patient's next episode of care for a condition, with its goal."""
    with st.form("start_episode", clear_on_submit=False, enter_to_submit=False):
        st.markdown("**Start a new episode of care**")
        left, right = st.columns(2)
        condition = left.selectbox("Condition", CONDITIONS, format_func=condition_words, key="start_condition")
        region = right.text_input("Body region", placeholder="e.g. neck", key="start_region")
        goal = st.text_input("Goal", placeholder="e.g. turn the head to drive without pain", key="start_goal")
        started_on = left.date_input("Started", value=date.today(), format="YYYY-MM-DD", key="start_date")
        if st.form_submit_button("Start episode", key="start_episode_submit"):
            try:
                number = actions.start_episode(actor, patient_id, condition=condition,
                                               body_region=region.strip().lower() or None, goal=goal,
                                               started_on=started_on)
            except InvalidInput as refused:
                st.error(refusal(refused.problems))
            else:
                done(page, f"Started episode {number} of {condition_words(condition)} for {literal(pseudonym)}; "
                           "its sessions are recorded on *Record session*.")


def discharge_form(actor: Actor, episodes: pd.DataFrame, pseudonym: str, page: str) -> None:
    """Draw the form that discharges one of the patient's open episodes with a status and a date."""
    open_ones = {int(row.id): course_label(row) for row in episodes.itertuples() if pd.isna(row.status)}
    if not open_ones:
        st.caption("Every episode of care of this patient is discharged.")
        return
    with st.form("discharge_episode", clear_on_submit=False, enter_to_submit=False):
        st.markdown("**Discharge an episode of care**")
        episode_id = st.selectbox("Episode", list(open_ones), format_func=open_ones.get, key="discharge_which")
        status = st.radio("Status", list(EPISODE_STATUSES), index=None, format_func=EPISODE_STATUSES.get,
                          horizontal=True, key="discharge_status")
        discharged_on = st.date_input("Discharged", value=date.today(), format="YYYY-MM-DD", key="discharge_date")
        if st.form_submit_button("Discharge", key="discharge_submit"):
            if status is None:
                st.error("Not saved. Please choose the status: goal met, dropped out, referred on or other.")
                return
            try:
                actions.discharge_episode(actor, episode_id, status, discharged_on)
            except InvalidInput as refused:
                st.error(refusal(refused.problems))
            else:
                done(page, f"Discharged {open_ones[episode_id]} of {literal(pseudonym)} on {discharged_on}: "
                           f"{EPISODE_STATUSES[status].lower()}.")
