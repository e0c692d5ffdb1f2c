"""Accounts (admins): list, add, disable or enable, change role, reset a password. Every change is audited and
every change of access is confirmed first, naming the account."""

import pandas as pd
import streamlit as st

from clinic.vocabulary import NEEDLING_TRAINING_MAX
from dashboard import actions, needling_data, resources
from dashboard.auth import current_actor
from dashboard.confirm import confirmed, done, refused, show_result
from dashboard.text import literal
from db.accounts import STAFF_ROLES
from db.models import ROLES

PAGE = "accounts"

actor = current_actor()
st.title("Accounts")
show_result(PAGE)

table = resources.accounts_table(actor)
st.dataframe(
    table, hide_index=True, placeholder="", key="users_table",
    column_config={
        "username": "Username", "role": "Role", "display_name": "Name", "email": "E-mail",
        "patient_id": "Patient", "is_active": st.column_config.CheckboxColumn("Enabled"),
        "locked_until": st.column_config.DatetimeColumn("Next password check waits until"),  # never a lock
        "last_login_at": st.column_config.DatetimeColumn("Last login"),
        "needling_training": "Needling training", "years_practice": "Years of needling practice",
    },
)


ADD_FORM_BLANKS = {"new_username": "", "new_display_name": "", "new_email": "", "new_patient": "", "new_password": ""}


def change(what: str, write, reset: dict | None = None) -> None:
    """Make one account change (`write()`, an action); show its refusal (keeping the input), or keep its result,
    reset the widgets in `reset` and rerun."""
    try:
        write()
    except ValueError as problem:
        refused(PAGE, f"Not changed. {literal(problem)}")
    else:
        done(PAGE, what, reset)


add, manage = st.tabs(["Add an account", "Disable, enable, change role or reset"])
with add, st.form("add_user", clear_on_submit=False):
    username = st.text_input("Username", key="new_username")
    role = st.selectbox("Role", ROLES, key="new_role")
    display_name = st.text_input("Display name", key="new_display_name")
    email = st.text_input("E-mail (for organisation login, optional)", key="new_email")
    patient = st.text_input("Patient id (patient accounts only)", key="new_patient")
    password = st.text_input("Initial password (at least 10 characters)", type="password", key="new_password")
    if st.form_submit_button("Add account", type="primary", key="add_user_submit"):
        change(f"Added {literal(username.strip().lower())} ({role}).", lambda: actions.add_account(
            actor, username=username, role=role, password=password or None,
            display_name=display_name, email=email or None, patient_pseudonym=patient or None,
        ), reset=ADD_FORM_BLANKS)

with manage:
    # No account is preselected: the first in the list is an admin, and one click must never change anyone.
    chosen = st.selectbox("Account", table["username"].tolist(), index=None, key="manage_username",
                          placeholder="Choose an account")
    if chosen:
        account = table.set_index("username").loc[chosen]
        who = literal(chosen)
        st.caption(f"{who} is a **{account['role']}** account, currently "
                   f"**{'enabled' if account['is_active'] else 'disabled'}**.")
        if account["is_active"]:
            if confirmed("Disable", f"Disable **{who}**? They are signed out everywhere and cannot log in until "
                         "an admin enables the account again.", key="disable_user", target=chosen,
                         disabled=chosen == actor.username):
                change(f"Disabled {who}.", lambda: actions.set_account_active(actor, chosen, False))
            if chosen == actor.username:
                st.caption("You cannot disable your own account.")
        elif confirmed("Enable", f"Enable **{who}** again? They can log in with their password.",
                       key="enable_user", target=chosen):
            change(f"Enabled {who}.", lambda: actions.set_account_active(actor, chosen, True))

        if account["role"] in STAFF_ROLES:
            others = [r for r in STAFF_ROLES if r != account["role"]]
            new_role = st.selectbox("New role", others, key="new_role_for")
            if confirmed("Change role", f"Make **{who}** a **{new_role}** instead of a {account['role']}?",
                         key="change_role", target=(chosen, new_role)):
                change(f"{who} is now a {new_role}.", lambda: actions.set_account_role(actor, chosen, new_role))

        if account["role"] == "clinician":
            # STRICTA item 5, the practitioner's background: reported with the clinic's needling record.
            with st.form(f"background_{chosen}", clear_on_submit=False, enter_to_submit=False):
                st.markdown("**Needling background** (reported with the needling record, STRICTA item 5)")
                training = st.text_area("Needling training", value=account.get("needling_training") or "",
                                        placeholder="e.g. 2021, 50-hour dry needling course (level 2)", height=68,
                                        max_chars=NEEDLING_TRAINING_MAX, key=f"training_{chosen}")
                years = account.get("years_practice")
                years = st.number_input("Years of needling practice", value=None if pd.isna(years) else int(years),
                                        step=1, placeholder="not recorded", key=f"years_{chosen}")
                if st.form_submit_button("Save needling background", key="background_submit"):
                    change(f"Needling background of {who} saved.", lambda: needling_data.set_needling_background(
                        actor, chosen, training, years))

        # In a form: its button sends the password typed with it, however the field was left (a Tab to the field's
        # eye did not send it, and the reset was refused as blank).
        with st.form(f"reset_password_{chosen}", clear_on_submit=False, enter_to_submit=False):
            new_password = st.text_input("New password", type="password", key="reset_password_value")
            asked = st.form_submit_button("Reset password", key="reset_password_ask")
        if confirmed("Reset password", f"Set a new password for **{who}**? Their old password stops working "
                     "and any lock is lifted.", key="reset_password_submit", target=chosen, asked=asked):
            change(f"Password of {who} reset; any lock is lifted.", lambda: actions.reset_account_password(
                actor, chosen, new_password), reset={"reset_password_value": ""})
