"""Log out: every session of the account ends, here and in any other browser or tab, and the logout is audited."""

import streamlit as st

from dashboard import actions, auth

actions.log_out(auth.current_actor())
auth.end_session("You are logged out, in every browser and tab.")
auth.end_identity()
st.rerun()
