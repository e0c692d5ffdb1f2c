"""The import preview's lists of the rows that start a new episode of care, and why, and of those that become a stored
episode's first session and baseline (docs/DESIGN.md section 5)."""

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


BASELINE_HEADERS = {"row": "Row", "patient_id": "Patient", "condition": "Condition", "episode": "Episode",
                    "first_session": "Its first session now"}


def new_baselines(plan: ImportResult) -> None:
    """List the rows that come before a stored episode's first session: each becomes its session 1 and baseline."""
    table = plan.baselines_table()
    if table.empty:
        return
    rows = "1 row comes" if len(table) == 1 else f"{len(table):,} rows come"
    st.warning(f"**{rows} before the first session of a stored episode of care.** Imported, each becomes its "
               "session 1 and baseline, and every improvement of that course is measured from it. Check the dates:",
               icon=":material/history:")
    st.dataframe(table.rename(columns=BASELINE_HEADERS), hide_index=True, placeholder="", key="import_new_baselines")
