"""Log in: username and password (argon2id, slowed after repeated failures), or OpenID Connect when configured."""

import streamlit as st

from dashboard import actions, auth
from db.accounts import LoginRefused

st.title("Needle Outcomes")
st.caption("Outcome tracking for dry needling. Log in to continue.")

if notice := st.session_state.pop(auth.NOTICE, None):
    st.info(notice)

if auth.oidc_configured():
    if getattr(st.user, "is_logged_in", False):
        email = auth.identity_email()
        actor = actions.log_in_by_email(email) if email is not None else None
        if email is None:
            st.error("Your identity provider has not verified your e-mail address, so it cannot log you in here. "
                     "Verify it with your organisation, or log in with a username and password.")
        elif actor is None:
            st.error("Your identity provider login has no account here. Ask an administrator to add your e-mail.")
        else:
            auth.start_session(actor)
            st.rerun()
    st.button("Log in with your organisation", key="oidc_login", on_click=st.login, icon=":material/login:")
    st.divider()

with st.form("login_form", enter_to_submit=True):
    username = st.text_input("Username", key="login_username", autocomplete="username")
    password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
    submitted = st.form_submit_button("Log in", type="primary", key="login_submit")

if submitted:
    try:
        with st.spinner("Checking…"):
            auth.pause_before_login()
            actor = actions.log_in(username, password)
    except LoginRefused as refused:
        auth.login_failed()
        st.error(str(refused), icon=":material/lock:")
    else:
        auth.start_session(actor)
        st.rerun()
