"""Tests of organisation login (OpenID Connect): only an e-mail the provider verified, exactly as stored, logs in;
an idle timeout ends the provider's login in this browser too, so the next click does not log straight back in.

The provider is faked with AppTest's own `user` (what `st.user` reads) and an `[auth]` secrets section.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from db.engine import make_engine
from tests.app.conftest import APP

EMAIL = "ahmed@clinic.example"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not a secret",
        "client_id": "needle", "client_secret": "not a secret",
        "server_metadata_url": "https://id.clinic.example/.well-known/openid-configuration"}


@pytest.fixture
def provider(seeded_url):
    """Give the demo clinician an e-mail; return a function that opens the app as a provider's login of `claims`."""
    engine = make_engine(seeded_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET email = :e WHERE username = 'clin_ahmed'"), {"e": EMAIL})
    engine.dispose()

    def open_app(**claims) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=30)
        at.secrets["auth"] = AUTH
        at.user = {"is_logged_in": True, "email": EMAIL, "email_verified": True} | claims
        at.run()
        assert not at.exception, at.exception
        return at

    return open_app


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_a_verified_email_of_an_account_logs_in(provider):
    at = provider()
    assert titles(at) == ["Record session"]
    assert at.session_state["actor"].username == "clin_ahmed"


@pytest.mark.parametrize("claims", [
    {"email_verified": False}, {"email_verified": None}, {"email_verified": "false"},
], ids=["false", "null", "text false"])
def test_an_email_the_provider_has_not_verified_does_not_log_in(provider, claims):
    at = provider(**claims)
    assert titles(at) == ["Needle Outcomes"] and "actor" not in at.session_state
    assert [e.value for e in at.error] == [
        "Your identity provider has not verified your e-mail address, so it cannot log you in here. Verify it with "
        "your organisation, or log in with a username and password."]


def test_an_email_without_the_verified_claim_does_not_log_in(provider):
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": EMAIL}
    at.run()
    assert titles(at) == ["Needle Outcomes"] and "actor" not in at.session_state


def test_the_email_in_another_case_does_not_log_in(provider):
    at = provider(email="Ahmed@clinic.example")
    assert titles(at) == ["Needle Outcomes"] and "actor" not in at.session_state
    assert [e.value for e in at.error] == [
        "Your identity provider login has no account here. Ask an administrator to add your e-mail."]


def test_after_the_idle_timeout_the_next_click_does_not_log_straight_back_in(provider):
    at = provider()
    assert titles(at) == ["Record session"]
    at.session_state["last_seen"] = datetime.now(UTC) - timedelta(minutes=31)
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["Needle Outcomes"] and "actor" not in at.session_state
    assert at.user.get("is_logged_in") is False  # the provider's login in this browser ended too
    at.run()  # and the next click stays logged out
    assert titles(at) == ["Needle Outcomes"] and "actor" not in at.session_state
