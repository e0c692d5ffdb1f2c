"""Record a session: one form, sensible defaults, every problem named before anything is saved."""

from datetime import date

import streamlit as st

from clinic.side_effects import describe
from clinic.vocabulary import (
    COMMON_MUSCLES,
    CONDITIONS,
    PAIN_SCALE_LABELS,
    SEVERITIES,
    STRICTA_ITEMS,
    TECHNIQUE_LABELS,
    condition_words,
)
from dashboard import actions, charts, episode_question, needling_data, resources, scale_question, session_form
from dashboard.auth import current_actor
from dashboard.patient_picker import pick_patient
from dashboard.text import literal, refusal
from db.episodes import EpisodeUndecided
from db.validation import InvalidInput

NEW_PATIENT = "New patient…"
# What one session's entry holds, and its empty value: blanked whenever the form starts again (another patient, or
# after a save), so nothing typed for one patient can be saved onto the next.
ENTRY_BLANKS = {"new_patient_id": "", "new_patient_name": "", "pain_before": None, "pain_after": None, "notes": "",
                **{f"side_effects_{severity}": [] for severity in SEVERITIES}}
NEEDLING = "stricta_"  # the needling record's widget keys: "stricta_depth_mm", …
PAIN_BEFORE = "Pain before (VAS 0–100 mm or NRS 0–10)"


def saved_summary(number: int, entry, name: str | None, episode: int = 1) -> str:
    """Return who and what was saved, in words: "session 3 for P0002 — name: 2026-12-01, Deep dry needling, …"
    ("session 1 for P0002 (episode 2 of neck pain): …" in a patient's later course of care)."""
    who = f"{entry.patient_id} — {name}" if name else entry.patient_id
    course = f" (episode {episode} of {condition_words(entry.condition)})" if episode > 1 else ""
    pains = f"pain {entry.pain_before:g}" + (f" → {entry.pain_after:g}" if entry.pain_after is not None else "")
    effects = describe(entry.side_effects, none="no side effects")
    return (f"session {number} for {literal(who)}{course}: {entry.session_date:%Y-%m-%d}, "
            f"{TECHNIQUE_LABELS[entry.technique]}, {pains} ({PAIN_SCALE_LABELS[entry.pain_scale]}), {effects}.")


def switch_to_vas() -> None:
    """Take the typed numbers as VAS millimetres (the one-click answer to a VAS value typed on the NRS)."""
    st.session_state["pain_scale"] = "vas_100"


def after_save(number: int, entry, name: str | None, episode: int) -> None:
    """Say who and what was saved, and rerun with the saved patient picked and a clean form."""
    summary = saved_summary(number, entry, name, episode)
    episode_question.forget()
    scale_question.forget()
    st.session_state.update(select_after_save=entry.patient_id, last_saved_entry=entry, last_saved_summary=summary,
                            last_saved=f"Saved {summary}", saves=st.session_state.get("saves", 0) + 1)
    st.rerun()


actor = current_actor()
st.title("Record session")

if saved_patient := st.session_state.pop("select_after_save", None):
    # After a save, show that patient's chart and start the next entry from a clean form (keeps input on errors).
    st.session_state["record_patient"] = saved_patient
    st.session_state["defaults_for"] = None

chosen, patients = pick_patient(actor, key="record_patient", new_option=NEW_PATIENT)
patient_row = patients[patients["patient_id"] == chosen].iloc[0] if chosen != NEW_PATIENT else None
clinicians = resources.filter_choices(actor)["clinicians"]

