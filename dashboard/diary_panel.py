"""What patients report, drawn: the diary entry's fields (patient), and the panel on Patient progress (clinicians).

Reads and writes go through dashboard.diary_data, like a page's.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import streamlit as st

from clinic.patient_reports import (
    ACTIVITY_MAX,
    AFTER_ALERT_ADVICE,
    ANNOTATION_MAX,
    NOTE_MAX,
    PATIENT_EFFECTS,
    PGIC_SCALE,
    PSFS_MAX_ACTIVITIES,
    PSFS_MID,
    SEVERITIES_FOR_PATIENTS,
    SOURCES,
    WINDOW_LABELS,
    effect_in_patient_words,
)
from clinic.vocabulary import ALERT_SEVERITIES, SEVERITIES
from dashboard import charts, diary_data
from dashboard.confirm import done, refused
from dashboard.text import literal
from db.access import Actor

PROGRESS_PAGE = "views/patient_progress.py"
DIARY_PAGE = "views/my_diary.py"
ENTRIES_SHOWN = 12  # a patient's latest entries on their phone; the clinician's table has them all
SORENESS_LABEL = "How sore is it where you were needled? 0 = not sore, 10 = as sore as you can imagine"


def day(moment: date | datetime | str) -> str:
    """Return a date in words a patient reads at a glance ("Tue 1 Dec")."""
    return pd.Timestamp(moment).strftime("%a %-d %b")


def _effects_of(entry_id: int, effects: pd.DataFrame) -> dict[str, str]:
    rows = effects[effects["entry_id"] == entry_id]
    return dict(zip(rows["code"], rows["severity"], strict=True))


def entry_fields(key: str, entry=None, effects: pd.DataFrame | None = None) -> tuple[int | None, dict, str]:
    """Draw a diary entry's fields (soreness in one tap, the side-effect checklist with a severity per checked
    effect, a note), filled with `entry`'s values when it is corrected; return (soreness, {code: severity}, note)."""
    before = {} if entry is None else _effects_of(int(entry.entry_id), effects)
    soreness = st.segmented_control(SORENESS_LABEL, list(range(11)), key=f"{key}_soreness",
                                    default=None if entry is None else int(entry.soreness))
    checked = st.pills("Did you have any of these? Tap any you had.", list(PATIENT_EFFECTS), selection_mode="multi",
                       format_func=PATIENT_EFFECTS.get, default=list(before), key=f"{key}_effects")
    severities = {}
    for code in checked:
        severities[code] = st.radio(
            f"{PATIENT_EFFECTS[code]}: how bad was it?", SEVERITIES, format_func=SEVERITIES_FOR_PATIENTS.get,
            index=SEVERITIES.index(before[code]) if code in before else None, key=f"{key}_{code}_severity")
    note = st.text_area("Anything else to tell your physio? (optional)", max_chars=NOTE_MAX, key=f"{key}_note",
                        value="" if entry is None else entry.note, height=80)
    return soreness, severities, note


def advice_after(effects: dict[str, str | None]) -> str | None:
    """Return what to do now when a saved entry reports a side effect that needed a doctor or worse, else None: the
    alert reaches the physio, but a patient who is unwell should not wait for it."""
    return AFTER_ALERT_ADVICE if any(severity in ALERT_SEVERITIES for severity in effects.values()) else None


def entry_words(entry, effects: pd.DataFrame) -> str:
    """Return one diary entry in words, as markdown, as the patient reads it back: when, which window, soreness,
    side effects (with the severity in the words the patient chose), note."""
    found = _effects_of(int(entry.entry_id), effects)
    parts = [f"**{day(entry.recorded_at)}**, {WINDOW_LABELS[int(entry.window_h)].lower()}, after the session of "
             f"{day(entry.session_date)}", f"soreness **{int(entry.soreness)} of 10**"]
    parts += [effect_in_patient_words(code, severity) for code, severity in found.items()]
    if isinstance(entry.note, str) and entry.note.strip():
        parts.append(f"“{literal(entry.note.strip())}”")
    return " · ".join(parts)


