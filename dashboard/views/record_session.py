"""Record a session: one form, sensible defaults, every problem named before anything is saved."""

from datetime import date

import streamlit as st
from sqlmodel import Session

from dashboard import resources
from dashboard.navigation import current_actor
from dashboard.text import literal
from db import queries
from db.engine import database_url, write_session
from db.models import (
    COMMON_MUSCLES,
    CONDITIONS,
    PAIN_SCALE_LABELS,
    SEVERITIES,
    SIDE_EFFECTS,
    TECHNIQUE_LABELS,
    TECHNIQUES,
)
from db.validation import InvalidInput, validate_session
from db.writes import record_session

NEW_PATIENT = "New patient…"
FORM_KEYS = ("new_patient_id", "new_patient_name", "pain_before", "pain_after", "notes", "side_effects_mild",
             "side_effects_significant", "side_effects_serious")
TWITCH = {"Yes": True, "No": False, "Not recorded": None}

actor = current_actor()
url = database_url()
st.title("Record session")

if saved_patient := st.session_state.pop("select_after_save", None):
    # After a save, show that patient's chart and start the next entry from a clean form (keeps input on errors).
    st.session_state["record_patient"] = saved_patient
    for key in FORM_KEYS:
        st.session_state.pop(key, None)

# A network holds hundreds of thousands of patients: offer a bounded list (queries.PICKER_LIMIT), narrowed by a
# search in the database, plus the patient already picked (as after a save), rather than every patient.
pick_column, search_column = st.columns([2, 1], vertical_alignment="bottom")
search = search_column.text_input("Find patient", key="record_search", placeholder="Patient id or name",
                                  help="Narrow the list to ids starting with, or names containing, this text.")
picked = st.session_state.get("record_patient")
with Session(resources.engine()) as session:
    patients = queries.find_patients(session, actor=actor, search=search,
                                     include=(picked,) if picked and picked != NEW_PATIENT else ())
options = [NEW_PATIENT] + patients["patient_id"].tolist()
chosen = pick_column.selectbox("Patient", options, key="record_patient", help="Type to search by pseudonymous id.")
if len(patients) >= queries.PICKER_LIMIT:
    pick_column.caption(f"The first {queries.PICKER_LIMIT} patients; find others by id or name.")
patient_row = patients[patients["patient_id"] == chosen].iloc[0] if chosen != NEW_PATIENT else None
clinicians = resources.filter_choices(url, actor)["clinicians"]

# Streamlit forgets a page's widget values when another page is shown, so "muscles" missing means: set them again.
if st.session_state.get("defaults_for") != chosen or "muscles" not in st.session_state:
    # A new patient choice starts the form from that patient's last session (technique, muscles, scale, condition).
    defaults: dict = {}
    if patient_row is not None:
        with Session(resources.engine()) as session:
            defaults = queries.last_session_defaults(session, actor=actor, patient_id=int(patient_row["id"]))
    technique = defaults.get("technique", "deep")
    st.session_state.update(
        defaults_for=chosen,
        technique=technique,
        condition=defaults["condition"] if defaults.get("condition") in CONDITIONS else CONDITIONS[0],
        body_region=defaults.get("body_region") or "",
        muscles=[m for m in (defaults.get("muscles") or "").split(";") if m],
        pain_scale=defaults.get("pain_scale", "vas_100"),
        twitch="No" if technique == "superficial" else "Yes",
        clinician=actor.username if actor.username in clinicians else (clinicians or [""])[0],
    )
    st.session_state.setdefault("session_date", date.today())

