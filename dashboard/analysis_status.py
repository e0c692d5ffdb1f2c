"""How a page shows an analysis computed on the app's worker (dashboard.background): "Being computed…" with its
progress while it runs (a fragment: only the note runs again meanwhile), then its value with when it was computed
and a Refresh button. The technique page's sections, expected recovery's and the work list draw through `ready`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.background import Analysis

POLL_SECONDS = 1.0  # how often a section waiting for an analysis asks whether it is ready
GUESSED_SECONDS = 10.0  # how long an analysis is expected to take before one of its kind has run


@st.fragment(run_every=POLL_SECONDS)
def being_computed(check: Callable[[], Analysis]) -> None:
    """Show that an analysis is being computed, with its progress; once it is ready, run the page again to draw it.
    A fragment: while the worker computes, only this note runs again."""
    analysis = check()
    if analysis.running_for is None:
        if _fragment_rerun():
            st.rerun()  # draw the whole page with the result
        return  # never restart a run of the whole page: it may be carrying a click, which would be lost
    expected = analysis.expected or GUESSED_SECONDS
    st.progress(min(analysis.running_for / expected, 0.95),
                text=f"Being computed… {analysis.running_for:.0f} s"
                     + (f" of about {analysis.expected:.0f} s" if analysis.expected else ""))


def _fragment_rerun() -> bool:
    """Return whether this run is a fragment's own (its timer), not a run of the whole page."""
    context = get_script_run_ctx()
    return bool(context and context.fragment_ids_this_run)


def ready(check: Callable[[], Analysis], key: str, *, refresh: bool = True):
    """Draw when an analysis was computed (and a Refresh button unless `refresh` is False), or that it is being
    computed; return its latest value, None before the first is ready ."""
    analysis = check()
    if analysis.running_for is not None:
        being_computed(check)
    elif analysis.fault:
        st.warning("This part could not be computed. If it happens again, tell your administrator the reference "
                   f"{analysis.fault}.", icon=":material/error:")
    if analysis.value is not None or analysis.fault:
        note, button = st.columns([5, 1], vertical_alignment="center")
        if analysis.as_of is not None:
            moment = analysis.as_of.strftime("%H:%M:%S" if analysis.as_of.date() == date.today() else "%d %b %Y %H:%M")
            note.caption(f"As of {moment}" + ("" if analysis.current else ", before the latest changes"))
        if refresh:
            button.button("Refresh", key=f"refresh_{key}", on_click=analysis.refresh, icon=":material/refresh:",
                          disabled=analysis.running_for is not None, help="Compute it again from the data stored now.")
    return analysis.value
