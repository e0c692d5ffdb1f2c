"""My diary, a patient's own page on their phone: soreness after each session, side effects, how they are doing."""

import pandas as pd
import streamlit as st

from clinic.patient_reports import (
    CORRECTION_HOURS,
    PGIC_QUESTION,
    PGIC_SCALE,
    PSFS_MAX_ACTIVITIES,
    PSFS_QUESTION,
    SOURCES,
    WINDOW_LABELS,
    opens_in,
)
from dashboard import diary_data, diary_panel
from dashboard.auth import current_actor
from dashboard.confirm import done, refused, show_result
from dashboard.text import literal

PAGE = "diary"
actor = current_actor()
st.title("My diary")
if actor.role != "patient" or actor.patient_id is None:  # the page is in a patient's menu only
    st.info("This page is a patient's own diary.")
    st.stop()
# A patient writes only their own diary: the id comes from their account, never from a widget or the URL.
patient_id = int(actor.patient_id)
show_result(PAGE)
st.page_link(diary_panel.PROGRESS_PAGE, label="See my progress", icon=":material/show_chart:")

reports = diary_data.patient_reports(actor, patient_id)
due = diary_data.due_entries(actor, patient_id)

# -- what is due: one soreness entry ----------------------------------------------------------------------------------
st.header("How sore are you today?")
if due.empty:
    coming = diary_data.next_entry(actor, patient_id)
    st.success("Nothing to fill in now. Thank you! " + (
        f"Your next diary question opens {opens_in(coming, pd.Timestamp.now(tz='UTC'))}."
        if coming is not None
        else "After your next session we will ask how sore you are."), icon=":material/check_circle:")
else:
    labels = {int(i): f"{WINDOW_LABELS[row.window_h]}: after your session of {diary_panel.day(row.session_date)}"
              for i, row in due.iterrows()}
    chosen = next(iter(labels))
    if len(labels) > 1:
        chosen = st.segmented_control("Which one?", list(labels), format_func=labels.get, default=chosen,
                                      required=True, key="diary_due")
    item = due.loc[chosen]
    st.caption(labels[chosen])
    key = f"diary_{int(item.session_id)}_{int(item.window_h)}"
    soreness, effects, note = diary_panel.entry_fields(key)
    if st.button("Save", type="primary", key=f"{key}_save", width="stretch"):
        try:
            diary_data.record_entry(actor, int(item.session_id), soreness, effects, note)
        except ValueError as problem:
            refused(PAGE, f"Not saved. {literal(problem)}")
        else:
            done(PAGE, "Saved. Thank you! Your physio will see it.", advice=diary_panel.advice_after(effects))

# -- how they are doing: PGIC ----------------------------------------------------------------------------------------
st.header("How are you doing?")
pgic = reports["pgic"]
if not pgic.empty:
    last = pgic.iloc[-1]
    st.caption(f"Your last answer, {diary_panel.day(last['answered_at'])}: {PGIC_SCALE[int(last['score'])]}.")
if reports["pgic_due"]:
    st.info("Please answer this before your next session.", icon=":material/notifications:")
if reports["episode_id"] is None:
    st.caption("You can answer this once your treatment has started.")
else:
    with st.form("pgic_form", border=False):
        score = st.radio(PGIC_QUESTION, list(PGIC_SCALE), index=None, format_func=PGIC_SCALE.get, key="pgic_score")
        if st.form_submit_button("Save my answer", key="pgic_save", width="stretch"):
            try:
                diary_data.record_pgic(actor, reports["episode_id"], score)
            except ValueError as problem:
                refused(PAGE, f"Not saved. {literal(problem)}")
            else:
                done(PAGE, "Saved your answer. Thank you!", reset={"pgic_score": None})

# -- what they find hard: PSFS ---------------------------------------------------------------------------------------
st.header("Things you find hard")
activities = reports["psfs_activities"]
if reports["episode_id"] is None:
    st.caption("Your physio starts this with you at your first session.")
elif activities.empty:
    st.caption(PSFS_QUESTION)
    with st.form("psfs_name_form", border=False):
        named = []
        for position in range(1, PSFS_MAX_ACTIVITIES + 1):
            name = st.text_input(f"Activity {position}" + (" (optional)" if position > 1 else ""),
                                 key=f"psfs_name_{position}", placeholder="e.g. turning my head to drive")
            rating = st.segmented_control(f"How well can you do it now? (activity {position})", list(range(11)),
                                          key=f"psfs_first_{position}")
            named.append((name, rating))
        if st.form_submit_button("Save my activities", key="psfs_name_save", width="stretch"):
            try:
                diary_data.name_activities(actor, reports["episode_id"], named)
            except ValueError as problem:
                refused(PAGE, f"Not saved. {literal(problem)}")
            else:
                done(PAGE, "Saved your activities. We will ask you to rate them again later.")
else:
    st.caption("0 = unable to do it, 10 = able to do it as well as before the problem.")
    with st.form("psfs_rate_form", border=False):
        ratings = {}
        for activity in activities.itertuples():
            previous = "" if pd.isna(activity.last_score) else f" (last time {int(activity.last_score)})"
            ratings[int(activity.activity_id)] = st.segmented_control(
                f"{literal(activity.name)}{previous}", list(range(11)), key=f"psfs_rate_{activity.activity_id}")
        if st.form_submit_button("Save my ratings", key="psfs_rate_save", width="stretch"):
            try:
                diary_data.rate_activities(actor, ratings)
            except ValueError as problem:
                refused(PAGE, f"Not saved. {literal(problem)}")
            else:
                done(PAGE, "Saved your ratings. Thank you!")

# -- what they told us: their entries, correctable for a day ----------------------------------------------------------
st.header("What you told us")
diary = reports["diary"]
if diary.empty:
    st.caption("Your diary entries will show here.")
for entry in diary.head(diary_panel.ENTRIES_SHOWN).itertuples():
    entry_id = int(entry.entry_id)
    with st.container(border=True, key=f"entry_{entry_id}"):
        st.markdown(diary_panel.entry_words(entry, reports["effects"]))
        for line in diary_data.entry_history(reports, entry_id):
            st.caption(literal(line))
        if entry.correctable:
            with st.expander(f"Change this (for {CORRECTION_HOURS} hours after you saved it)"):
                key = f"correct_{entry_id}"
                soreness, effects, note = diary_panel.entry_fields(key, entry, reports["effects"])
                if st.button("Save the change", key=f"{key}_save", width="stretch"):
                    try:
                        diary_data.correct_entry(actor, entry_id, soreness, effects, note)
                    except ValueError as problem:
                        refused(PAGE, f"Not saved. {literal(problem)}")
                    else:
                        done(PAGE, "Changed. Your first answer is kept too, so your physio sees both.",
                             advice=diary_panel.advice_after(effects))

st.caption("Questions from: " + "; ".join(SOURCES.values()) + ". All free to use.")
