"""Who is looking, and which pages each role has. Swapping the demo selector for a login changes `viewer()` only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dashboard import resources
from db.engine import database_url

VIEWS = Path(__file__).parent / "views"
ROLE_LABELS = {"clinician": "Clinician", "manager": "Manager", "patient": "Patient"}


@dataclass(frozen=True)
class Viewer:
    """The person using the app: role, and for a patient the one patient record they may see."""

    role: str
    username: str = ""
    patient_id: int | None = None
    patient_pseudonym: str = ""


def pages_for(viewer: Viewer) -> list:
    """Return the pages the viewer's role may open; a page not listed cannot be opened at all."""
    record = st.Page(VIEWS / "record_session.py", title="Record session", icon=":material/edit_note:")
    progress = st.Page(VIEWS / "patient_progress.py", title="Patient progress", icon=":material/show_chart:")
    outcomes = st.Page(VIEWS / "technique_outcomes.py", title="Technique outcomes", icon=":material/bar_chart:")
    mine = st.Page(VIEWS / "patient_progress.py", title="My progress", icon=":material/show_chart:")
    return {
        "clinician": [record, progress],
        "manager": [outcomes],
        "patient": [mine],
    }[viewer.role]


def viewer() -> Viewer:
    """Return who is using the app. Until accounts land, a sidebar selector marked as a demo decides."""
    with st.sidebar:
        st.caption("DEMO — no login yet. Choose whose view to see.")
        role = st.selectbox(
            "View as", list(ROLE_LABELS), format_func=ROLE_LABELS.get, key="demo_role",
        )
        if role == "clinician":
            clinicians, _ = resources.form_choices(database_url())
            username = st.selectbox("Clinician", clinicians or ["clinician"], key="demo_clinician")
            return Viewer(role, username=username)
        if role == "patient":
            patients = resources.patient_list(database_url())
            if patients.empty:
                return Viewer(role)
            pseudonym = st.selectbox("Patient", patients["patient_id"].tolist(), key="demo_patient")
            row = patients[patients["patient_id"] == pseudonym].iloc[0]
            return Viewer(role, username=pseudonym, patient_id=int(row["id"]), patient_pseudonym=pseudonym)
        return Viewer(role, username="manager")


def current_viewer() -> Viewer:
    """Return the viewer that the entrypoint established for this run."""
    return st.session_state["viewer"]
