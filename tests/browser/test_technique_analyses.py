"""A section of the technique page whose analysis is being computed draws itself once it is ready, in a real
browser: the note polls (st.fragment with run_every) and reruns the page, with no click from the user."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_journeys import log_in
from tests.support.browser import open_page, plotly_chart

pytestmark = pytest.mark.browser


def test_a_model_being_computed_shows_a_note_then_its_result_by_itself(app_url, page):
    log_in(page, app_url, "manager")
    open_page(page, "Technique outcomes")
    page.locator(".st-key-section").get_by_text("Clinicians", exact=True).click()
    expect(page.get_by_role("heading", name="Clinicians' adjusted improvement", level=2)).to_be_visible()
    expect(page.get_by_text("Being computed…")).to_be_visible()  # the fit has just started on the worker
    expect(page.get_by_text("As of ")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Being computed…")).to_have_count(0)
    expect(plotly_chart(page, "caterpillar_chart")).to_be_visible()
    expect(page.get_by_role("button", name="Refresh")).to_be_enabled()
