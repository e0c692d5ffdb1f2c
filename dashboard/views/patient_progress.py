"""Patient progress: pain at each session, improvement since the first, side effects, in plain words."""

import pandas as pd
import streamlit as st

from clinic.side_effects import describe
from clinic.vocabulary import TECHNIQUE_LABELS, condition_words, counted
from dashboard import (
    actions,
    episode_forms,
    episode_question,
    needling_data,
    recovery_sections,
    report,
    resources,
    session_form,
)
from dashboard.auth import current_actor
from dashboard.confirm import confirmed, done, refused, show_result
from dashboard.diary_panel import reported_between_sessions
from dashboard.patient_picker import pick_patient
from dashboard.text import literal, refusal
from db.access import CLINICAL_WRITERS
from db.episodes import EpisodeUndecided
from db.validation import InvalidInput

actor = current_actor()
is_patient = actor.role == "patient"
st.title("My progress" if is_patient else "Patient progress")
PAGE = "progress"

if is_patient:
    # A patient sees their own record only: the id comes from their account, never from a widget or the URL.
    patient_id = actor.patient_id
else:
    pseudonym, patients = pick_patient(actor, key="progress_patient")
    if pseudonym is None:
        st.info("No patient matches this search." if st.session_state.get("progress_patient_search", "").strip()
                else "No patients yet — record the first session on the *Record session* page.")
        st.stop()
    patient_id = int(patients.loc[patients["patient_id"] == pseudonym, "id"].iloc[0])

if st.session_state.get("progress_result_for") != patient_id:  # a result names one patient: not shown for another
    st.session_state.pop(f"{PAGE}_result", None)
    st.session_state["progress_result_for"] = patient_id
show_result(PAGE)

_, sessions, side_effects = resources.patient_record(actor, int(patient_id))
if sessions.empty:
    st.info("No sessions yet — record the first one on the *Record session* page.")
    st.stop()

# Each course of treatment: its condition, and its number when the patient has had more than one for it.
episodes = resources.patient_episodes(actor, int(patient_id))
repeated = episodes["condition"].fillna("").duplicated(keep=False)
episode_labels = {
    int(row.id): (episode_forms.course_label(row) if again else condition_words(row.condition))
    + f" ({counted(row.sessions, 'session')})"
    for row, again in zip(episodes.itertuples(), repeated, strict=True)
    if row.sessions
}
episode_id = next(iter(episode_labels))
if len(episode_labels) > 1:
    episode_id = st.selectbox("Course of treatment", list(episode_labels), format_func=episode_labels.get,
                              key="progress_episode")
progress = resources.episode_progress(actor, int(patient_id), episode_id)
improvement = progress["improvement"]
last = improvement.iloc[-1]

st.info(progress["sentence"], icon=":material/insights:")

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

# The chart, with the band of earlier patients like this one behind the improvement once it is computed (#18).
recovery_sections.progress_chart(actor, int(patient_id), int(episode_id), progress["figure"])

# The report of the course shown, for the patient to hand to their GP: built only when a button is clicked.
condition = episodes.loc[episodes["id"] == episode_id, "condition"].iloc[0]
report_for = dict(patient_id=str(sessions["patient_id"].iloc[0]), condition=None if pd.isna(condition) else condition)
whose = "my" if is_patient else "the patient's"
html_column, pdf_column = st.columns(2)
html_column.download_button(
    f"Report for {whose} GP (HTML)", data=actions.gp_report(
        "html", improvement, side_effects, actor=actor, patient=int(patient_id), **report_for),
    file_name=report.report_filename(suffix="html", **report_for), mime="text/html", on_click="ignore",
    icon=":material/download:", key="report_html", help="A page with the interactive chart that opens offline.",
)
pdf_column.download_button(
    f"Report for {whose} GP (PDF)", data=actions.gp_report(
        "pdf", improvement, side_effects, actor=actor, patient=int(patient_id), **report_for),
    file_name=report.report_filename(suffix="pdf", **report_for), mime="application/pdf", on_click="ignore",
    icon=":material/picture_as_pdf:", key="report_pdf", help="A printable summary with the chart and sessions.",
)

effects = report.effects_by_session(side_effects)  # (code, severity) pairs of each session

