"""The needling record in a real browser (#16): a full electrical session, then a routine follow-up for the same
patient that starts from it, each counted in interactions (a click, a field filled, a key pressed); and the
managers' Needling record page with its downloads."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journeys import log_in
from tests.browser.test_safe_actions import Counter
from tests.support.browser import EXCEPTION_SELECTOR, open_page, wait_for_app

pytestmark = pytest.mark.browser
PAIN_BEFORE = "Pain before (VAS 0–100 mm or NRS 0–10)"
STORED = ("session_number", "technique", "pain_before", "insertions", "side", "depth_mm", "needle_diameter_mm",
          "needle_length_mm", "twitch_count", "retention_s", "manipulation", "estim_hz", "estim_pulse_us", "estim_ma",
          "estim_minutes", "adjuncts", "twitch_response")
NUMBERS = {  # label on the form -> value typed
    "Insertions": "8", "Depth (mm)": "30", "Needle diameter (mm)": "0.30", "Needle length (mm)": "50",
    "Twitch responses (count)": "4", "Retention (s, 0 = in and out)": "600", "Stimulation frequency (Hz)": "2",
    "Pulse width (µs)": "250", "Intensity (mA)": "3.5", "Stimulation time (min)": "10",
}


def stored_sessions(database_url: str, patient: str) -> list[tuple]:
    """Return the STORED columns of each live session of `patient`, in number order."""
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        return connection.execute(
            f"SELECT {', '.join('s.' + c for c in STORED)} "
            "FROM sessions s JOIN episodes ep ON ep.id = s.episode_id JOIN patients p ON p.id = ep.patient_id "
            "WHERE p.pseudonym = ? AND s.deleted_at IS NULL ORDER BY s.session_number",
            (patient,),
        ).fetchall()


def segment(page: Page, key: str, label: str):
    """Return the one-click choice `label` of the segmented control or pills keyed `key`."""
    return page.locator(f".st-key-{key} button").get_by_text(label, exact=True)


def test_a_full_electrical_session_then_a_routine_follow_up_that_starts_from_it(app_url, app_database_url, page):
    log_in(page, app_url, "clin_ahmed")
    full = Counter(page)
    full.click(page.get_by_text("Electrical dry needling", exact=True))  # above the form: its fields appear
    expect(page.get_by_label("Stimulation frequency (Hz)", exact=True)).to_be_visible()
    wait_for_app(page)
    full.fill(page.get_by_label("New patient id", exact=True), "P9500")
    full.fill(page.get_by_label(PAIN_BEFORE, exact=True), "70")
    full.fill(page.get_by_label("Pain right after (optional)", exact=True), "50")
    for label, value in NUMBERS.items():
        full.fill(page.get_by_label(label, exact=True), value)
    full.click(segment(page, "stricta_side", "Bilateral"))
    full.click(segment(page, "stricta_manipulation", "Pistoning + rotation"))
    full.click(segment(page, "stricta_adjuncts", "Stretching"))
    full.click(page.get_by_role("button", name="Save session"))
    expect(page.get_by_text("Saved session 1 for P9500")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^STRICTA: 13 of 13 applicable items recorded \(complete"))).to_be_visible()
    wait_for_app(page)

    follow_up = Counter(page)
    follow_up.fill(page.get_by_label("Find patient", exact=True), "P9500")
    follow_up.press("Enter")
    expect(page.locator(".st-key-recording_for")).to_have_text("Recording for P9500")
    wait_for_app(page)
    expect(page.get_by_label("Depth (mm)", exact=True)).to_have_value("30.0")  # the last record is the start
    follow_up.fill(page.get_by_label(PAIN_BEFORE, exact=True), "55")
    follow_up.fill(page.get_by_label("Pain right after (optional)", exact=True), "40")
    follow_up.fill(page.get_by_label("Twitch responses (count)", exact=True), "2")  # the one value that changed
    follow_up.click(page.get_by_role("button", name="Save session"))
    expect(page.get_by_text("Saved session 2 for P9500")).to_be_visible()
    expect(page.locator(EXCEPTION_SELECTOR)).to_have_count(0)

    print(f"interactions for a full electrical session: {full.count}")
    print(f"interactions for a routine follow-up: {follow_up.count}")
    assert follow_up.count <= 14
    dose = (8, "bilateral", 30.0, 0.3, 50.0)
    stimulation = (600, "pistoning_rotation", 2.0, 250.0, 3.5, 10.0, "stretching")
    assert stored_sessions(app_database_url, "P9500") == [
        (1, "electrical", 70.0, *dose, 4, *stimulation, 1),
        (2, "electrical", 55.0, *dose, 2, *stimulation, 1),
    ]


def test_a_deep_session_shows_no_stimulation_fields_and_stores_none(app_url, app_database_url, page):
    log_in(page, app_url, "clin_ahmed")
    expect(page.get_by_label("Insertions", exact=True)).to_be_visible()
    expect(page.get_by_label("Stimulation frequency (Hz)", exact=True)).to_have_count(0)
    page.get_by_label("New patient id", exact=True).fill("P9501")
    page.get_by_label(PAIN_BEFORE, exact=True).fill("60")
    page.get_by_label("Insertions", exact=True).fill("5")
    segment(page, "stricta_adjuncts", "None").click()
    page.get_by_role("button", name="Save session").click()
    expect(page.get_by_text("Saved session 1 for P9501")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^STRICTA: 2 of 9 applicable items recorded \(incomplete"))).to_be_visible()
    [row] = stored_sessions(app_database_url, "P9501")
    assert (row[STORED.index("insertions")], row[STORED.index("adjuncts")], row[STORED.index("estim_hz")]) == (
        5, "none", None)


def test_the_manager_reads_the_needling_record_and_downloads_the_methods_table(app_url, page, tmp_path):
    log_in(page, app_url, "manager")
    open_page(page, "Needling record")
    expect(page.get_by_role("heading", name="STRICTA table")).to_be_visible()
    expect(page.get_by_text("Observational, not a trial")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download for a methods section (Markdown)").click()
    text = download.value.path().read_text(encoding="utf-8")
    assert text.startswith("Needling was recorded in routine care for ")
    assert "| Technique | Item | Applicable sessions | Reported | Completeness | Distribution |" in text
    expect(page.locator(EXCEPTION_SELECTOR)).to_have_count(0)
