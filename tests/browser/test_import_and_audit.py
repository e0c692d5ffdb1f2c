"""In a real browser: an import that would change stored sessions lists each change and writes nothing until it
is confirmed; the audit trail filters by patient and downloads what it shows."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journeys import log_in
from tests.support.browser import REPO_ROOT, open_page, wait_for_app

pytestmark = pytest.mark.browser


def first_session_of(patient: str) -> dict[str, str]:
    """Return the sample file's first row of `patient`, as a row of the interchange format."""
    with open(REPO_ROOT / "sample_data" / "sessions.csv", encoding="utf-8", newline="") as sample:
        return next(row for row in csv.DictReader(sample) if row["patient_id"] == patient)


def stored_pain_before(database_url: str, patient: str, date: str) -> float:
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        return connection.execute(
            "SELECT s.pain_before FROM sessions s JOIN episodes e ON e.id = s.episode_id "
            "JOIN patients p ON p.id = e.patient_id WHERE p.pseudonym = ? AND s.session_date = ?",
            (patient, date),
        ).fetchone()[0]


def grid_cell(page: Page, text: str):
    """Return the table cells whose whole text is `text` (tables are drawn on a canvas; these are their cells)."""
    cells = page.locator("[data-testid='stDataFrame'] [role='gridcell']")
    return cells.filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def test_an_import_that_changes_a_stored_session_lists_the_change_and_waits_for_confirmation(
        app_url, app_database_url, page, tmp_path):
    row = first_session_of("P0002")
    upload = tmp_path / "corrected.csv"
    with open(upload, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row | {"pain_before": "50"})
    log_in(page, app_url, "clin_ahmed")
    open_page(page, "Import")
    page.locator("input[type='file']").set_input_files(str(upload))
    confirm = page.get_by_role("button", name="Import 1 update")
    expect(confirm).to_be_visible()
    change = page.locator("[data-testid='stDataFrame'] [role='gridcell']").filter(
        has_text=re.compile(r"^\s*pain[ _]before\s*$", re.IGNORECASE))
    expect(change.first).to_be_attached()  # the field that changes ...
    expect(grid_cell(page, row["pain_before"]).first).to_be_attached()  # ... its value stored now ...
    expect(grid_cell(page, "50").first).to_be_attached()  # ... and in the file
    assert stored_pain_before(app_database_url, "P0002", row["session_date"]) == float(row["pain_before"])

    confirm.click()
    expect(page.get_by_text("Imported corrected.csv")).to_be_visible()
    wait_for_app(page)
    assert stored_pain_before(app_database_url, "P0002", row["session_date"]) == 50.0


def test_the_audit_trail_filters_by_patient_and_downloads_those_rows(app_url, page):
    log_in(page, app_url, "admin")
    open_page(page, "Audit trail")
    page.get_by_label("Patient (pseudonymous id)", exact=True).fill("P0002")
    page.keyboard.press("Enter")
    expect(page.get_by_text("filtered by", exact=False)).to_contain_text("P0002")  # the filter's own run is drawn
    wait_for_app(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download these rows (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows, "no audit row of P0002"
    assert {r["patient"] for r in rows} == {"P0002"}
