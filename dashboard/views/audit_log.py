"""Audit trail (admins): every change, login, export and import, newest first. Read-only by construction."""

import streamlit as st
from sqlmodel import Session

from dashboard import resources
from dashboard.navigation import current_actor
from db import audit

actor = current_actor()
st.title("Audit trail")
st.caption("Append-only: the database refuses to change or delete these rows.")
limit = st.select_slider("Rows", [100, 500, 2000, 10000], value=500, key="audit_limit")
with Session(resources.engine()) as session:
    events = audit.events(session, actor=actor, limit=limit)
st.dataframe(events, hide_index=True, key="audit_table")  # text cells: shown literally, never as HTML
