"""The patient picker shared by the clinicians' pages: a search box and a bounded list showing id and name."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import resources
from db.access import Actor
from db.patient_search import PICKER_LIMIT


def pick_patient(actor: Actor, *, key: str, new_option: str | None = None) -> tuple[str | None, pd.DataFrame]:
    """Draw the search and the picker; return the chosen pseudonym (or `new_option`) and the patients listed.

    A network holds hundreds of thousands of patients, so the list is bounded (PICKER_LIMIT) and narrowed
    by a search in the database, plus the patient already picked. A new search that finds exactly one patient
    picks them: typing the id or name is the choice. The chosen value is None only when no patient is listed.
    """
    pick_column, search_column = st.columns([2, 1], vertical_alignment="bottom")
    search = search_column.text_input("Find patient", key=f"{key}_search", placeholder="Patient id or name",
                                      help="Narrow the list to ids, or names with a word, starting with this text.")
    if search.strip() and st.session_state.get(f"{key}_searched") != search:
        st.session_state[f"{key}_searched"] = search
        found = resources.find_patients(actor, search, limit=2)
        if len(found) == 1:
            st.session_state[key] = found["patient_id"].iloc[0]
    picked = st.session_state.get(key)
    patients = resources.find_patients(actor, search, include=(picked,) if picked and picked != new_option else ())
    labels = dict(zip(patients["patient_id"], patients["label"], strict=True))
    if new_option:
        labels = {new_option: new_option} | labels
    if not labels:
        return None, patients
    chosen = pick_column.selectbox("Patient", list(labels), key=key, format_func=labels.get,
                                   help="Type to search by pseudonymous id or name.")
    if len(patients) >= PICKER_LIMIT:
        pick_column.caption(f"The first {PICKER_LIMIT} patients; find others by id or name.")
    return chosen, patients
