"""Deleted sessions (admins): what was deleted, by whom and why; restore brings a session back to every chart."""

import streamlit as st
from sqlmodel import Session

from dashboard import resources
from dashboard.navigation import current_actor
from db import corrections
from db.engine import write_session

actor = current_actor()
st.title("Deleted sessions")

with Session(resources.engine()) as session:
    deleted = corrections.deleted_sessions(session, actor=actor)
if deleted.empty:
    st.info("No deleted sessions. A clinician's deletion appears here with its reason.")
    st.stop()
st.dataframe(deleted, hide_index=True, key="deleted_table")
chosen = st.selectbox(
    "Session to restore", deleted["session_id"].tolist(), key="restore_choice",
    format_func=lambda i: "{patient_id}, {session_date} ({technique})".format(
        **deleted.set_index("session_id").loc[i].to_dict()),
)
if st.button("Restore session", key="restore_session", type="primary"):
    with write_session(resources.engine()) as session:
        corrections.restore_session(session, actor=actor, session_id=int(chosen))
    resources.clear_after_write()
    st.success("Restored.")
    st.rerun()
