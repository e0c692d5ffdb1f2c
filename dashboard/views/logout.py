"""Log out: the session ends here and the logout is audited."""

import streamlit as st

from dashboard import auth, resources
from db import audit
from db.engine import write_session

actor = auth.current_actor()
if actor is not None:
    with write_session(resources.engine()) as session:
        audit.record(session, actor, "logout", "user", actor.id)
auth.end_session("You are logged out.")
if auth.oidc_configured() and getattr(st.user, "is_logged_in", False):
    st.logout()
st.rerun()