# Streamlit forgets a page's widget values when another page is shown, so "muscles" missing means: set them again.
if st.session_state.get("defaults_for") != chosen or "muscles" not in st.session_state:
    # A new patient choice starts the form from that patient's last session (technique, muscles, scale, condition)
    # and with every value of the entry itself blank. Values are assigned, not deleted: a deleted widget value
    # would come back from the browser, which still shows it.
    defaults: dict = {}
    episode_question.forget()  # a question about another patient's episode is no question here
    scale_question.forget()
    if patient_row is not None:
        defaults = resources.last_session_defaults(actor, int(patient_row["id"]))
    technique = defaults.get("technique", "deep")
    # The needling record starts from the patient's last one too (a routine follow-up changes nothing of it).
    needling = needling_data.last_needling_defaults(actor, int(patient_row["id"])) if patient_row is not None else {}
    twitches = needling.get("twitch_count")
    st.session_state.update(
        {f"{NEEDLING}{name}": needling.get(name) for name in STRICTA_ITEMS if name != "adjuncts"},
        **{f"{NEEDLING}adjuncts": needling.get("adjuncts") or []},
    )
    st.session_state.update(
        ENTRY_BLANKS,
        defaults_for=chosen,
        technique=technique,
        condition=defaults["condition"] if defaults.get("condition") in CONDITIONS else CONDITIONS[0],
        body_region=defaults.get("body_region") or "",
        muscles=[m for m in (defaults.get("muscles") or "").split(";") if m],
        pain_scale=defaults.get("pain_scale", "vas_100"),
        last_pain=(defaults.get("pain_scale"), defaults.get("pain_before")),  # what a VAS pain is checked against
        last_needling=needling_data.completeness_words(needling) if needling else None,
        twitch=("Yes" if twitches > 0 else "No") if twitches is not None else
        "No" if technique == "superficial" else "Yes",
        clinician=actor.username if actor.username in clinicians else (clinicians or [""])[0],
        session_date=date.today(),  # a back-dated entry for one patient is never carried to the next
    )

# Outside the form, so that choosing electrical needling shows its stimulation fields at once.
technique = session_form.technique(st, key="technique")

with st.form("session_form", clear_on_submit=False, enter_to_submit=False):
    with st.container(key="recording_for"):
        if chosen == NEW_PATIENT:
            st.markdown("Recording for **a new patient**")
        else:
            st.markdown(f"Recording for **{literal(patient_row['label'])}**")
    if words := st.session_state.get("last_needling"):
        st.caption(f"Last session's needling record, the start of this one — {words}")
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
        session_date = session_form.session_date(st, key="session_date")
        condition = st.selectbox("Condition", CONDITIONS, key="condition", format_func=lambda c: c.replace("_", " "))
        body_region = st.text_input("Body region", key="body_region", placeholder="e.g. neck")
        muscles = st.multiselect(
            "Muscles treated", sorted(set(COMMON_MUSCLES) | set(st.session_state["muscles"])),
            accept_new_options=True, key="muscles", format_func=lambda m: m.replace("_", " "),
        )
        twitch = session_form.twitch_response(st, key="twitch")
        clinician = st.selectbox("Clinician", clinicians or [actor.username], key="clinician")
    with right:
        pain_scale = session_form.pain_scale(st, key="pain_scale")
        pain_before = session_form.pain(st, PAIN_BEFORE, value=None, key="pain_before", placeholder="required")
        pain_after = session_form.pain_after(st, value=None, key="pain_after", placeholder="optional")
        side_effects = session_form.side_effects(st, key="side_effects")
        notes = session_form.notes(st, key="notes", height=100)
    needling = session_form.needling(st, technique=technique, key=NEEDLING)
    # Asked only after a Save that could start a new episode of care (a long gap, a discharge), or would become the
    # episode's baseline (dated before its first session): never decided silently.
    answer = episode_question.ask()
    # Asked only after a Save of VAS pains of 10 mm or less for a patient whose last session began at 30 of 100 or more.
    vas_confirmed = scale_question.ask()
    # A new button after every save: a click on the last form's button (a double click, a slow network) triggers
    # nothing in the next one, however the two runs interleave.
    submitted = st.form_submit_button("Save session", type="primary",
                                      key=f"save_session_{st.session_state.get('saves', 0)}")


