"""Destructive and access-changing actions: a button that asks first, naming its target, and a result that stays."""

from __future__ import annotations

import streamlit as st

PENDING = "confirm_pending"


def confirmed(label: str, question: str, *, key: str, target: object, disabled: bool = False,
              asked: bool | None = None) -> bool:
    """Draw the action's button; once clicked, ask `question` with Yes / Cancel; return True when Yes is clicked.

    The question is bound to `target` (the account or session named in it): when the page's picker moves on to
    another target, the question is withdrawn, so one click can never act on something the user did not name.
    `asked` is the click of a button drawn elsewhere (a form's submit button, which sends the form's values with
    it), drawn instead of one here. Once Yes is clicked the question is gone: a refusal shown after it is the answer,
    with no stale Yes left on the page that would do nothing.
    """
    if st.button(label, key=key, disabled=disabled) if asked is None else asked:
        st.session_state[PENDING] = (key, target)
    if st.session_state.get(PENDING) != (key, target):
        return False
    box = st.empty()
    with box.container(border=True, key=f"{key}_confirm"):
        st.warning(question, icon=":material/help:")
        yes, cancel = st.columns(2)
        said_yes = yes.button(f"Yes, {label.lower()}", type="primary", key=f"{key}_yes")
        if cancel.button("Cancel", key=f"{key}_cancel"):
            st.session_state.pop(PENDING, None)
            st.rerun()
    if said_yes:
        st.session_state.pop(PENDING, None)
        box.empty()
    return said_yes


def show_result(page: str) -> None:
    """Show the last action's result on `page` until the next action replaces it; call it before any widget.

    Widgets that `done` was asked to reset get their values here, before they are drawn: a value assigned after
    its widget is drawn would be refused, and a value deleted would come back from the browser.
    A result just given is also shown once as a notification over the page (st.toast): the rerun keeps the user's
    scroll position, so scrolled down to the button they used (a form at a page's foot, or any button on a phone),
    the result at the top is out of view. The notification is drawn here, after the rerun, because Streamlit drops
    a toast followed by st.rerun (streamlit/streamlit#7740).
    """
    st.session_state.update(st.session_state.pop(f"{page}_reset", {}))
    fresh = st.session_state.pop(f"{page}_fresh", False)
    shown = st.session_state[f"{page}_shown"] = st.empty()  # emptied by a refusal later in this run (`refused`)
    if message := st.session_state.get(f"{page}_result"):
        with shown.container():
            st.success(message, icon=":material/check_circle:")
            if advice := st.session_state.get(f"{page}_advice"):  # what to do now: it lasts as long as its result
                st.info(advice, icon=":material/medical_services:")
        if fresh:
            st.toast(message, icon=":material/check_circle:", duration="long")
            if advice:  # a patient who should see a doctor must not miss it: it stays until they close it
                st.toast(advice, icon=":material/medical_services:", duration="infinite")


def refused(page: str, text: str, **error) -> None:
    """Show why an action was refused (`st.error` of `text`), and withdraw the last action's result on `page`: left
    at the top, "Added clin_two" would contradict "username 'clin_two' is taken" below it."""
    for name in ("result", "advice"):
        st.session_state.pop(f"{page}_{name}", None)
    if shown := st.session_state.get(f"{page}_shown"):
        shown.empty()
    st.error(text, **error)


def done(page: str, message: str, reset: dict | None = None, advice: str | None = None) -> None:
    """Keep `message` as the page's lasting result (with `advice` beneath it, what the user should do now, if any),
    reset the widgets in `reset` and rerun to show the change."""
    st.session_state[f"{page}_result"] = message
    st.session_state[f"{page}_advice"] = advice
    st.session_state[f"{page}_reset"] = reset or {}
    st.session_state[f"{page}_fresh"] = True
    st.rerun()
