"""Who is logged in to this browser session, and when the session ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import streamlit as st

from dashboard import actions, resources
from db import accounts
from db.access import Actor
from db.accounts import IDLE_TIMEOUT

ACTOR, LAST_SEEN, NOTICE, LOGGED_IN_AT = "actor", "last_seen", "login_notice", "logged_in_at"
LOGIN_FAILURES = "login_failures"  # wrong passwords typed in this browser session
# This browser session's own throttle, on top of the account's: after this many wrong passwords each further try
# waits 1, 2, 4, … seconds (at most accounts.MAX_DELAY), whichever account it is for.
FREE_TRIES_PER_SESSION = 3
_sleep = time.sleep  # tests replace it


def _now() -> datetime:
    return datetime.now(UTC)


def current_actor() -> Actor:
    """Return the actor this run's entrypoint let in (`resume_session`): pages are reachable only when logged in."""
    return st.session_state[ACTOR]


def resume_session() -> Actor | None:
    """Return the logged-in actor if this browser session may go on, else None; the entrypoint asks once per run.

    A session idle for longer than IDLE_TIMEOUT is logged out (and audited); so is one whose account an admin
    has disabled since it logged in, and one that a logout elsewhere, a password reset or a role change has ended.
    """
    actor = st.session_state.get(ACTOR)
    if actor is None:
        return None
    now = _now()
    last_seen = st.session_state.get(LAST_SEEN, now)
    if now - last_seen > IDLE_TIMEOUT:
        return _logged_out(actor, "idle timeout",
                           f"You were logged out after {int(IDLE_TIMEOUT.total_seconds() // 60)} idle minutes.")
    # A session from before logins were timed counts as logged in at the beginning of time.
    logged_in_at = st.session_state.get(LOGGED_IN_AT) or datetime.min.replace(tzinfo=UTC)
    ended = resources.session_ended(actor, logged_in_at)
    if ended == "disabled":
        return _logged_out(actor, "account disabled", "This account is disabled. Ask an administrator.")
    if ended:
        return _logged_out(actor, "ended by a logout, password reset or role change since",
                           "This session has ended: the account was logged out in another browser, or its password "
                           "or role changed. Please log in again.")
    st.session_state[LAST_SEEN] = now
    return actor


def _logged_out(actor: Actor, reason: str, notice: str) -> None:
    """Audit why the app logged the actor out, end this browser session with `notice`, and return None."""
    actions.record_logout(actor, reason)
    end_session(notice)
    end_identity()


def start_session(actor: Actor) -> None:
    """Remember the actor who just logged in."""
    st.session_state[ACTOR] = actor
    st.session_state[LAST_SEEN] = st.session_state[LOGGED_IN_AT] = _now()


def end_session(notice: str = "") -> None:
    """Forget the actor and everything they had open in this browser session."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if notice:
        st.session_state[NOTICE] = notice


def end_identity() -> None:
    """Log out of the identity provider's cookie too, when logged in with it.

    Otherwise the login page would log the browser straight back in from the cookie after an idle timeout.
    """
    if oidc_configured() and getattr(st.user, "is_logged_in", False):
        st.logout()


def identity_email() -> str | None:
    """Return the e-mail of the identity provider's login in this browser, if that provider verified it; else None."""
    if not getattr(st.user, "is_logged_in", False):
        return None
    # Only a provider's word that this person receives mail at the address ties them to an account; an address
    # that anyone can type into their profile does not. Some providers send the claim as text.
    if st.user.get("email_verified") not in (True, "true"):
        return None
    return str(st.user.get("email") or "") or None


def pause_before_login() -> None:
    """Wait before checking a password when this browser session has already typed several wrong ones."""
    failures = st.session_state.get(LOGIN_FAILURES, 0)
    delay = accounts.login_delay(failures, free=FREE_TRIES_PER_SESSION).total_seconds()
    if delay:
        _sleep(delay)


def login_failed() -> None:
    """Count a wrong password typed in this browser session."""
    st.session_state[LOGIN_FAILURES] = st.session_state.get(LOGIN_FAILURES, 0) + 1


def oidc_configured() -> bool:
    """Return whether `.streamlit/secrets.toml` has an [auth] section for OpenID Connect."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False
