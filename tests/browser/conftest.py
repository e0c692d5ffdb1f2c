"""Fixtures for real-browser tests: the app served on a seeded SQLite database, and a Chromium page.

A failing test leaves a screenshot of its page and the server's output in its tmp_path; the failure report names
the screenshot and shows the end of the server log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.browser import REPO_ROOT, launch_chromium, screenshot, serve_app

SCREENSHOT_DIR = pytest.StashKey[Path]()
SERVER_LOG_TAIL_CHARS = 4000
ACTION_TIMEOUT_MS = 15_000  # how long an action or an assertion waits for the app before it fails


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory) -> Path:
    """Return a SQLite file seeded once per run with sample_data/ (`python -m db seed`), copied by each test."""
    path = tmp_path_factory.mktemp("seeded") / "seeded.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    result = subprocess.run(
        [sys.executable, "-m", "db", "seed"],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"`python -m db seed` failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return path


@pytest.fixture
def app_database_url(seeded_database, tmp_path) -> str:
    """Return the URL of this test's own copy of the seeded database."""
    path = tmp_path / "app.db"
    shutil.copy(seeded_database, path)
    for suffix in ("-wal", "-shm"):  # normally folded into the file when the seeding engine closed
        extra = seeded_database.with_name(seeded_database.name + suffix)
        if extra.exists():
            shutil.copy(extra, path.with_name(path.name + suffix))
    return f"sqlite:///{path}"


# The sample data end months before today, so a session recorded today for a sample patient would ask whether it
# starts a new episode of care (db.episodes). The tests of routine follow-ups record today: their server takes any
# gap as part of the course; tests/browser/test_episodes.py serves the app with the default gap itself.
ROUTINE_FOLLOW_UPS = {"EPISODE_GAP_DAYS": "36500"}


@pytest.fixture
def app_url(app_database_url, tmp_path):
    """Serve the real app (dashboard/app.py) on the test's seeded database; yield its base URL."""
    with serve_app(app_database_url, tmp_path, env=ROUTINE_FOLLOW_UPS) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def browser():
    """Yield Debian's Chromium, launched headless once per run through Playwright."""
    from playwright.sync_api import expect, sync_playwright

    # An assertion waits for the app's state as long as an action does: on a loaded machine a save's rerun can take
    # more than `expect`'s 5 s (a double-click test failed so, with the session saved a moment later).
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, request, tmp_path):
    """Yield a fresh page in its own browser context (no shared cookies or storage), closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    request.node.stash[SCREENSHOT_DIR] = tmp_path
    try:
        yield page
    finally:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test with a page, add a screenshot path and the server's output to the failure report."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    directory = item.stash.get(SCREENSHOT_DIR, None)
    page = item.funcargs.get("page")
    if directory is None:
        return report
    notes = []
    if page is not None and not page.is_closed():
        try:
            path = screenshot(page, directory, f"failure-{item.name}")
            notes.append(f"screenshot: {path}")
        except Exception as error:  # a crashed browser must not hide the test's own failure
            notes.append(f"screenshot failed: {error}")
    for log in sorted(directory.glob("streamlit-*.log")):
        tail = log.read_text(errors="replace")[-SERVER_LOG_TAIL_CHARS:]
        report.sections.append((f"streamlit server output ({log})", tail))
    if notes:
        longrepr = report.longrepr
        if hasattr(longrepr, "addsection"):
            longrepr.addsection("browser", "\n".join(notes))
        else:
            report.sections.append(("browser", "\n".join(notes)))
        crash = getattr(longrepr, "reprcrash", None)
        if crash is not None:  # also name it in the one-line summary that `-ra` prints
            with contextlib.suppress(AttributeError):
                crash.message = f"{crash.message} [{notes[0]}]"
    return report
