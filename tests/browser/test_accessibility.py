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
from tests.support.browser import open_page, wait_for_app

pytestmark = pytest.mark.browser
STREAMLIT_INTERNAL = [["[data-testid='stSidebarNav']"]]  # the page menu (see the module docstring)
SERIOUS = {"serious", "critical"}
PAGES = {
    "clin_ahmed": ["Record session", "Patient progress", "Off track", "Import", "Methods"],
    "manager": ["Technique outcomes", "Patient-reported", "Needling record", "Methods"],
    "patient": ["My progress", "My diary"],
    # The admin's other pages are the clinicians' and managers' page code, drawn alike and checked above.
    "admin": ["Accounts", "Audit trail", "Deleted sessions"],
}
# Each section of the technique page and its first heading, which says the section has rendered.
TECHNIQUE_SECTIONS = {
    "Responders": "Responders at the last session", "Time to response": "Sessions until a 30 % improvement",
    "Adjusted comparison": "Adjusted difference in pain from the reference technique",
    "Clinicians": "Clinicians' adjusted improvement", "Safety": "Significant and serious side effects",
    "Observed vs expected": "Observed minus expected improvement",
}
AXE = Axe()


def serious_violations(page: Page, where: str) -> list[str]:
    """Return one line per serious or critical axe violation on the page as it is now."""
    wait_for_app(page)
    result = AXE.run(page, context={"exclude": STREAMLIT_INTERNAL})
    return [
        f"{where}: {v['id']} ({v['impact']}) at {[n['target'] for n in v['nodes']][:3]}: {v['help']}"
        for v in result.response["violations"] if v["impact"] in SERIOUS
    ]


def test_the_login_page_has_no_serious_accessibility_violation(app_url, page):
    page.goto(app_url)
    assert serious_violations(page, "login") == []


@pytest.mark.parametrize("username", list(PAGES))
def test_every_page_of_every_role_has_no_serious_accessibility_violation(app_url, page, username):
    log_in(page, app_url, username)
    found = []
    for title in PAGES[username]:
        open_page(page, title)
        found += serious_violations(page, f"{username} / {title}")
        if title == "Technique outcomes":
            for section, heading in TECHNIQUE_SECTIONS.items():
                page.locator(".st-key-section").get_by_text(section, exact=True).click()
                page.get_by_role("heading", name=heading, level=2).wait_for()
                wait_for_app(page)
                found += serious_violations(page, f"{username} / {title} / {section}")
    assert found == [], "\n".join(found)
