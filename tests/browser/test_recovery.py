"""Expected recovery in a real browser (issue #18): the band appears behind the patient's improvement once the fit on
the worker is done, with no click; the Off track work list renders and one click on it opens that patient's
progress. Each wait is on the app's own state ("As of …" once a fit is drawn), never on time."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journeys import log_in
from tests.support.browser import open_page, pick, plotly_chart, wait_for_app

pytestmark = pytest.mark.browser

FIT_MS = 60_000  # the longest a test waits for the fit's result to be drawn (about 1.5 s on the sample data)


def trace_names(page: Page, key: str) -> list[str]:
    """Return the names of the traces of the plotly chart whose Streamlit key is `key`."""
    return plotly_chart(page, key).evaluate("plot => plot._fullData.map(t => t.name)")


def test_the_band_is_drawn_behind_the_patients_improvement_once_fitted(app_url, page):
    log_in(page, app_url, "clin_ahmed")
    open_page(page, "Patient progress")
    pick(page, "Patient", "P0002")
    band = page.locator(".st-key-expected_recovery")
    expect(band.get_by_text("As of ")).to_be_visible(timeout=FIT_MS)
    wait_for_app(page)
    names = trace_names(page, "progress_chart")
    assert names.index("8 in 10 of earlier patients like this") < names.index("Improvement")
    expect(band.get_by_text("Observational: the band is what happened")).to_be_visible()
    expect(band.get_by_text("No expected-recovery band at session 10")).to_be_visible()


def test_the_work_list_opens_the_patients_progress_in_one_click(app_url, page):
    log_in(page, app_url, "clin_ahmed")
    open_page(page, "Off track")
    expect(page.get_by_text("As of ")).to_be_visible(timeout=FIT_MS)
    expect(page.get_by_text("course(s) of treatment off track")).to_be_visible()
    first = page.locator("[data-testid='stMarkdownContainer'] strong").filter(has_text="P0").first
    pseudonym = first.inner_text()
    page.get_by_role("button", name="Open").first.click()
    page.get_by_role("heading", name="Patient progress", level=1).wait_for()
    wait_for_app(page)
    expect(page.get_by_role("heading", name=f"Episodes of care of {pseudonym}")).to_be_visible()  # that patient
