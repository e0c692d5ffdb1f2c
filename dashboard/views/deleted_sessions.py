"""Deleted sessions (admins): what was deleted, by whom and why; restore brings a session back to every chart."""

import streamlit as st

from dashboard import actions, resources
from dashboard.auth import current_actor
from dashboard.confirm import confirmed, done, refused, show_result
from dashboard.text import literal

actor = current_actor()
st.title("Deleted sessions")
PAGE = "deleted_sessions"
show_result(PAGE)

deleted = resources.deleted_sessions(actor)
if deleted.empty:
    st.info("No deleted sessions. A clinician's deletion appears here with its reason.")
    st.stop()
st.dataframe(deleted, hide_index=True, placeholder="", key="deleted_table", column_config={
    "session_id": st.column_config.NumberColumn("Session id", format="%d"), "patient_id": "Patient",
    "session_date": "Session date", "technique": "Technique",
    "deleted_at": st.column_config.DatetimeColumn("Deleted (UTC)", format="YYYY-MM-DD HH:mm"),
    "deleted_by": "Deleted by", "deleted_reason": "Reason",
})
by_id = deleted.set_index("session_id")
chosen = st.selectbox(
    "Session to restore", deleted["session_id"].tolist(), key="restore_choice",
    format_func=lambda i: "{patient_id}, {session_date} ({technique})".format(**by_id.loc[i].to_dict()),
)
label = "the session of {patient_id} on {session_date}".format(**by_id.loc[chosen].to_dict())
if confirmed("Restore session", f"Restore {literal(label)}? It comes back to every chart and figure.",
             key="restore_session", target=int(chosen)):
    try:
        actions.restore_session(actor, int(chosen))
    except ValueError as problem:  # dated after a discharge, or restored by another admin meanwhile
        refused(PAGE, f"Not restored. {literal(str(problem))}")
    else:
        done(PAGE, f"Restored {literal(label)}.")
