"""Tests that an unexpected fault on a page shows one friendly line with a reference, never a traceback, while the
traceback goes to the server log under that reference; and that Streamlit's own rerun, stop and page switch pass.
"""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import navigation
from tests.app.conftest import APP

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
SECRET_VALUE = "P0003 Jane Doe"  # what a fault's message may hold; it must never reach the page


def broken_page() -> None:
    st.title("Broken")
    raise RuntimeError(f"could not read {SECRET_VALUE}")


def stopping_page() -> None:
    st.text("before the stop")
    st.stop()
    st.text("after the stop")


def rerunning_page() -> None:
    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    if st.session_state["runs"] == 1:
        st.rerun()
    st.text(f"runs: {st.session_state['runs']}")


def switching_page() -> None:
    st.switch_page(st.session_state["target"])


def target_page() -> None:
    st.text("the page switched to")


def app_with(monkeypatch, page) -> AppTest:
    """Return the app whose navigation holds just `page` (and the page a switch goes to)."""
    def pages_for(_actor):
        target = st.Page(target_page, title="Target")
        st.session_state["target"] = target
        return {"": [st.Page(page, title="Page", default=True), target]}

    monkeypatch.setattr(navigation, "pages_for", pages_for)
    return AppTest.from_file(APP, default_timeout=30)


def rendered(at: AppTest) -> str:
    kinds = ("title", "markdown", "caption", "info", "success", "warning", "error", "text", "code", "exception")
    return "\n".join(str(getattr(e, "value", e)) for kind in kinds for e in at.get(kind))


def test_a_page_that_fails_shows_one_line_with_a_reference_and_logs_the_traceback_under_it(monkeypatch, caplog):
    caplog.set_level(logging.ERROR, logger="dashboard.faults")
    at = app_with(monkeypatch, broken_page).run()
    assert not at.exception, at.exception  # no traceback on the page
    [error] = at.error
    match = re.fullmatch(r"Something went wrong on this page\. If it happens again, tell your administrator the "
                         r"reference ([0-9a-f]{8})\.", error.value)
    assert match, error.value
    assert SECRET_VALUE not in rendered(at) and "RuntimeError" not in rendered(at)

    [entry] = [r for r in caplog.records if r.name == "dashboard.faults"]
    logged = caplog.text
    assert match.group(1) in entry.getMessage()
    assert "Traceback (most recent call last)" in logged and f"RuntimeError: could not read {SECRET_VALUE}" in logged
    assert "broken_page" in logged  # the frame that raised


def test_each_fault_gets_its_own_reference(monkeypatch):
    at = app_with(monkeypatch, broken_page).run()
    first = at.error[0].value
    at.run()
    assert at.error[0].value != first


def test_st_stop_in_a_page_still_stops_it_quietly(monkeypatch):
    at = app_with(monkeypatch, stopping_page).run()
    assert not at.exception and not at.error
    assert [t.value for t in at.text] == ["before the stop"]


def test_st_rerun_in_a_page_still_reruns_it(monkeypatch):
    at = app_with(monkeypatch, rerunning_page).run()
    assert not at.exception and not at.error
    assert [t.value for t in at.text] == ["runs: 2"]


def test_st_switch_page_in_a_page_still_switches(monkeypatch):
    at = app_with(monkeypatch, switching_page).run()
    assert not at.exception and not at.error
    assert [t.value for t in at.text] == ["the page switched to"]


@pytest.mark.parametrize("section, option, value", [("client", "showErrorDetails", "none")])
def test_the_committed_streamlit_settings_never_show_error_details(section, option, value):
    assert tomllib.loads(CONFIG.read_text())[section][option] == value
