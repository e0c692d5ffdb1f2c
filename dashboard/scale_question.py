"""The question a VAS pain that reads like the NRS raises before it is saved (`clinic.pain_scales`).

Saving 7 on the VAS for a patient whose last session began at 60 of 100 waits until the clinician says that 7 mm
is right, or chooses the NRS 0–10 as the scale, which makes it another entry with no question. The answer holds for
that entry only (the same patient, scale and pains).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from clinic.pain_scales import reads_like_nrs
from clinic.vocabulary import PAIN_SCALE_LABELS
from dashboard import form_question
from db.validation import SessionInput

PENDING = "scale_question"  # session state: (the entry's patient, scale and pains; the last session's scale and pain)


def _about(entry: SessionInput) -> tuple:
    return entry.patient_id, entry.pain_scale, entry.pain_before, entry.pain_after


def forget() -> None:
    """Drop the question asked, if any (after a save, or for another patient)."""
    form_question.forget(PENDING)


class Unconfirmed(Exception):
    """Raised by `check` for an entry that waits for the question; nothing was saved."""


def check(entry: SessionInput, last_scale: str | None, last_pain_before: float | None, confirmed: bool) -> None:
    """Raise Unconfirmed when the entry waits for the question; a new question is kept and the page rerun to show it."""
    pains = (entry.pain_before, entry.pain_after)
    if confirmed or not reads_like_nrs(entry.pain_scale, pains, last_scale, last_pain_before):
        return
    form_question.pose(PENDING, _about(entry), (last_scale, last_pain_before))
    raise Unconfirmed


def ask() -> Callable[[SessionInput], bool]:
    """Draw the question asked, if any, with its box unticked; return whether an entry's VAS pains are confirmed."""
    pending = form_question.pending(PENDING)
    if pending is None:
        return lambda entry: False
    about, (last_scale, last_pain_before) = pending
    patient, _, *pains = about
    typed = " → ".join(f"{pain:g}" for pain in pains if pain is not None)
    with st.container(key="scale_question"):
        st.warning(f"Not saved yet. Pain {typed} on the VAS is {typed} of 100 mm, yet {patient}'s last session "
                   f"began at {last_pain_before:g} on the {PAIN_SCALE_LABELS[last_scale]}. If these are NRS values, "
                   "choose NRS 0–10 as the scale and save again.", icon=":material/straighten:")
        right = st.checkbox(f"Yes: {typed} of 100 mm on the VAS is right", key=f"vas_right_{'_'.join(map(str, about))}")
    return lambda entry: right and _about(entry) == about
