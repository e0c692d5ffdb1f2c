"""The patient's diary in a real browser (issue #17): a patient on a 390 × 844 phone records a 24 h entry with a side
effect and a PGIC answer in few taps on targets of at least 44 px; the clinician sees both, the manager the alert
marked patient-reported; a second patient reaches nothing of the first's by any page, URL or widget."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from db import accounts, patient_reports
from db.access import Actor
from db.cli import DEMO_ACCOUNTS
from db.engine import make_engine, write_session
from db.models import Episode, TreatmentSession
from db.report_models import DiaryEntry
from db.writes import record_session
from tests.browser.test_accessibility import serious_violations
from tests.browser.test_small_screens import assert_usable
from tests.db.factories import ADMIN, session_input
from tests.support.browser import log_in, open_page, pick, plotly_chart, screenshot, serve_app, wait_for_app

pytestmark = pytest.mark.browser
PASSWORDS = {username: password for username, _, password, _ in DEMO_ACCOUNTS}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
SECOND = ("patient_two", "second-patient-password", "P0003")
SECRET_NOTE = "zebra-striped bruise on my shoulder"  # the first patient's words, never to be shown to the second
ENTRY_TAP_LIMIT = 5  # taps besides the number (issue #17)
MIN_TARGET_PX = 44
TARGETS = """sel => Array.from(document.querySelectorAll(sel)).filter(e => e.getBoundingClientRect().width > 0)
  .map(e => [(e.textContent || e.getAttribute('aria-label') || '').trim().slice(0, 30),
             e.getBoundingClientRect().width, e.getBoundingClientRect().height])"""


@pytest.fixture
def diary_app(app_database_url, tmp_path):
    """Serve the app on a database where the demo patient (P0002) had a session yesterday, so its 24 h diary entry is
    open now, and a second patient (P0003) has an account; yield (base URL, that session's id)."""
    engine = make_engine(app_database_url)
    yesterday = date.today() - timedelta(days=1)
    with write_session(engine) as session:
        # Back-dated, the session counts as held at noon yesterday: now is 12–36 h after it, the 24 h window.
        session_id = record_session(session, actor=ADMIN, gap_days=36500, entry=session_input(
            patient_id="P0002", session_date=yesterday.isoformat(), today=date.today(), condition="neck_pain")).id
        username, password, pseudonym = SECOND
        accounts.add_user(session, actor=ADMIN, username=username, role="patient", password=password,
                          patient_pseudonym=pseudonym)
    engine.dispose()
    with serve_app(app_database_url, tmp_path, env={"EPISODE_GAP_DAYS": "36500"}) as base_url:
        yield base_url, session_id


@pytest.fixture
def phone(browser):
    """Yield a page in a phone-sized touch context of its own (no cookies shared with another user's)."""
    context = browser.new_context(**PHONE)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


class Taps:
    """Taps on the screen, counted: the number apart from the rest, as the issue counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.numbers = 0

    def tap(self, target: Locator, *, number: bool = False) -> None:
        target.tap()
        if number:
            self.numbers += 1
        else:
            self.count += 1


def patient_of(session, session_id: int) -> int:
    """Return the record id of a session's patient."""
    return session.get(Episode, session.get(TreatmentSession, session_id).episode_id).patient_id


def log_in_here(page: Page, username: str, password: str) -> None:
    """Log in on the login page shown now, keeping the URL the browser asked for."""
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password", exact=True).press("Enter")
    page.get_by_text(f"Signed in as {username}").wait_for(state="attached")
    wait_for_app(page)


def targets(page: Page, selector: str) -> list[tuple[str, float, float]]:
    """Return (text, width, height) of every element the selector finds on screen."""
    return [tuple(t) for t in page.evaluate(TARGETS, selector)]


def test_a_patient_records_a_24_h_entry_and_a_pgic_on_a_phone_and_the_clinic_sees_them(
        diary_app, phone, browser, tmp_path):
    base_url, session_id = diary_app
    page, key = phone, f"diary_{session_id}_24"
    log_in(page, base_url, "patient", PASSWORDS["patient"])
    expect(page.get_by_role("heading", name="My diary", level=1)).to_be_visible()  # lands on what is due
    expect(page.get_by_text("The next day (24 h): after your session of")).to_be_visible()
    assert_usable(page, "phone / My diary")  # the app's size rules: 44 px targets, 16 px text, no sideways scroll
    assert serious_violations(page, "patient / My diary") == []

    entry = Taps()
    number = page.locator(f".st-key-{key}_soreness").get_by_role("radio", name="4", exact=True)
    entry.tap(number, number=True)
    expect(number).to_have_attribute("aria-checked", "true")
    entry.tap(page.locator(f".st-key-{key}_effects").get_by_text("Bruising", exact=True))
    severity = page.locator(f".st-key-{key}_bruising_severity")
    expect(severity).to_be_visible()  # the severity is asked once the effect is ticked (a rerun)
    wait_for_app(page)
    entry.tap(severity.get_by_text("Bad: I needed a doctor", exact=False))
    expect(severity.get_by_role("radio").nth(1)).to_be_checked()
    wait_for_app(page)

    sizes = targets(page, f".st-key-{key}_soreness button, .st-key-{key}_effects button, "
                          f".st-key-{key}_bruising_severity label, .st-key-{key}_save button")
    small = [(text, round(w), round(h)) for text, w, h in sizes if w < MIN_TARGET_PX - 0.5 or h < MIN_TARGET_PX - 0.5]
    screenshot(page, tmp_path, "diary-entry-filled")
    entry.tap(page.locator(f".st-key-{key}_save").get_by_role("button"))
    # .first: the lasting result at the top of the page; a notification over the page says it too
    expect(page.get_by_text("Saved. Thank you! Your physio will see it.").first).to_be_visible()
    expect(page.get_by_text("do not wait for your physio: contact your doctor").first).to_be_visible()  # "Bad" tapped
    wait_for_app(page)

    pgic = Taps()
    pgic.tap(page.locator(".st-key-pgic_score").get_by_text("Much improved", exact=True))
    expect(page.locator(".st-key-pgic_score").get_by_role("radio", name="Much improved", exact=True)).to_be_checked()
    pgic.tap(page.locator(".st-key-pgic_save").get_by_role("button"))
    expect(page.get_by_text("Saved your answer. Thank you!").first).to_be_visible()
    wait_for_app(page)
    screenshot(page, tmp_path, "diary-saved")
    print(f"\n24 h diary entry with one side effect: {entry.count} taps plus the number ({entry.numbers} tap); "
          f"PGIC: {pgic.count} taps; {len(sizes)} tap targets measured, smallest "
          f"{min(min(w, h) for _, w, h in sizes):.0f} px")
    assert entry.count <= ENTRY_TAP_LIMIT and entry.numbers == 1
    assert small == [], f"tap targets under {MIN_TARGET_PX} px: {small}"
    newest = page.locator("[class*='st-key-entry_']").first  # the patient's entries, newest first
    expect(newest).to_contain_text("the next day (24 h), after the session of")
    expect(newest).to_contain_text("soreness 4 of 10 · Bruising (bad)")  # the patient's words

    # The clinician, at a desk: the entry and the answer beside the session chart.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    clinician = context.new_page()
    try:
        log_in(clinician, base_url, "clin_ahmed", PASSWORDS["clin_ahmed"])
        open_page(clinician, "Patient progress")
        pick(clinician, "Patient", "P0002")
        panel = clinician.get_by_role("heading", name="Between sessions, as the patient reported")
        expect(panel).to_be_visible()
        wait_for_app(clinician)
        expect(clinician.get_by_text("Much improved").first).to_be_visible()
        table = clinician.locator("[data-testid='stDataFrame']").nth(1)  # after the sessions': the diary, newest first
        table.scroll_into_view_if_needed()  # the grid draws the cells in view only
        expect(table.locator("[role='columnheader']").filter(has_text="Side effects (patient-reported)")
               ).to_have_count(1)
        yesterday = (date.today() - timedelta(days=1)).isoformat()
        row = table.locator("[role='row']").filter(has_text=yesterday)  # the session of yesterday's entry
        expect(row).to_have_count(1)
        expect(row).to_contain_text("24 h")
        expect(row).to_contain_text("Bruising (significant)")
        screenshot(clinician, tmp_path, "clinician-diary")

        # The manager (here the admin, who also manages): the alert, marked as the patient's.
        clinician.get_by_role("button", name="Log out").or_(clinician.get_by_role("link", name="Log out")).first.click()
        context.clear_cookies()
        log_in(clinician, base_url, "manager", PASSWORDS["manager"])
        expect(clinician.get_by_role("heading", name="Technique outcomes", level=1)).to_be_visible()
        alert = clinician.locator("[data-testid='stMarkdownContainer']").filter(has_text=yesterday).filter(
            has_text="patient-reported").filter(has_text="P0002")
        expect(alert).to_have_count(1)
        expect(alert).to_contain_text("Bruising (significant)")
        screenshot(clinician, tmp_path, "manager-alert")

        # The manager's own page: aggregates, a chart each for soreness, its resolution and the side effects.
        open_page(clinician, "Patient-reported")
        for chart in ("reported_soreness_chart", "reported_resolution_chart", "reported_effects_chart"):
            plotly_chart(clinician, chart)
        expect(clinician.locator("[data-testid='stMain']")).not_to_contain_text("P0002")
        assert serious_violations(clinician, "manager / Patient-reported") == []
        screenshot(clinician, tmp_path, "manager-patient-reported")
    finally:
        context.close()


def test_a_patient_on_a_phone_is_told_in_view_that_their_entry_is_saved_and_what_to_do(diary_app, phone):
    base_url, session_id = diary_app
    page, key = phone, f"diary_{session_id}_24"
    log_in(page, base_url, "patient", PASSWORDS["patient"])
    page.locator(f".st-key-{key}_soreness").get_by_role("radio", name="6", exact=True).tap()
    page.locator(f".st-key-{key}_effects").get_by_text("Bruising", exact=True).tap()
    severity = page.locator(f".st-key-{key}_bruising_severity")
    severity.get_by_text("Bad: I needed a doctor", exact=False).tap()
    expect(severity.get_by_role("radio").nth(1)).to_be_checked()
    wait_for_app(page)
    page.locator(f".st-key-{key}_save").get_by_role("button").tap()  # scrolled down to it on an 844 px screen
    expect(page.get_by_role("heading", name="My diary", level=1)).not_to_be_in_viewport()  # the top is out of view

    saved = page.get_by_text("Saved. Thank you! Your physio will see it.")
    expect(saved.first).to_be_attached()
    wait_for_app(page)
    # The page keeps the patient's scroll position, and the lasting result is at its top: what is drawn last, over
    # the page, must be where they are looking, the advice to see a doctor too.
    expect(saved.last).to_be_in_viewport()
    expect(page.get_by_text("do not wait for your physio: contact your doctor").last).to_be_in_viewport()


def test_a_second_patient_cannot_see_or_write_the_first_patients_entries(diary_app, phone, app_database_url,
                                                                          tmp_path):
    base_url, session_id = diary_app
    engine = make_engine(app_database_url)
    with write_session(engine) as session:  # the first patient's entry, as their own page would store it
        first = Actor(id=None, username="patient", role="patient", patient_id=patient_of(session, session_id))
        entry_id = patient_reports.record_diary_entry(
            session, actor=first, session_id=session_id, soreness=9, note=SECRET_NOTE,
            effects=[("bruising", "mild")], now=datetime.now(UTC)).id
    engine.dispose()

    page = phone
    username, password, _ = SECOND
    log_in(page, base_url, username, password)
    expect(page.get_by_role("heading", name="My progress", level=1)).to_be_visible()  # nothing due for them
    # Every URL visit starts a new session at the login page: the second patient logs in there, with the URL's path
    # and query parameters in place, and is shown only their own pages.
    visits = ["my_diary", "patient_progress", f"my_diary?patient_id=P0002&session_id={session_id}",
              f"my_diary?entry_id={entry_id}&patient=P0002&diary_due=0", "patient_progress?patient_id=P0002",
              "technique_outcomes", "patient_reported", "record_session", f"?session_id={session_id}"]
    for visit in visits:
        page.goto(base_url + visit)
        wait_for_app(page)
        if not visit.startswith("?"):  # logged out, every page but the login page is unknown
            not_found = page.get_by_role("dialog", name="Page not found")
            expect(not_found).to_be_visible()
            not_found.get_by_role("button", name="Close").click()
            expect(not_found).to_have_count(0)
        log_in_here(page, username, password)
        body = page.locator("[data-testid='stMain']")
        expect(page.get_by_role("heading", level=1).first).to_have_text(re.compile("^My (diary|progress)$"))
        expect(body).not_to_contain_text(SECRET_NOTE)
        expect(body).not_to_contain_text("soreness 9 of 10")
        expect(page.locator(f"[class*='st-key-correct_{entry_id}'], [class*='st-key-diary_{session_id}_']")
               ).to_have_count(0)
    # Their own diary, by its link on My progress: nothing to fill in, none of the first patient's words.
    page.get_by_role("link", name="Open my diary").click()
    expect(page.get_by_role("heading", name="My diary", level=1)).to_be_visible()
    wait_for_app(page)
    expect(page.get_by_text("Nothing to fill in now.")).to_be_visible()
    expect(page.locator("[data-testid='stMain']")).not_to_contain_text(SECRET_NOTE)
    screenshot(page, tmp_path, "second-patient")
    engine = make_engine(app_database_url)
    with write_session(engine) as session:  # the entry is as the first patient left it
        stored = session.get(DiaryEntry, entry_id)
        assert (stored.soreness, stored.note, stored.corrected_at) == (9, SECRET_NOTE, None)
    engine.dispose()

