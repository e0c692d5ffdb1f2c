"""A clinician records a typical session with the keyboard alone: defaults carry everything but the scores."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import Page, expect

from db.cli import DEMO_ACCOUNTS
from tests.support.browser import log_in, wait_for_app

pytestmark = pytest.mark.browser
PASSWORDS = {username: password for username, _, password, _ in DEMO_ACCOUNTS}
MOST_TABS_TO_A_FIELD = 40


class Keyboard:
    """Presses keys on a page and counts them, so the test can say how much typing a session takes."""

    def __init__(self, page: Page):
        self.page, self.presses = page, 0

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.presses += 1

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.presses += len(text)

    def tab_to(self, accessible_name: str) -> None:
        """Press Tab until the focused element is the one with this accessible name (label)."""
        for _ in range(MOST_TABS_TO_A_FIELD):
            self.press("Tab")
            focused = self.page.evaluate(
                "() => { const e = document.activeElement;"
                " return e ? (e.getAttribute('aria-label') || e.innerText || '').trim() : ''; }"
            )
            if focused == accessible_name:
                return
        raise AssertionError(f"{accessible_name!r} not reached within {MOST_TABS_TO_A_FIELD} Tab presses")


def test_a_typical_session_is_recorded_with_the_keyboard_alone(app_url, app_database_url, page):
    log_in(page, app_url, "clin_ahmed", PASSWORDS["clin_ahmed"])  # keyboard only (see log_in)
    keys = Keyboard(page)
    path = app_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        before = connection.execute("SELECT count(*) FROM sessions").fetchone()[0]

    expect(page.get_by_label("Patient", exact=True)).to_be_visible()  # Tab on before it is drawn and focus is lost
    # Start from the top of the page, as after opening it. After the login form is replaced, Chromium would go on
    # from wherever the (gone) login button was, which depends on how fast the page was redrawn.
    page.evaluate("() => { document.body.tabIndex = -1; document.body.focus(); }")
    keys.tab_to("Patient")  # the first field of the page's main area
    keys.type("P0002")
    keys.press("Enter")
    # The rerun redraws the form from P0002's last session; Tab on before it ends and focus is lost to the redraw.
    expect(page.get_by_role("heading", name="Progress of P0002")).to_be_visible()
    expect(page.get_by_label("New patient id", exact=True)).to_have_count(0)
    wait_for_app(page)
    keys.tab_to("Pain before (VAS 0–100 mm or NRS 0–10)")
    keys.type("35")
    keys.tab_to("Pain right after (optional)")
    keys.type("25")
    keys.tab_to("Save session")
    keys.press("Enter")
    wait_for_app(page, initial_wait_ms=500)

    expect(page.get_by_text("for P0002: ")).to_be_visible()
    with sqlite3.connect(path) as connection:
        after, technique = connection.execute(
            "SELECT count(*), (SELECT technique FROM sessions ORDER BY id DESC LIMIT 1) FROM sessions"
        ).fetchone()
    assert after == before + 1
    assert technique == "electrical"  # carried over from the patient's last session, not typed
    print(f"keyboard presses for a typical session: {keys.presses}")
    assert keys.presses <= 60, f"{keys.presses} key presses: too many for a session recorded in seconds"
