"""On a phone (390 × 844) and a tablet (820 × 1180), in a real browser: our tap targets are at least 44 px, body
text at least 16 px, chart text at least 12 px, no toolbar over a chart, no sideways scrolling, and a patient's
pain values are in view in the session table beside its date, their latest session among the rows it draws first."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from db.engine import make_engine, write_session
from db.writes import record_session
from tests.browser.conftest import ROUTINE_FOLLOW_UPS
from tests.browser.test_journeys import log_in
from tests.db.factories import ADMIN, session_input
from tests.support.browser import pick, plotly_chart, serve_app, wait_for_app, wait_until_computed

pytestmark = pytest.mark.browser
SCREENS = {"phone": {"width": 390, "height": 844}, "tablet": {"width": 820, "height": 1180}}
LONGER_COURSE = 4  # sessions added to the demo patient's 10: more than the table's rows in view
MEASURE = """() => {
  const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const all = sel => Array.from(document.querySelectorAll(sel)).filter(shown);
  const name = e => (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 40);
  // A field's tap target is the tallest box between its <input> and the widget.
  const field = w => { let e = w.querySelector('input'), h = 0;
                       while (e && e !== w) { h = Math.max(h, e.getBoundingClientRect().height); e = e.parentElement; }
                       return h; };
  const main = document.querySelector('[data-testid="stMain"]');
  return {
    targets: [
      ...all('.stButton button, .stFormSubmitButton button, .stDownloadButton button, '
             + '[data-testid="stButtonGroup"] button, [data-testid="stSidebarNav"] a, [data-testid="stRadio"] label')
        .map(e => [name(e), e.getBoundingClientRect().height]),
      ...all('[data-testid=stTextInput], [data-testid=stNumberInput], [data-testid=stDateInput], '
             + '[data-testid=stSelectbox], [data-testid=stMultiSelect]')
        .map(w => [name(w), field(w)]),
    ],
    body: Array.from(main.querySelectorAll('[data-testid="stMarkdownContainer"] p')).filter(shown)
      .filter(p => !p.closest('[data-testid="stCaptionContainer"], [data-testid="stWidgetLabel"], button, label, '
                              + '[data-testid="stMetricLabel"], [data-testid="stMetricValue"], '
                              + '[data-testid="stMetricDelta"]'))
      .map(p => [name(p), parseFloat(getComputedStyle(p).fontSize)]),
    chart: Array.from(document.querySelectorAll('.js-plotly-plot svg text')).filter(t => t.textContent.trim())
      .map(t => [t.textContent.trim().slice(0, 30), parseFloat(getComputedStyle(t).fontSize)]),
    toolbars: all('.modebar-btn').length,
    sideways: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)
              - document.documentElement.clientWidth,
  };
}"""


def assert_usable(page: Page, where: str) -> None:
    """Check every size rule of the module on the page as drawn in full."""
    wait_until_computed(page)
    found = page.evaluate(MEASURE)
    small_targets = [(n, round(h)) for n, h in found["targets"] if h < 43.5]
    assert found["targets"], f"{where}: nothing to tap was measured"
    assert small_targets == [], f"{where}: tap targets under 44 px: {small_targets}"
    assert found["body"], f"{where}: no body text was measured"
    assert [(n, s) for n, s in found["body"] if s < 16] == [], f"{where}: body text under 16 px"
    assert [(n, s) for n, s in found["chart"] if s < 12] == [], f"{where}: chart text under 12 px"
    assert found["toolbars"] == 0, f"{where}: a chart toolbar is shown"
    assert found["sideways"] <= 0, f"{where}: the page scrolls sideways by {found['sideways']} px"


def grid_headers(page: Page) -> list[str]:
    """Return the headers of the session table's columns the grid has drawn (it draws only the ones in view)."""
    table = page.locator("[data-testid='stDataFrame']").first  # the page's first table; episodes of care follow
    table.scroll_into_view_if_needed()
    headers = table.locator("[role='columnheader']")
    expect(headers.first).to_be_attached()
    return headers.all_text_contents()


@pytest.fixture
def long_course_url(app_database_url, tmp_path):
    """Serve the app where the demo patient (P0002) has had LONGER_COURSE more weekly sessions, the last a week ago
    (its diary closed, so the patient lands on My progress); yield the base URL."""
    engine = make_engine(app_database_url)
    with write_session(engine) as session:
        for weeks_ago in range(LONGER_COURSE, 0, -1):
            day = date.today() - timedelta(weeks=weeks_ago)
            record_session(session, actor=ADMIN, gap_days=36500, entry=session_input(
                patient_id="P0002", session_date=day.isoformat(), today=date.today(), condition="neck_pain"))
    engine.dispose()
    with serve_app(app_database_url, tmp_path, env=ROUTINE_FOLLOW_UPS) as base_url:
        yield base_url


@pytest.fixture(params=list(SCREENS))
def screen(request, browser):
    context = browser.new_context(viewport=SCREENS[request.param], device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield request.param, page
    finally:
        context.close()


def test_a_patient_reads_their_progress_and_pain_values_on_a_small_screen(app_url, screen):
    name, page = screen
    log_in(page, app_url, "patient")
    expect(plotly_chart(page, "progress_chart")).to_be_visible()
    assert_usable(page, f"{name} / My progress")
    headers = grid_headers(page)
    assert {"Pain before", "Pain after"} <= set(headers), f"{name}: pain columns out of view: {headers}"


def test_a_clinician_records_and_reviews_on_a_small_screen(app_url, screen):
    name, page = screen
    log_in(page, app_url, "clin_ahmed")
    assert_usable(page, f"{name} / Record session")
    phone = name == "phone"
    if phone:  # the page menu is folded away on a phone, and stays open over the page after a choice
        page.get_by_role("button", name="Expand sidebar").click()
    page.get_by_role("link", name="Patient progress").click()
    expect(page.get_by_role("heading", name="Patient progress", level=1)).to_be_visible()
    wait_for_app(page)
    if phone:
        page.get_by_role("button", name="Collapse sidebar").click()
    pick(page, "Patient", "P0002")
    expect(plotly_chart(page, "progress_chart")).to_be_visible()
    assert_usable(page, f"{name} / Patient progress")
    headers = grid_headers(page)
    assert {"Pain before", "Pain after"} <= set(headers), f"{name}: pain columns out of view: {headers}"


def test_a_patient_on_a_phone_finds_their_latest_session_first_by_its_date_beside_its_pain(long_course_url, browser):
    context = browser.new_context(viewport=SCREENS["phone"], device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, long_course_url, "patient")
        expect(plotly_chart(page, "progress_chart")).to_be_visible()
        headers = grid_headers(page)  # scrolled to the table, as the patient does
        assert headers[:3] == ["Date", "Pain before", "Pain after"], headers  # in view without a sideways scroll
        # The grid draws the rows in its view only (about ten): the latest session must be one, not under the fold.
        first_cells = page.locator("[data-testid='stDataFrame']").first.locator(
            "[role='row'] [role='gridcell']:first-child")
        latest = (date.today() - timedelta(weeks=1)).isoformat()  # drawn "26 Nov 2026"; the grid's cells keep ISO
        expect(first_cells.filter(has_text=re.compile(f"^{latest}$"))).to_have_count(1)
        assert first_cells.first.text_content() == latest, "the latest session is not the table's first row"
    finally:
        context.close()
