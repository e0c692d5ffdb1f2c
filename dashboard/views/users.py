"""Accounts (admins): list, add, disable or enable, reset a password. Every change is audited."""

import streamlit as st
from sqlmodel import Session

from dashboard import resources
from dashboard.navigation import current_actor
from dashboard.text import literal
from db import accounts
from db.engine import write_session
from db.models import ROLES

actor = current_actor()
st.title("Accounts")

with Session(resources.engine()) as session:
    table = accounts.users(session, actor=actor)
st.dataframe(table, hide_index=True, key="users_table")

add, manage = st.tabs(["Add an account", "Disable, enable or reset"])
with add, st.form("add_user", clear_on_submit=True):
    username = st.text_input("Username", key="new_username")
    role = st.selectbox("Role", ROLES, key="new_role")
    display_name = st.text_input("Display name", key="new_display_name")
    email = st.text_input("E-mail (for organisation login, optional)", key="new_email")
    patient = st.text_input("Patient id (patient accounts only)", key="new_patient")
    password = st.text_input("Initial password (at least 10 characters)", type="password", key="new_password")
    if st.form_submit_button("Add account", type="primary", key="add_user_submit"):
        try:
            with write_session(resources.engine()) as session:
                accounts.add_user(
                    session, actor=actor, username=username, role=role, password=password or None,
                    display_name=display_name, email=email or None, patient_pseudonym=patient or None,
                )
        except ValueError as problem:
            st.error(f"Not added. {literal(problem)}")
        else:
            resources.clear_after_write()
            st.success(f"Added {literal(username)}.")

with manage:
    names = table["username"].tolist()
    if names:
        chosen = st.selectbox("Account", names, key="manage_username")
        left, right = st.columns(2)
        if left.button("Disable", key="disable_user"):
            with write_session(resources.engine()) as session:
                accounts.set_active(session, actor=actor, username=chosen, active=False)
            st.rerun()
        if right.button("Enable", key="enable_user"):
            with write_session(resources.engine()) as session:
                accounts.set_active(session, actor=actor, username=chosen, active=True)
            st.rerun()
        with st.form("reset_password", clear_on_submit=True):
            new_password = st.text_input("New password", type="password", key="reset_password_value")
            if st.form_submit_button("Reset password", key="reset_password_submit"):
                try:
                    with write_session(resources.engine()) as session:
                        accounts.reset_password(session, actor=actor, username=chosen, password=new_password)
                except ValueError as problem:
                    st.error(f"Not changed. {literal(problem)}")
                else:
                    st.success(f"Password of {literal(chosen)} reset; any lock is lifted.")
