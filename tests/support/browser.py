"""Helpers for real-browser tests: serve the Streamlit app, drive Debian's Chromium with Playwright.

    with serve_app(database_url, tmp_path) as base_url:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(base_url)
        wait_for_app(page)

Conventions (docs/DESIGN.md section 7, "Real browser"): Playwright drives /usr/bin/chromium from Debian's `chromium`
package (`scripts/install-system-packages.sh`); never `playwright install`, which downloads a browser build and
fails here. The app runs headless on 127.0.0.1 on a free port, without file watcher or usage statistics; a page is
ready when `stApp` is connected and its script state is `notRunning`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_SCRIPT = "dashboard/app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox will not start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these, Chromium keeps trying to reach Google's hosts, which this machine's closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 60
APP_READY_SELECTOR = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_CONNECTED_SELECTOR = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
LOADING_SELECTOR = "[data-testid='stSkeleton']"  # an element whose code is still loading
EXCEPTION_SELECTOR = "[data-testid='stException']"


class AppServerError(RuntimeError):
    """The Streamlit server did not come up; the message carries its command line and output."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamlit_command(port: int, app: str = APP_SCRIPT) -> list[str]:
    """Return the command line that serves `app` headless on 127.0.0.1:`port`."""
    return [
        sys.executable, "-m", "streamlit", "run", app,
        "--server.headless=true",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
    ]  # fmt: skip


@contextmanager
def serve_app(
    database_url: str,
    tmp_path: Path,
    *,
    app: str = APP_SCRIPT,
    cwd: Path | str = REPO_ROOT,
    env: dict[str, str] | None = None,
    timeout_s: float = SERVER_START_TIMEOUT_S,
) -> Iterator[str]:
    """Serve the app against `database_url` while the block runs; yield its base URL (`http://127.0.0.1:PORT/`).

    The server's output goes to `tmp_path/streamlit-PORT.log`; if the server does not answer its health check
    within `timeout_s`, or exits, AppServerError carries that output.
    """
    tmp_path = Path(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = streamlit_command(port, app)
    log_path = tmp_path / f"streamlit-{port}.log"
    child_env = {**os.environ, **(env or {})}
    child_env["DATABASE_URL"] = database_url
    # `python -m streamlit` puts the working directory on sys.path; say so explicitly for the app's imports.
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), child_env.get("PYTHONPATH", "")) if p)
    child_env["PYTHONUNBUFFERED"] = "1"
    base_url = f"http://127.0.0.1:{port}/"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_healthy(process, base_url, command, log_path, timeout_s)
        yield base_url
    finally:
        _terminate(process)


def _wait_healthy(
    process: subprocess.Popen, base_url: str, command: list[str], log_path: Path, timeout_s: float
) -> None:
    health = base_url + "_stcore/health"
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AppServerError(_server_failure(f"exited with status {process.returncode}", command, log_path))
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AppServerError(_server_failure(f"not healthy after {timeout_s:.0f} s", command, log_path))
        time.sleep(0.2)


def _server_failure(what: str, command: list[str], log_path: Path) -> str:
    try:
        output = log_path.read_text(errors="replace").strip()
    except OSError:
        output = ""
    return f"streamlit server {what}: {' '.join(command)}\n--- server output ({log_path}) ---\n{output or '(none)'}"


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def launch_chromium(playwright: Playwright, **kwargs) -> Browser:
    """Launch Debian's Chromium headless, with the flags this machine needs (root, no GPU, closed network)."""
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(
            f"{CHROMIUM} not found: install Debian's `chromium` with `bash scripts/install-system-packages.sh` "
            "(never `playwright install`)"
        )
    args = [*CHROMIUM_ARGS, *kwargs.pop("args", [])]
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, **kwargs)


def wait_for_app(page: Page, timeout_ms: float = 30_000, initial_wait_ms: float = 0) -> None:
    """Wait until the app is connected, its script has finished running and every element has rendered.

    After an interaction that triggers a rerun (a click, a typed value), pass `initial_wait_ms` of about 200:
    until the rerun starts, the app still reads `notRunning` from the previous run.
    """
    if initial_wait_ms:
        page.wait_for_timeout(initial_wait_ms)
    page.wait_for_selector(APP_CONNECTED_SELECTOR, state="attached", timeout=timeout_ms)
    page.wait_for_selector(APP_READY_SELECTOR, state="attached", timeout=timeout_ms)
    page.wait_for_selector(LOADING_SELECTOR, state="detached", timeout=timeout_ms)


