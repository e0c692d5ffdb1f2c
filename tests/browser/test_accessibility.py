"""axe-core (4.12, bundled in the axe-playwright-python wheel: nothing is downloaded) finds no serious or critical
violation in our own content on any page, for any role, in a real browser.

Streamlit's own page menu is excluded, by name: its section headings sit inside the menu's list as non-item
children (axe rules `list` and `listitem`), which the app cannot change.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from tests.browser.test_journeys import log_in
from tests.support.browser import wait_for_app

pytestmark = pytest.mark.browser
STREAMLIT_INTERNAL = [["[data-testid='stSidebarNav']"]]  # the page menu (see the module docstring)
SERIOUS = {"serious", "critical"}
PAGES = {
    "clin_ahmed": ["Record session", "Patient progress", "Import", "Methods"],
    "manager": ["Technique outcomes", "Methods"],
    "patient": ["My progress"],
    "admin": ["Record session", "Patient progress", "Import", "Technique outcomes", "Methods", "Accounts",
              "Audit trail", "Deleted sessions"],
}
TECHNIQUE_SECTIONS = ["Responders", "Time to response", "Adjusted comparison", "Clinicians", "Safety"]
AXE = Axe()


def serious_violations(page: Page, where: str) -> list[str]:
    """Return one line per serious or critical axe violation on the page as it is now."""
    wait_for_app(page)
    result = AXE.run(page, context={"exclude": STREAMLIT_INTERNAL})
    return [
        f"{where}: {v['id']} ({v['impact']}) at {[n['target'] for n in v['nodes']][:3]}: {v['help']}"
        for v in result.response["violations"] if v["impact"] in SERIOUS
    ]


def open_page(page: Page, title: str) -> None:
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", level=1).first.wait_for()
    wait_for_app(page, initial_wait_ms=300)


def test_the_login_page_has_no_serious_accessibility_violation(app_url, page):
    page.goto(app_url)
    assert serious_violations(page, "login") == []


@pytest.mark.parametrize("username", list(PAGES))
def test_every_page_of_every_role_has_no_serious_accessibility_violation(app_url, page, username):
    log_in(page, app_url, username)
    found = []
    for title in PAGES[username]:
        if username != "patient":  # a patient has one page, open on login
            open_page(page, title)
        found += serious_violations(page, f"{username} / {title}")
        if title == "Technique outcomes":
            for section in TECHNIQUE_SECTIONS:
                page.locator(".st-key-section").get_by_text(section, exact=True).click()
                page.get_by_role("heading", level=2).first.wait_for()
                wait_for_app(page, initial_wait_ms=300)
                found += serious_violations(page, f"{username} / {title} / {section}")
    assert found == [], "\n".join(found)