# On a 390 px phone only the first four columns fit beside each other: the pain columns come first, after the session
# number for the clinic and after the date for a patient, who finds a session by its date, the latest at the top.
table = pd.DataFrame(
    {
        "Session": improvement["session_number"],
        "Pain before (0–100)": improvement["pain_before_points"],
        "Pain after (0–100)": improvement["pain_after_points"],
        "Improvement (%)": improvement["improvement_pct"].round(0),
        "Improvement (points)": improvement["improvement_points"],
        "Date": improvement["session_date"],
        "Technique": improvement["technique"].map(TECHNIQUE_LABELS),
        "Side effects": [describe(effects.get(i, ())) for i in improvement["session_id"]],
    }
)
pain_width = 80 if is_patient else 90
columns = {
    "Session": st.column_config.NumberColumn("Session", width=70),
    "Pain before (0–100)": st.column_config.NumberColumn("Pain before", width=pain_width, format="%.0f"),
    "Pain after (0–100)": st.column_config.NumberColumn("Pain after", width=pain_width, format="%.0f"),
    "Improvement (%)": st.column_config.NumberColumn("Better by", width=pain_width, format="%.0f %%"),
    "Improvement (points)": st.column_config.NumberColumn("Better by (points)", format="%.0f"),
}
if not is_patient:
    table["Muscles"] = improvement["muscles"].str.replace(";", ", ").str.replace("_", " ")
    table["Clinician"] = improvement["clinician"]
    table["Notes"] = improvement["notes"]  # st.dataframe shows text cells literally, never as markdown or HTML
    table["STRICTA items"] = needling_data.patient_completeness(actor, int(patient_id), improvement)  # "9 of 9 ✓"
else:
    first = ["Date", "Pain before (0–100)", "Pain after (0–100)", "Improvement (%)"]
    table = table[[*first, *table.columns.drop(first)]].iloc[::-1]
    columns["Date"] = st.column_config.DateColumn("Date", width=95, format="D MMM YYYY")  # 3 Dec 2026
st.header("Session by session")
st.dataframe(table, hide_index=True, placeholder="", key="progress_table", column_config=columns)
st.caption(("Your latest session first. " if is_patient else "")
           + "Pain on a 0–100 scale (a 0–10 score counts ten times). *Better by*: how much lower the pain before "
           "this session was than before the first one.")
# What the patient reported between these sessions (#17): the diary, PGIC and PSFS, after the pain table,
# which stays the first table on a phone.
reported_between_sessions(actor, int(patient_id), int(episode_id))  # the diary, PGIC and PSFS (#17)

if actor.role not in CLINICAL_WRITERS:
    st.stop()

pseudonym = str(sessions["patient_id"].iloc[0])
st.header(f"Episodes of care of {literal(pseudonym)}")
st.caption("A course of treatment for one condition, from its start to its discharge. A session recorded long after "
           "the last one of its course, or after a discharge, asks whether it starts a new episode.")
episode_forms.courses_table(episodes)
start_column, discharge_column = st.columns(2)
with start_column:
    episode_forms.start_form(actor, int(patient_id), pseudonym, PAGE)
with discharge_column:
    episode_forms.discharge_form(actor, episodes, pseudonym, PAGE)
episode_forms.plan_form(actor, episodes, pseudonym, PAGE)  # the planned course of an open episode (STRICTA item 6)

st.header(f"Correct or delete a session of {literal(sessions['patient_id'].iloc[0])}")
by_number = improvement.set_index("session_number")
# One tap per session, no list to open (a select box here often needed two clicks). Keyed by patient and course:
# another patient's choice never carries over, and the latest session is chosen first.
picker = f"correct_number_{patient_id}_{episode_id}"
# The latest session by default; a kept choice, or the session just corrected (set by `done`), otherwise.
first_choice = {} if picker in st.session_state else {"default": int(by_number.index[-1])}
number = st.segmented_control("Session", [int(k) for k in by_number.index], required=True, key=picker,
                              **first_choice)
st.caption(f"Session {number} on {by_number.loc[number, 'session_date']}")
row = by_number.loc[number]
session_id = int(row["session_id"])
for line in resources.session_history(actor, session_id):
    st.caption(literal(line))