def wait_until_computed(page: Page) -> None:
    """Wait until no section says "Being computed…" and the run that drew the results has finished. A result that
    arrives redraws its section, a chart included: a chart measured or read before then may be gone the next moment
    (a clean-clone CI run found the patient's chart without a box once its band arrived)."""
    from playwright.sync_api import expect

    wait_for_app(page)
    expect(page.get_by_text("Being computed…")).to_have_count(0)
    wait_for_app(page)


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Save a full-page PNG of `page` as `tmp_path/NAME.png` and return its path."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "screenshot"
    path = Path(tmp_path) / f"{safe}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, app_url: str, username: str, password: str) -> None:
    """Open the app and log in with the keyboard alone: type, Tab to the password, Enter to submit."""
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_label("Username", exact=True).fill(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.get_by_label("Username", exact=True).wait_for(state="detached")  # the login page is gone
    page.get_by_text(f"Signed in as {username}").wait_for(state="attached")  # logged-in navigation drawn
    wait_for_app(page, initial_wait_ms=300)


def plotly_chart(page: Page, key: str) -> Locator:
    """Return the plotly chart whose Streamlit key is `key` once the page is drawn in full and holds it exactly once.
    While a section's result arrives, the page can hold its old and its new chart for a moment; a locator that
    matches both fails at once in Playwright's strict mode. Counting once was not enough: a clean-clone run found
    the count 1, then two charts when the patient's band arrived, so the page is first left to finish computing."""
    from playwright.sync_api import expect

    wait_until_computed(page)
    chart = page.locator(f".st-key-{key} .js-plotly-plot")
    expect(chart).to_have_count(1)
    return chart


def pick(page: Page, label: str, option: str, attempts: int = 3) -> None:
    """Choose `option` in Streamlit's (non-native) select box or multiselect labelled `label`.

    A rerun that redraws the field closes its open list (seen on a loaded machine: the field focused, no list; or
    the option shown, then detached before the click, when an analysis finished on the worker and the page drew
    it), so the field is opened again and the option clicked again until the click lands.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    field = page.get_by_label(label, exact=True)
    choice = page.get_by_role("option", name=option, exact=True)
    for attempt in range(1, attempts + 1):
        field.click()
        try:
            choice.click(timeout=5_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts:
                raise
            page.keyboard.press("Escape")
            wait_for_app(page)


PAGE_HEADINGS = {"Import": "Import sessions"}  # a page whose title (h1) is not its name in the menu


def open_page(page: Page, title: str, attempts: int = 2) -> None:
    """Open a page from the menu and wait until that page (its own title, not the last page's) has rendered.

    A click that lands as an analysis on the worker finishes can be lost: the finished analysis reruns the page it
    was drawn on (seen on a loaded machine, Methods staying after a click on Technique outcomes), so the menu is
    clicked again, as a user would.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)  # a page may link it too
    heading = page.get_by_role("heading", name=PAGE_HEADINGS.get(title, title), level=1)
    for attempt in range(1, attempts + 1):
        link.click()
        try:
            heading.wait_for(timeout=15_000 if attempt < attempts else None)
            break
        except PlaywrightTimeout:
            if attempt == attempts:
                raise
            wait_for_app(page)
    wait_for_app(page)


def add_to_multiselect(page: Page, label: str, option: str, key: str, attempts: int = 3) -> None:
    """Add `option` to the multiselect labelled `label` (Streamlit key `key`) with the keyboard, as a clinician in a
    hurry does (type to filter, Enter to take the first match), and wait until its chip shows.

    On a loaded machine a mouse click on an option could land while the list was being redrawn and select nothing,
    three times running (a parallel make test); typed text goes to the focused field. The chip is the app's own
    record of the choice, so the option is chosen again until it is there.
    """
    from playwright.sync_api import expect

    field = page.get_by_label(label, exact=True)
    chip = page.locator(f".st-key-{key} [data-tag]").filter(has_text=option)  # the chosen value's chip
    for attempt in range(1, attempts + 1):
        field.click()
        field.fill(option)
        expect(page.get_by_role("option", name=option, exact=True)).to_be_visible()
        field.press("Enter")
        field.press("Escape")
        try:
            expect(chip).to_have_count(1, timeout=5_000)
            return
        except AssertionError:
            if attempt == attempts:
                raise