with st.form("session_form", clear_on_submit=False, enter_to_submit=False):
    if chosen == NEW_PATIENT:
        patient_id = st.text_input(
            "New patient id", key="new_patient_id", placeholder="e.g. P0301",
            help="Pseudonymous id: letters, digits, - and _ (no names).",
        )
        patient_name = st.text_input(
            "Patient name (optional)", key="new_patient_name",
            help="Seen by clinicians and admins only; managers and reports use the pseudonymous id.",
        )
    else:
        patient_id, patient_name = chosen, None
    left, right = st.columns(2)
    with left:
        session_date = st.date_input("Session date", key="session_date", format="YYYY-MM-DD")
        technique = st.radio(
            "Technique", TECHNIQUES, format_func=TECHNIQUE_LABELS.get, horizontal=True, key="technique"
        )
        condition = st.selectbox("Condition", CONDITIONS, key="condition", format_func=lambda c: c.replace("_", " "))
        body_region = st.text_input("Body region", key="body_region", placeholder="e.g. neck")
        muscles = st.multiselect(
            "Muscles treated", sorted(set(COMMON_MUSCLES) | set(st.session_state["muscles"])),
            accept_new_options=True, key="muscles", format_func=lambda m: m.replace("_", " "),
        )
        twitch = st.radio("Local twitch response", list(TWITCH), horizontal=True, key="twitch")
        clinician = st.selectbox("Clinician", clinicians or [actor.username], key="clinician")
    with right:
        pain_scale = st.radio(
            "Pain scale", list(PAIN_SCALE_LABELS), format_func=PAIN_SCALE_LABELS.get, horizontal=True,
            key="pain_scale",
        )
        pain_before = st.number_input(
            "Pain before (VAS 0–100 mm or NRS 0–10)", value=None, step=1.0, key="pain_before",
            placeholder="required",
        )
        pain_after = st.number_input(
            "Pain right after (optional)", value=None, step=1.0, key="pain_after", placeholder="optional",
        )
        effects = {
            severity: st.multiselect(
                f"Side effects — {severity}", list(SIDE_EFFECTS), format_func=SIDE_EFFECTS.get,
                key=f"side_effects_{severity}",
                help="mild: short, reversible · significant: needs care or stops activities · "
                     "serious: hospital admission or lasting harm" if severity == "mild" else None,
            )
            for severity in SEVERITIES
        }
        notes = st.text_area("Notes", key="notes", height=100)
    submitted = st.form_submit_button("Save session", type="primary", key="save_session")

if submitted:
    side_effects = [(code, severity) for severity, codes in effects.items() for code in codes]
    data = {
        "patient_id": patient_id, "session_date": session_date, "technique": technique,
        "pain_scale": pain_scale, "pain_before": pain_before, "pain_after": pain_after,
        "side_effects": side_effects, "condition": condition, "body_region": body_region.strip().lower() or None,
        "clinician": clinician, "twitch_response": TWITCH[twitch], "muscles": muscles, "notes": notes,
    }
    if pain_before is None:
        data.pop("pain_before")
    try:
        entry = validate_session(data)
        with write_session(resources.engine()) as session:
            saved = record_session(session, actor=actor, entry=entry, patient_name=patient_name)
            number = saved.session_number
    except InvalidInput as refused:
        st.error("Not saved. Please correct:\n\n" + "\n".join(f"- {p}" for p in refused.problems), icon="⚠️")
    else:
        resources.clear_after_write()
        st.session_state["select_after_save"] = entry.patient_id
        st.session_state["last_saved"] = f"Saved session {number} for {literal(entry.patient_id)}."
        st.rerun()

if message := st.session_state.pop("last_saved", None):
    st.success(message, icon="✅")

if patient_row is not None:
    _, sessions = resources.patient_record(url, actor, int(patient_row["id"]))
    if not sessions.empty:
        # The episode of the condition chosen in the form, else the patient's latest one.
        of_condition = sessions.loc[sessions["condition"] == condition, "episode_id"]
        if of_condition.empty:
            of_condition = sessions.sort_values("session_date")["episode_id"].iloc[-1:]
        episode_id = int(of_condition.iloc[0])
        _, figure = resources.episode_progress(url, actor, int(patient_row["id"]), episode_id)
        st.subheader(f"Progress of {literal(chosen)}")
        st.plotly_chart(figure, key="record_chart")