def reported_between_sessions(actor: Actor, patient_id: int, episode_id: int) -> None:
    """Draw what the patient reported between sessions under their session chart (Patient progress): for the
    patient, what is due and a link to their diary; for clinicians, the diary, PGIC and PSFS, and annotations."""
    if actor.role == "patient":
        due = diary_data.due_entries(actor, patient_id)
        if not due.empty:
            st.info(f"Your diary has {len(due)} question(s) waiting: how sore you are after your session.",
                    icon=":material/notifications:")
        st.page_link(DIARY_PAGE, label="Open my diary", icon=":material/edit_note:")
        return
    reports = diary_data.patient_reports(actor, patient_id)
    st.header("Between sessions, as the patient reported")
    diary = reports["diary"][reports["diary"]["episode_id"] == episode_id]
    effects = reports["effects"][reports["effects"]["entry_id"].isin(diary["entry_id"])]
    pgic = reports["pgic"][reports["pgic"]["episode_id"] == episode_id]
    psfs = reports["psfs"][reports["psfs"]["episode_id"] == episode_id]
    writer = actor.role in ("clinician", "admin")
    if diary.empty and pgic.empty and psfs.empty:
        st.caption("Nothing reported for this course yet: patients fill in their diary on their own phone.")
        if writer:
            _on_behalf(actor, episode_id, psfs)
        return
    if not diary.empty:
        st.plotly_chart(diary_data.soreness_figure(diary), key="diary_chart", config=charts.CONFIG)
        st.caption("Soreness where needled, 0–10, as the patient reported it about 6, 24, 48 and 72 hours after each "
                   "session (a line per session, the latest darkest). Source: " + SOURCES["diary"] + ".")
        _entries_table(diary, effects, reports["annotations"])
    _scores(pgic, psfs)
    if writer and not diary.empty:
        _annotate(actor, diary)
    if writer:
        _on_behalf(actor, episode_id, psfs)


def _entries_table(diary: pd.DataFrame, effects: pd.DataFrame, annotations: pd.DataFrame) -> None:
    notes = (annotations.assign(line=annotations["author"].fillna("?") + ": " + annotations["text"])
             .groupby("entry_id")["line"].agg(" | ".join) if not annotations.empty else pd.Series(dtype=str))
    diary = diary.sort_values(["session_date", "window_h"], ascending=False)  # the newest first, in view
    table = pd.DataFrame({
        "Session of": diary["session_date"],
        "When": diary["window_h"].map(lambda w: f"{w} h"),
        "Soreness (0–10)": diary["soreness"],
        "Side effects (patient-reported)": [
            ", ".join(f"{PATIENT_EFFECTS[c]} ({s})" for c, s in _effects_of(int(i), effects).items())
            for i in diary["entry_id"]],
        "Note": diary["note"],
        "Recorded": pd.to_datetime(diary["recorded_at"]).dt.strftime("%Y-%m-%d %H:%M"),
        "Corrected": diary["corrected_at"].notna().map({True: "yes", False: ""}),
        "Clinic's notes": diary["entry_id"].map(lambda entry: notes.get(entry, "")),
    })
    st.dataframe(table, hide_index=True, key="diary_table", placeholder="")


def _scores(pgic: pd.DataFrame, psfs: pd.DataFrame) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Global impression of change (PGIC)")
        if pgic.empty:
            st.caption("Not answered yet.")
        else:
            last = pgic.iloc[-1]
            st.metric(f"Latest, {day(last['answered_at'])}", PGIC_SCALE[int(last["score"])],
                      help=f"{len(pgic)} answer(s). " + SOURCES["pgic"])
            st.caption(" → ".join(PGIC_SCALE[int(s)] for s in pgic["score"].tail(6)))
    with right:
        st.subheader("Patient-Specific Functional Scale (PSFS)")
        if psfs.empty:
            st.caption("No activities named yet.")
        else:
            table = psfs[["name", "first_score", "last_score", "change"]].rename(
                columns={"name": "Activity", "first_score": "First", "last_score": "Latest", "change": "Change"})
            st.dataframe(table, hide_index=True, key="psfs_table", placeholder="")
            st.caption(f"0 = unable, 10 = as before. A change of the mean by {PSFS_MID['small']} / "
                       f"{PSFS_MID['medium']} / {PSFS_MID['large']} points is a small / medium / large "
                       "improvement. " + SOURCES["psfs"])


