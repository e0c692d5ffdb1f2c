"""An unexpected fault on a page: one friendly line with a reference for the user, the traceback in the server log."""

from __future__ import annotations

import logging
import secrets

import streamlit as st

log = logging.getLogger(__name__)


def new_reference() -> str:
    """Return a short random reference (8 hex characters) that ties what the user saw to the server log."""
    return secrets.token_hex(4)


def report(fault: Exception, *, username: str | None = None) -> str:
    """Log the fault's traceback under a new reference, show the user one line naming it; return the reference.

    Never the exception's text on the page: it may hold values (a query, a file name, another patient's id).
    """
    reference = new_reference()
    # Without logging configured, Python's last-resort handler writes this and the traceback to standard error,
    # which is the server's log (journald under the deployment guide's systemd unit).
    log.error("reference %s: unexpected %s on a page (user %s)", reference, type(fault).__name__,
              username or "not logged in", exc_info=fault)
    st.error(f"Something went wrong on this page. If it happens again, tell your administrator the reference "
             f"{reference}.", icon=":material/error:")
    return reference
