"""A session long after the last one of its episode of care asks, in the form, whether it starts a new episode; the
answer is the clinician's, in a real browser, and nothing is saved before it (issue #14). So does a session dated
before the course's first, which would become its baseline."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journeys import log_in, session_count
from tests.support.browser import pick, serve_app, wait_for_app

pytestmark = pytest.mark.browser
PAIN_BEFORE = "Pain before (VAS 0–100 mm or NRS 0–10)"


def episodes_of(database_url: str, patient: str) -> list[tuple]:
    """Return (number, live sessions) of each of the patient's episodes, by number."""
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        return connection.execute(
            "SELECT e.number, (SELECT count(*) FROM sessions s WHERE s.episode_id = e.id AND s.deleted_at IS NULL) "
            "FROM episodes e JOIN patients p ON p.id = e.patient_id WHERE p.pseudonym = ? ORDER BY e.number",
            (patient,),
        ).fetchall()


def type_session_date(page: Page, digits: str) -> None:
    """Type a date into the form's date field from its first segment (year, month, day: YYYY-MM-DD order)."""
    page.get_by_label("Session date", exact=True).get_by_role("spinbutton").first.click()
    page.keyboard.type(digits)
    page.keyboard.press("Tab")


def save_for_p0002(page: Page, app_url: str, digits: str) -> None:
    """Log in as a clinician and save a session of pain 30 for P0002 (neck pain from 2026-03-17 to 2026-06-09, 10
    sessions) on the date typed as `digits`."""
    log_in(page, app_url, "clin_ahmed")
    pick(page, "Patient", "P0002")
    expect(page.locator(".st-key-recording_for")).to_have_text("Recording for P0002")
    wait_for_app(page)
    type_session_date(page, digits)
    page.get_by_label(PAIN_BEFORE, exact=True).fill("30")
    page.get_by_role("button", name="Save session").click()


def test_a_year_mistyped_before_the_courses_first_session_is_asked_about_and_saved_once_corrected(
        app_database_url, app_url, page: Page):
    # A tester typed 2025 for 2026: the session was saved as session 1 and the whole course measured from it.
    before = session_count(app_database_url)
    save_for_p0002(page, app_url, "20250610")

    question = page.locator(".st-key-episode_question")
    expect(question).to_contain_text("This neck pain session on 2025-06-10 comes before the first session of "
                                     "episode 1 on 2026-03-17. Saved, it becomes session 1 and the episode's baseline")
    expect(question.get_by_role("radio", checked=True)).to_have_count(0)
    assert session_count(app_database_url) == before

    type_session_date(page, "2026")  # the year corrected: the entry is another, and its question no longer holds
    page.get_by_role("button", name="Save session").click()
    expect(page.get_by_text("Saved session 11 for P0002: 2026-06-10")).to_be_visible()
    assert episodes_of(app_database_url, "P0002") == [(1, 11)]
    assert session_count(app_database_url) == before + 1


def test_a_recurrence_months_later_is_saved_as_a_new_episode_only_once_the_clinician_says_so(
        app_database_url, tmp_path, page: Page):
    # The default gap of 90 days, whatever the other browser tests' server is given.
    with serve_app(app_database_url, tmp_path, env={"EPISODE_GAP_DAYS": "90"}) as app_url:
        before = session_count(app_database_url)
        save_for_p0002(page, app_url, "20261001")

        question = page.locator(".st-key-episode_question")
        expect(question).to_contain_text("This neck pain session on 2026-10-01 comes 114 days after the last "
                                         "session of episode 1 on 2026-06-09, more than 90.")
        expect(question.get_by_role("radio", checked=True)).to_have_count(0)  # neither answer is chosen for them
        assert session_count(app_database_url) == before

        question.get_by_text("Yes: it starts episode 2, a new course of care").click()
        wait_for_app(page, initial_wait_ms=200)
        page.get_by_role("button", name="Save session").click()
        expect(page.get_by_text("Saved session 1 for P0002 (episode 2 of neck pain): 2026-10-01")).to_be_visible()
        assert episodes_of(app_database_url, "P0002") == [(1, 10), (2, 1)]
        assert session_count(app_database_url) == before + 1