def _annotate(actor: Actor, diary: pd.DataFrame) -> None:
    labels = {int(row.entry_id): f"{row.session_date} · {row.window_h} h · soreness {row.soreness}"
              for row in diary.itertuples()}
    with st.form("annotate_form", border=True):
        st.markdown("**Add a note to an entry** (the patient's answer itself never changes)")
        entry_id = st.selectbox("Entry", list(labels), format_func=labels.get, key="annotate_entry")
        text = st.text_area("Note", max_chars=ANNOTATION_MAX, key="annotate_text")
        if st.form_submit_button("Add note", key="annotate_save"):
            try:
                diary_data.annotate_entry(actor, int(entry_id), text)
            except ValueError as problem:
                refused("progress", f"Not saved. {literal(problem)}")
            else:
                done("progress", "Added a note to the patient's diary entry.", reset={"annotate_text": ""})


def _on_behalf(actor: Actor, episode_id: int, psfs: pd.DataFrame) -> None:
    """Draw the forms a clinician fills in with the patient in the clinic: a PGIC answer, the PSFS activities (at
    the start of the course) or their ratings; each stored as entered by the clinician."""
    with st.expander("Record the patient's answers given in the clinic (PGIC, PSFS)", icon=":material/edit:"):
        with st.form("behalf_pgic_form", border=False):
            score = st.selectbox("PGIC: the patient's answer", list(PGIC_SCALE), format_func=PGIC_SCALE.get,
                                 index=None, key="behalf_pgic")
            if st.form_submit_button("Save PGIC", key="behalf_pgic_save"):
                _saved(lambda: diary_data.record_pgic(actor, episode_id, score), "Saved the patient's PGIC answer.",
                       reset={"behalf_pgic": None})
        with st.form("behalf_psfs_form", border=False):
            if psfs.empty:
                st.markdown("**PSFS**: up to three activities the patient finds hard, each rated 0–10 now")
                named = [(st.text_input(f"Activity {k}", key=f"behalf_name_{k}", max_chars=ACTIVITY_MAX),
                          st.number_input(f"Rating of activity {k} (0–10)", 0, 10, value=None, step=1,
                                          key=f"behalf_first_{k}")) for k in range(1, PSFS_MAX_ACTIVITIES + 1)]
                if st.form_submit_button("Save activities", key="behalf_psfs_save"):
                    _saved(lambda: diary_data.name_activities(actor, episode_id, named), "Saved the activities.")
            else:
                st.markdown("**PSFS**: rate each activity 0–10 as the patient does it now")
                ratings = {int(row.activity_id): st.number_input(
                    f"{literal(row.name)} (0–10)", 0, 10, value=None, step=1, key=f"behalf_rate_{row.activity_id}")
                    for row in psfs.itertuples()}
                if st.form_submit_button("Save ratings", key="behalf_psfs_save"):
                    _saved(lambda: diary_data.rate_activities(actor, ratings), "Saved the ratings.",
                           reset={f"behalf_rate_{activity}": None for activity in ratings})


def _saved(write, message: str, reset: dict | None = None) -> None:
    """Run a write; on a refusal show it in one line, else keep `message` as the page's result and empty `reset`."""
    try:
        write()
    except ValueError as problem:
        refused("progress", f"Not saved. {literal(problem)}")
    else:
        done("progress", message, reset=reset)
