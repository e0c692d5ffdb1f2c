"""The question a session may raise before it is saved: does it start a new episode of care? (issue #14)

Saving a session that would continue an episode after its discharge, or more than the configured gap after its last
session, is refused by `db.episodes` (EpisodeUndecided) until the clinician answers: nothing is decided silently,
either way. So is a session dated before the episode's first one, which would become its baseline. The question then
stands in the form with the gap in days (or the first session's date), and its answer holds for that entry only
(the same patient, condition and date); another entry, a corrected date or another patient is asked afresh.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import form_question
from db.episodes import Answer, Question
from db.validation import SessionInput

RECORD = "episode"  # the prefix of Record session's keys; a correction form has its own, so neither shows the other's


def _about(entry: SessionInput) -> tuple:
    return entry.patient_id, entry.condition, entry.session_date


def forget(prefix: str = RECORD) -> None:
    """Drop the question asked, if any (after a save, or for another patient)."""
    form_question.forget(f"{prefix}_question")


def pose(question: Question, entry: SessionInput, prefix: str = RECORD) -> None:
    """Keep the question for this entry and rerun, so that the form shows it; a question already shown stays."""
    form_question.pose(f"{prefix}_question", _about(entry), question)


def refusal(question: Question) -> str:
    """Return why the save was refused, pointing to the question in the form."""
    if question.before_first:
        return "Not saved yet: say above that the date is right, or correct it, then save."
    return "Not saved yet: say above whether this session starts a new episode of care, then save."


def ask(prefix: str = RECORD) -> Callable[[SessionInput], Answer | None]:
    """Draw the question asked, if any, as a choice with neither answer chosen; return the answer for an entry.

    The answer is None until one is chosen, and for an entry that is not the one the question was about.
    """
    pending = form_question.pending(f"{prefix}_question")
    if pending is None:
        return lambda entry: None
    about, question = pending
    with st.container(key=f"{prefix}_question"):
        st.warning(f"Not saved yet. {question.sentence()}", icon=":material/event_repeat:")
        choices = question.choices()
        start_new = st.radio(question.label, list(choices), index=None, format_func=choices.get,
                             key=f"{prefix}_answer_{question.latest.number}_{question.session_date}")

    def answer(entry: SessionInput) -> Answer | None:
        if start_new is None or _about(entry) != about:
            return None
        return Answer(question.latest.number, start_new)

    return answer
