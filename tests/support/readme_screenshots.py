"""Take the README's screenshots of every page from the sample data.

Run `.venv/bin/python -m tests.support.readme_screenshots`.

Uses the browser tests' own helpers (a seeded database, the real server, Debian's Chromium) and writes
docs/screenshots/*.png, which are committed. Not part of `make test`: tests never write into the work tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from db import corrections
from db.access import Actor
from db.cli import DEMO_ACCOUNTS
from db.engine import make_engine, write_session
from tests.support.browser import REPO_ROOT, launch_chromium, log_in, pick, serve_app, wait_for_app

OUT = REPO_ROOT / "docs" / "screenshots"
PASSWORDS = {username: password for username, _, password, _ in DEMO_ACCOUNTS}
DESKTOP = {"width": 1400, "height": 1500}
PHONE = {"width": 390, "height": 1100}


def shoot(browser, url: str, username: str, name: str, viewport: dict, page_title: str | None = None,
          section: str | None = None, patient: str | None = None, upload: Path | None = None) -> None:
    """Log in as `username`, open `page_title` in the sidebar (and a section), and save docs/screenshots/NAME.png."""
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    page = context.new_page()
    log_in(page, url, username, PASSWORDS[username])
    if page_title:
        page.get_by_role("link", name=page_title).click()
        wait_for_app(page, initial_wait_ms=500)
    if patient:
        pick(page, "Patient", patient)
        wait_for_app(page, initial_wait_ms=500)
    if section:
        page.locator(".st-key-section").get_by_text(section, exact=True).click()
        wait_for_app(page, initial_wait_ms=500)
    if upload:
        page.locator("input[type='file']").set_input_files(str(upload))
        wait_for_app(page, initial_wait_ms=1500)
    page.wait_for_timeout(1500)  # let plotly finish drawing
    page.screenshot(path=str(OUT / f"{name}.png"))
    context.close()
    print(f"wrote {OUT / f'{name}.png'}")


# An import with two new sessions and a correction of a stored one, so the preview shows each kind.
IMPORT_EXAMPLE = """patient_id,session_date,technique,pain_scale,pain_before,pain_after,side_effects,condition,clinician
P0301,2026-10-20,deep,vas_100,72,55,bruising:mild,neck_pain,clin_ahmed
P0301,2026-10-27,deep,vas_100,58,40,,neck_pain,clin_ahmed
"""


def delete_one_session(url: str) -> None:
    """Delete one sample session with a reason, so Deleted sessions has something to show."""
    engine = make_engine(url)
    with write_session(engine) as session:
        corrections.delete_session(session, actor=Actor.command_line(), session_id=200,
                                   reason="recorded for the wrong patient")
    engine.dispose()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/screens.db"
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([sys.executable, "-m", "db", "seed"], cwd=REPO_ROOT, env=env, check=True)
        delete_one_session(url)
        upload = Path(folder) / "sessions.csv"
        upload.write_text(IMPORT_EXAMPLE, encoding="utf-8")
        with serve_app(url, Path(folder)) as base, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            shoot(browser, base, "clin_ahmed", "record_session", DESKTOP)
            shoot(browser, base, "clin_ahmed", "patient_progress", DESKTOP, "Patient progress", patient="P0002")
            shoot(browser, base, "manager", "technique_outcomes", DESKTOP)
            shoot(browser, base, "manager", "time_to_response", DESKTOP, section="Time to response")
            shoot(browser, base, "manager", "adjusted_comparison", DESKTOP, section="Adjusted comparison")
            shoot(browser, base, "patient", "my_progress_phone", PHONE)
            shoot(browser, base, "admin", "audit_trail", DESKTOP, "Audit trail")
            shoot(browser, base, "admin", "accounts", DESKTOP, "Accounts")
            shoot(browser, base, "admin", "deleted_sessions", DESKTOP, "Deleted sessions")
            shoot(browser, base, "clin_ahmed", "import", DESKTOP, "Import", upload=upload)
            shoot(browser, base, "manager", "methods", DESKTOP, "Methods")
            context = browser.new_context(viewport=DESKTOP)
            page = context.new_page()
            page.goto(base)
            wait_for_app(page)
            page.screenshot(path=str(OUT / "login.png"))
            context.close()
            browser.close()


if __name__ == "__main__":
    main()
