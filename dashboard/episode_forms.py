"""Episodes of care on the patient's page: the courses listed, a new one started, an open one discharged (#14).

Each write goes through `dashboard.actions` to `db.episodes`, which checks the role, validates and audits it.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from clinic.vocabulary import CONDITIONS, EPISODE_STATUSES, condition_words
from dashboard import actions, needling_data
from dashboard.confirm import done, refused
from dashboard.text import literal, refusal
from db.access import Actor
from db.validation import InvalidInput

COURSE_HEADERS = {"number": "Episode", "condition": "Condition", "body_region": "Body region", "goal": "Goal",
                  "started_on": "Started", "sessions": "Sessions", "last_session": "Last session",
                  "discharged_on": "Discharged", "status": "Status", "planned": "Planned course"}


def course_label(row) -> str:
    """Return an episode in words: "neck pain, episode 2"."""
    return f"{condition_words(row.condition)}, episode {row.number}"


def planned_words(sessions, per_week) -> str:
    """Return a planned course in words: "8 sessions, 2 a week" ("" when not recorded)."""
    parts = [f"{int(sessions)} sessions" if pd.notna(sessions) else "",
             f"{per_week:g} a week" if pd.notna(per_week) else ""]
    return ", ".join(part for part in parts if part)


def courses_table(episodes: pd.DataFrame) -> None:
    """Draw the patient's episodes of care, open ones with the status "open", each with its planned course."""
    shown = episodes.assign(
        condition=episodes["condition"].map(condition_words),
        status=episodes["status"].map(lambda s: EPISODE_STATUSES.get(s, "Open")),
        planned=[planned_words(n, w) for n, w in zip(episodes.get("planned_sessions", pd.Series(dtype=float)),
                                                     episodes.get("planned_per_week", pd.Series(dtype=float)),
                                                     strict=True)] if len(episodes) else [],
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
        planned_sessions, planned_per_week = planned_course(st, "start")
        if st.form_submit_button("Start episode", key="start_episode_submit"):
            try:
                number = needling_data.start_planned_episode(
                    actor, patient_id, planned_sessions, planned_per_week, condition=condition,
                    body_region=region.strip().lower() or None, goal=goal, started_on=started_on)
            except InvalidInput as problems:
                refused(page, refusal(problems.problems))
            else:
                done(page, f"Started episode {number} of {condition_words(condition)} for {literal(pseudonym)}; "
                           "its sessions are recorded on *Record session*.")


def planned_course(container, key: str, sessions: int | None = None,
                   per_week: float | None = None) -> tuple[int | None, float | None]:
    """Draw the planned course (STRICTA item 3): number of sessions and sessions a week, both optional."""
    left, right = container.columns(2)
    return (
        left.number_input("Planned sessions", value=sessions, step=1, placeholder="not planned",
                          key=f"{key}_planned_sessions", help="How many sessions the course is planned to have."),
        # Labelled as the refusal of a value out of range names it (STRICTA's "planned frequency").
        right.number_input("Planned frequency (sessions a week)", value=per_week, step=0.5, format="%g",
                           placeholder="not planned", key=f"{key}_planned_per_week",
                           help="e.g. 2 = twice a week, 0.5 = every other week."),
    )


def plan_form(actor: Actor, episodes: pd.DataFrame, pseudonym: str, page: str) -> None:
    """Draw the form that sets or changes the planned course of one of the patient's open episodes."""
    open_ones = {int(row.id): row for row in episodes.itertuples() if pd.isna(row.status)}
    if not open_ones:
        return
    st.markdown("**Plan the course**")
    # Outside the form: another episode chosen shows its own plan at once.
    episode_id = st.selectbox("Episode to plan", list(open_ones), format_func=lambda i: course_label(open_ones[i]),
                              key="plan_which")
    chosen = open_ones[episode_id]
    with st.form("plan_course", clear_on_submit=False, enter_to_submit=False):
        planned_sessions, planned_per_week = planned_course(
            st, f"plan_{episode_id}", None if pd.isna(chosen.planned_sessions) else int(chosen.planned_sessions),
            None if pd.isna(chosen.planned_per_week) else float(chosen.planned_per_week))
        if st.form_submit_button("Save the plan", key="plan_submit"):
            try:
                needling_data.plan_course(actor, episode_id, planned_sessions, planned_per_week)
            except InvalidInput as problems:
                refused(page, refusal(problems.problems))
            else:
                words = planned_words(planned_sessions, planned_per_week) or "not recorded"
                done(page, f"Planned course of {course_label(chosen)} of {literal(pseudonym)}: {words}.")


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
                refused(page, "Not saved. Please choose the status: goal met, dropped out, referred on or other.")
                return
            try:
                actions.discharge_episode(actor, episode_id, status, discharged_on)
            except InvalidInput as problems:
                refused(page, refusal(problems.problems))
            else:
                done(page, f"Discharged {open_ones[episode_id]} of {literal(pseudonym)} on {discharged_on}: "
                           f"{EPISODE_STATUSES[status].lower()}.")
