"""The real app opens in a real browser: the page is titled, shows its heading, and raised no exception."""

import pytest
from playwright.sync_api import expect

from tests.support.browser import EXCEPTION_SELECTOR, wait_for_app

pytestmark = pytest.mark.browser


def test_app_opens_with_its_title_a_heading_and_no_exception(app_url, page):
    page.goto(app_url)
    wait_for_app(page)

    expect(page).to_have_title("Needle Outcomes")
    heading = page.locator("[data-testid='stMain'] h1").first
    expect(heading).to_be_visible()
    expect(heading).not_to_be_empty()
    expect(page.locator(EXCEPTION_SELECTOR)).to_have_count(0)
