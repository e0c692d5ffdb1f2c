"""Who is logged in to this browser session, and when the session ends."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from sqlmodel import Session

from dashboard import resources
from db import accounts, audit
from db.access import Actor
from db.accounts import IDLE_TIMEOUT
from db.engine import write_session

ACTOR, LAST_SEEN, NOTICE = "actor", "last_seen", "login_notice"


def _now() -> datetime:
    return datetime.now(UTC)


def current_actor() -> Actor | None:
    """Return the logged-in actor, or None.

    A session idle for longer than IDLE_TIMEOUT is logged out (and audited); so is one whose account an admin
    has disabled since it logged in.
    """
    actor = st.session_state.get(ACTOR)
    if actor is None:
        return None
    now = _now()
    last_seen = st.session_state.get(LAST_SEEN, now)
    if now - last_seen > IDLE_TIMEOUT:
        _audit_logout(actor, "idle timeout")
        end_session(f"You were logged out after {int(IDLE_TIMEOUT.total_seconds() // 60)} idle minutes.")
        return None
    with Session(resources.engine()) as session:
        active = accounts.is_active(session, actor=actor)
    if not active:
        _audit_logout(actor, "account disabled")
        end_session("This account is disabled. Ask an administrator.")
        return None
    st.session_state[LAST_SEEN] = now
    return actor


def _audit_logout(actor: Actor, reason: str) -> None:
    with write_session(resources.engine()) as session:
        audit.record(session, actor, "logout", "user", actor.id, detail=reason)


def start_session(actor: Actor) -> None:
    """Remember the actor who just logged in."""
    st.session_state[ACTOR] = actor
    st.session_state[LAST_SEEN] = _now()


def end_session(notice: str = "") -> None:
    """Forget the actor and everything they had open in this browser session."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if notice:
        st.session_state[NOTICE] = notice


def oidc_configured() -> bool:
    """Return whether `.streamlit/secrets.toml` has an [auth] section for OpenID Connect."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False
