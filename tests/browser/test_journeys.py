"""The journeys people make, in a real browser: record a session, refuse bad input, compare techniques, a patient
on a phone. Each saves a screenshot in the test's temporary folder; a failure names it in its message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from analytics import outcomes
from db import queries
from db.cli import DEMO_ACCOUNTS
from db.engine import make_engine
from db.queries import OutcomeFilter
from tests.db.factories import ADMIN
from tests.support.browser import (
    EXCEPTION_SELECTOR,
    add_to_multiselect,
    pick,
    plotly_chart,
    screenshot,
    wait_for_app,
    wait_until_computed,
)
from tests.support.browser import log_in as login

pytestmark = pytest.mark.browser
PASSWORDS = {username: password for username, _, password, _ in DEMO_ACCOUNTS}
PHONE = {"width": 390, "height": 844}


def log_in(page: Page, app_url: str, username: str) -> None:
    """Log in as a demo account and check the login page is gone."""
    login(page, app_url, username, PASSWORDS[username])
    expect(page.get_by_role("heading", name="Needle Outcomes")).to_have_count(0)


def session_count(database_url: str) -> int:
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM sessions WHERE deleted_at IS NULL").fetchone()[0]


def plotted_values(page: Page, key: str) -> list[list[float]]:
    """Return the y values of every trace of the plotly chart whose Streamlit key is `key`."""
    return plotly_chart(page, key).evaluate(
        "plot => plot._fullData.map(trace => Array.from(trace.y || []))"
    )


def test_clinician_records_a_session_with_a_side_effect_and_sees_it_on_the_chart(app_url, app_database_url, page,
                                                                                  tmp_path):
    log_in(page, app_url, "clin_ahmed")
    expect(page.get_by_role("heading", name="Record session")).to_be_visible()
    before = session_count(app_database_url)

    page.get_by_label("New patient id", exact=True).fill("P9100")
    page.get_by_label("Pain before (VAS 0–100 mm or NRS 0–10)", exact=True).fill("72")
    page.get_by_label("Pain right after (optional)", exact=True).fill("50")
    add_to_multiselect(page, "Side effects — mild", "Bruising", key="side_effects_mild")
    page.get_by_role("button", name="Save session").click()
    wait_for_app(page, initial_wait_ms=500)

    expect(page.get_by_text("Saved session 1 for P9100: ")).to_be_visible()
    expect(page.get_by_role("heading", name="Progress of P9100")).to_be_visible()
    traces = plotted_values(page, "record_chart")
    assert [72] in traces, traces  # pain before, the new (and only) point
    assert session_count(app_database_url) == before + 1
    screenshot(page, tmp_path, "recorded-session")
    expect(page.locator(EXCEPTION_SELECTOR)).to_have_count(0)


def test_bad_input_shows_the_message_and_saves_nothing(app_url, app_database_url, page, tmp_path):
    log_in(page, app_url, "clin_ahmed")
    before = session_count(app_database_url)

    page.get_by_label("New patient id", exact=True).fill("P9101")
    page.get_by_label("Pain before (VAS 0–100 mm or NRS 0–10)", exact=True).fill("150")
    page.get_by_role("button", name="Save session").click()
    wait_for_app(page, initial_wait_ms=500)

    expect(page.get_by_text("Pain before: 150 is outside the scale 0–100 (VAS, mm)")).to_be_visible()
    screenshot(page, tmp_path, "refused-session")
    assert session_count(app_database_url) == before


def test_manager_filters_the_technique_page_and_downloads_the_summary(app_url, app_database_url, page, tmp_path):
    log_in(page, app_url, "manager")
    expect(page.get_by_role("heading", name="Technique outcomes")).to_be_visible()
    expect(page.get_by_role("button", name="Download summary (CSV)")).to_be_visible()  # the page's last element

    engine = make_engine(app_database_url)
    with Session(engine) as session:
        moments = queries.technique_moments(session, actor=ADMIN, where=OutcomeFilter(conditions=("neck_pain",)))
    engine.dispose()
    curve = outcomes.technique_curve(moments)
    expected = outcomes.summary_table(curve).to_csv(index=False, lineterminator="\n")
    neck_episodes = int(curve.loc[curve["session_number"] == 1, "patients"].sum())

    wait_until_computed(page)  # as a manager would, the page drawn in full
    page.get_by_text("Filters").click()
    pick(page, "Condition", "neck pain")
    page.keyboard.press("Escape")
    # Wait on the page's own account of its data, not on time: the download must come from the filtered run.
    expect(page.locator(".st-key-filter_summary")).to_contain_text(f"{neck_episodes:,} episodes of care in these "
                                                                  "figures: neck pain.")
    wait_for_app(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download summary (CSV)").click()
    content = Path(download.value.path()).read_text(encoding="utf-8")
    screenshot(page, tmp_path, "technique-outcomes-neck")

    assert content == expected
    assert content.splitlines()[0] == ",".join(outcomes.SUMMARY_COLUMNS)


def test_patient_on_a_phone_sees_only_their_own_readable_chart(app_url, browser, tmp_path):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        log_in(page, app_url, "patient")
        expect(page.get_by_role("heading", name="My progress")).to_be_visible()
        expect(page.get_by_label("Patient", exact=True)).to_have_count(0)  # no way to pick anybody else
        expect(page.get_by_text("P0003")).to_have_count(0)
        wait_until_computed(page)  # the band redraws the chart
        chart = plotly_chart(page, "progress_chart")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        screenshot(page, tmp_path, "my-progress-phone")

        overflow = page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"page scrolls sideways by {overflow} px"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert box["width"] >= 300 and box["height"] >= 300, box  # big enough to read on a phone
        sentence = page.get_by_text("than at your first session")
        expect(sentence).to_be_visible()
    finally:
        context.close()


def test_an_import_with_a_bad_row_shows_the_error_table_and_writes_nothing(app_url, app_database_url, page,
                                                                              tmp_path):
    good = "P9200,2026-01-05,deep,vas_100,70,,,neck_pain,clin_ahmed,yes,"
    bad = "P9200,2026-01-12,deep,vas_100,170,,,neck_pain,clin_ahmed,yes,"  # pain beyond the VAS
    header = "patient_id,session_date,technique,pain_scale,pain_before,pain_after,side_effects,condition,clinician,"
    header += "twitch_response,notes"
    upload = tmp_path / "sessions.csv"
    upload.write_text("\n".join([header, good, bad]) + "\n", encoding="utf-8")
    log_in(page, app_url, "clin_ahmed")
    before = session_count(app_database_url)

    page.get_by_role("link", name="Import").click()
    wait_for_app(page, initial_wait_ms=500)
    page.locator("input[type='file']").set_input_files(str(upload))
    wait_for_app(page, initial_wait_ms=1000)

    expect(page.get_by_text("Nothing was imported: 1 problem in sessions.csv")).to_be_visible()
    expect(page.locator("[data-testid='stDataFrame']").first).to_be_visible()  # the table of problems
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the problems (CSV)").click()
    table = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert table[0] == "row,column,value,reason"
    assert table[1].startswith("3,pain_before,170,")  # the file's third line: header, good row, bad row
    screenshot(page, tmp_path, "import-refused")
    assert session_count(app_database_url) == before
    expect(page.get_by_role("button", name="Import")).to_have_count(0)
