"""Which pages each role has. The entrypoint calls `pages_for(actor)`; a page not listed cannot be opened at all."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import diary_data
from db.access import Actor

VIEWS = Path(__file__).parent / "views"


def _page(name: str, title: str, icon: str, **kwargs) -> st.Page:
    return st.Page(VIEWS / f"{name}.py", title=title, icon=f":material/{icon}:", **kwargs)


def pages_for(actor: Actor | None) -> dict[str, list[st.Page]]:
    """Return the pages, by section, that the actor's role may open (only the login page when nobody is)."""
    if actor is None:
        return {"": [_page("login", "Log in", "login", default=True)]}
    record = _page("record_session", "Record session", "edit_note")
    progress = _page("patient_progress", "Patient progress", "show_chart")
    off_track = _page("off_track", "Off track", "flag")  # clinicians and admins: their episodes behind expected (#18)
    outcomes = _page("technique_outcomes", "Technique outcomes", "bar_chart")
    reported = _page("patient_reported", "Patient-reported", "sentiment_satisfied")
    needling = _page("needling_record", "Needling record", "stylus_note")  # STRICTA completeness, dose (#16)
    methods = _page("methods", "Methods", "menu_book")
    import_data = _page("import_data", "Import", "upload_file")  # clinicians and admins: they write clinical data
    account = [_page("logout", "Log out", "logout")]
    sections = {
        "clinician": {"Patients": [record, progress, off_track, import_data], "Clinic": [methods]},
        "manager": {"Clinic": [outcomes, reported, needling, methods]},
        "patient": {"": _patient_pages(actor)},
        "admin": {
            "Patients": [record, progress, off_track, import_data],
            "Clinic": [outcomes, reported, needling, methods],
            "Administration": [
                _page("users", "Accounts", "manage_accounts"),
                _page("audit_log", "Audit trail", "history"),
                _page("deleted_sessions", "Deleted sessions", "restore_from_trash"),
            ],
        },
    }[actor.role]
    return sections | {f"Signed in as {actor.username}": account}


def _patient_pages(actor: Actor) -> list[st.Page]:
    """Return a patient's two pages: their diary opens first while a diary entry is due, their progress otherwise."""
    due = actor.role == "patient" and not diary_data.due_entries(actor, actor.patient_id).empty
    return [_page("my_diary", "My diary", "edit_note", default=due),
            _page("patient_progress", "My progress", "show_chart", default=not due)]
