"""A question a form's Save raises, kept in the session until it is answered (`episode_question`, `scale_question`).

The Save that raises it reruns the page, so that the question stands in the form, bound to the entry it is about: an
answer holds for that entry only, and another entry is asked afresh.
"""

from __future__ import annotations

import streamlit as st


def pose(key: str, about: tuple, question: object) -> None:
    """Keep `question`, about the entry `about`, under `key` and rerun, so that the form shows it; a question already
    shown stays, and a Save without its answer reruns nothing."""
    pending = (about, question)
    if st.session_state.get(key) != pending:
        st.session_state[key] = pending
        st.rerun()


def pending(key: str) -> tuple | None:
    """Return (the entry it is about, the question) kept under `key`, or None."""
    return st.session_state.get(key)


def forget(key: str) -> None:
    """Drop the question kept under `key`, if any (after a save, or for another patient)."""
    st.session_state.pop(key, None)