if submitted:
    data = {
        "patient_id": patient_id, "session_date": session_date, "technique": technique,
        "pain_scale": pain_scale, "pain_before": pain_before, "pain_after": pain_after,
        "side_effects": side_effects, "condition": condition, "body_region": body_region.strip().lower() or None,
        "clinician": clinician, "twitch_response": twitch, "muscles": muscles, "notes": notes,
        **needling,
    }
    if pain_before is None:
        data.pop("pain_before")
    try:
        entry = actions.check_session(data)
        scale_question.check(entry, *st.session_state.get("last_pain", (None, None)), vas_confirmed(entry))
        # A second click, or a click sent before the cleared form reached the browser, repeats the last save:
        # the same patient and values. It would store a duplicate session.
        repeated = entry == st.session_state.get("last_saved_entry")
        if not repeated:
            # Claimed before writing: a run cut short after the commit (a second click interrupts it) still guards.
            st.session_state["last_saved_entry"] = entry
            st.session_state.pop("last_saved_summary", None)  # until this save says what it saved
            try:
                episode, number = actions.record_session(actor, entry, patient_name, answer(entry),
                                                         new_patient=chosen == NEW_PATIENT)
            except BaseException:
                st.session_state.pop("last_saved_entry", None)  # nothing was saved: the same entry may be tried again
                raise
    except EpisodeUndecided as undecided:
        episode_question.pose(undecided.question, entry)  # reruns with the question in the form, when it is new
        st.error(episode_question.refusal(undecided.question), icon="⚠️")
    except scale_question.Unconfirmed:
        st.error("Not saved yet: say above that the VAS pains are right, or choose NRS 0–10 as the scale, then save.",
                 icon="⚠️")
    except InvalidInput as refused:
        # A problem quotes the value typed (a body region, a muscle, an id): shown as typed, never as markdown.
        st.error(refusal(refused.problems), icon="⚠️")
        if pain_scale == "nrs_10" and any(v is not None and 10 < v <= 100 for v in (pain_before, pain_after)):
            st.button("These are VAS values: switch the scale to VAS 0–100 mm", key="switch_to_vas",
                      on_click=switch_to_vas, icon=":material/swap_horiz:",
                      help="The patient's last session used the NRS 0–10; this entry's numbers fit the VAS.")
    else:
        if repeated:
            saved = st.session_state.get("last_saved_summary", f"a session for {literal(entry.patient_id)}.")
            st.warning(f"Already saved as {saved} Not saved again.", icon="ℹ️")
        else:
            after_save(number, entry, patient_row["name"] if patient_row is not None else patient_name, episode)


if message := st.session_state.pop("last_saved", None):
    st.success(message, icon="✅")
    if saved_entry := st.session_state.get("last_saved_entry"):
        st.caption(needling_data.completeness_words(saved_entry))  # how complete the needling record just saved is

if patient_row is not None:
    _, sessions, _ = resources.patient_record(actor, int(patient_row["id"]))
    if not sessions.empty:
        # The latest episode of the condition chosen in the form, else the patient's latest one.
        of_condition = sessions.loc[sessions["condition"] == condition, "episode_id"]
        if of_condition.empty:
            of_condition = sessions.sort_values("session_date")["episode_id"].iloc[-1:]
        episode_id = int(of_condition.iloc[-1])  # its latest course
        figure = resources.episode_progress(actor, int(patient_row["id"]), episode_id)["figure"]
        st.header(f"Progress of {literal(chosen)}")
        st.plotly_chart(figure, key="record_chart", config=charts.CONFIG)
        recent = sessions[sessions["episode_id"] == episode_id].tail(5)
        labels = needling_data.patient_completeness(actor, int(patient_row["id"]), recent)
        with st.container(key="recent_stricta"):
            st.caption("STRICTA items recorded in the course's last sessions (✓: complete, at least 90 %): "
                       + " · ".join(f"session {number}: {label}"
                                    for number, label in zip(recent["session_number"], labels, strict=True)))
