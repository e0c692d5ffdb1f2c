"""The import preview's list of the rows that start a new episode of care, and why (docs/DESIGN.md section 5)."""

from __future__ import annotations

import streamlit as st

from db.import_result import ImportResult

HEADERS = {"row": "Row", "patient_id": "Patient", "condition": "Condition", "episode": "Episode", "reason": "Why"}


def new_episodes(plan: ImportResult) -> None:
    """List the rows where the file, or the rule for an empty `episode` cell, starts a patient's later episode."""
    table = plan.episodes_table(plan.later_episodes())
    if table.empty:
        return
    st.markdown(f"**{len(table):,} row(s) start a new episode of care** for a patient already treated for that "
                "condition (a row without an `episode` number does when it comes after a discharge or a long gap):")
    st.dataframe(table.rename(columns=HEADERS), hide_index=True, placeholder="", key="import_new_episodes")