# The technique sits above the form, so a change shows or hides the stimulation fields at once and, before any
# save, names the stored stimulation it would remove. Keyed by the stored technique too: once saved, it starts anew.
technique = session_form.technique(st.columns(2)[0], compact=True, value=row["technique"],
                                   key=f"correct_technique_{session_id}_{row['technique']}")
try:
    stored_needling = needling_data.stored_needling(actor, session_id)
except ValueError:  # deleted by someone else since this run read the patient's sessions: the next run reads them anew
    st.warning(f"Session {number} has just been deleted by someone else: choose another session.")
    st.stop()
notice = st.empty()  # drawn either way: a warning coming and going must not move the form, which closes its expander
if removed := session_form.removed_stimulation(stored_needling, technique):
    notice.warning(f"Saving this session as {TECHNIQUE_LABELS[technique].lower()} removes its stored electrical "
                   f"stimulation: {removed}. The session's history keeps these values; choose electrical dry "
                   "needling again to keep them.", icon="⚠️")

with st.form(f"correct_{session_id}"):
    left, right = st.columns(2)
    date_value = session_form.session_date(left, value=row["session_date"])
    scale = session_form.pain_scale(right, compact=True, value=row["pain_scale"])
    pain_before = session_form.pain(right, "Pain before", value=float(row["pain_before"]))
    pain_after = session_form.pain_after(right, value=None if pd.isna(row["pain_after"]) else float(row["pain_after"]))
    chosen_effects = session_form.side_effects(left, chosen=effects.get(session_id, ()))
    notes = session_form.notes(right, value=row["notes"])
    # The needling record as stored (STRICTA), closed: most corrections are of the pain or the date.
    needling_box = st.expander("Needling record")
    twitch = session_form.twitch_response(
        needling_box, value=None if pd.isna(row["twitch_response"]) else bool(row["twitch_response"]))
    needling = session_form.needling(needling_box, technique=technique, values=stored_needling)
    # Asked only after a Save that dates a later session before the course's first: it would become the baseline.
    answer = episode_question.ask(prefix=f"correction_{session_id}")
    if st.form_submit_button("Save correction", key="save_correction"):
        data = {
            "patient_id": row["patient_id"], "session_date": date_value, "technique": technique,
            "pain_scale": scale, "pain_before": pain_before, "pain_after": pain_after,
            "side_effects": chosen_effects, "muscles": [m for m in row["muscles"].split(";") if m], "notes": notes,
            "twitch_response": twitch, **needling,
        }
        try:
            entry = actions.check_session(data)
            # A new date can renumber the course: the picker stays on this session under its new number.
            number, changed = actions.correct_session(actor, session_id, entry, answer(entry))
        except EpisodeUndecided as undecided:
            episode_question.pose(undecided.question, entry, prefix=f"correction_{session_id}")
            refused(PAGE, episode_question.refusal(undecided.question), icon="⚠️")
        except InvalidInput as problems:
            refused(PAGE, refusal(problems.problems))
        else:
            episode_question.forget(prefix=f"correction_{session_id}")
            what = "Corrected" if changed else "Nothing to correct: the form held the stored values of"
            gone = f" Removed its electrical stimulation ({removed}); its history keeps the values." if removed else ""
            done(PAGE, f"{what} session {number} of {literal(row['patient_id'])} ({entry.session_date}).{gone}",
                 reset={picker: number})

reason = st.text_input("Reason for deleting this session", key=f"delete_reason_{session_id}",
                       placeholder="e.g. recorded for the wrong patient")
label = f"session {number} of {literal(row['patient_id'])} ({row['session_date']})"
if confirmed("Delete session", f"Delete {label}? It leaves every chart and figure; an admin can restore it from "
             "*Deleted sessions*.", key="delete_session", target=session_id):
    try:
        actions.delete_session(actor, session_id, reason)
    except ValueError as problem:
        refused(PAGE, f"Not deleted. {literal(problem)}")
    else:
        # The course is renumbered without it: the picker moves to the latest session left.
        done(PAGE, f"Deleted {label}. Reason: {literal(reason.strip())}", reset={picker: max(1, len(by_number) - 1)})
