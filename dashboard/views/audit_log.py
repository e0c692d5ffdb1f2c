"""Audit trail (admins): every change, login, export and import, newest first, filtered in SQL. Read-only."""

import pandas as pd
import streamlit as st

from clinic.vocabulary import counted
from dashboard import actions, resources
from dashboard.auth import current_actor
from dashboard.text import literal
from db.audit import AuditFilter
from db.models import AUDIT_ACTIONS

actor = current_actor()
st.title("Audit trail")
st.caption("Append-only: the database refuses to change or delete these rows, and each row carries a hash of the one "
           "before it, so `python -m db audit verify` finds any row changed behind the app's back.")

patient_column, user_column, action_column = st.columns(3)
patient = patient_column.text_input("Patient (pseudonymous id)", key="audit_patient", placeholder="e.g. P0041")
user = user_column.text_input("User", key="audit_user", placeholder="username, e.g. clin_ahmed")
action = action_column.selectbox("Action", ["", *AUDIT_ACTIONS], key="audit_action",
                                 format_func=lambda a: a.replace("_", " ") if a else "Any action")
since_column, until_column, limit_column = st.columns(3)
since = since_column.date_input("From (UTC)", value=None, key="audit_since", format="YYYY-MM-DD")
until = until_column.date_input("To (UTC)", value=None, key="audit_until", format="YYYY-MM-DD")
limit = limit_column.select_slider("Rows at most", [100, 500, 2000, 10000], value=500, key="audit_limit")
if since and until and since > until:
    st.warning("The From date is after the To date: no row can match. Swap them.", icon=":material/warning:")
    st.stop()

where = AuditFilter(patient=patient, user=user, action=action, since=since, until=until)
events = resources.audit_events(actor, where, limit)

filtered = where.words() != "everything"
st.write(literal(f"{counted(len(events), 'row')}, newest first"
                 + (f" (the newest {limit:,})" if len(events) == limit else "")
                 + ("" if not filtered else "; filtered by " + where.words()) + "."))  # usernames as they are
if events.empty:
    st.info("No audit row matches these filters." if filtered else "The audit trail is empty.")
    st.stop()

# Built when the button is clicked: the export is audited then, not on every view of the page.
st.download_button("Download these rows (CSV)", actions.export_audit_rows(actor, where, limit),
                   file_name="audit_trail.csv", mime="text/csv", on_click="ignore", icon=":material/download:",
                   key="audit_download")

shown = events.copy()
shown[["patient", "detail", "changes"]] = shown[["patient", "detail", "changes"]].fillna("")  # not "None"
# A table cell shows one line: its fields are parted by semicolons there, and one per line for the chosen row below.
in_table = shown.assign(changes=shown["changes"].str.replace("\n", "; "))
picked = st.dataframe(  # text cells: shown literally, never as HTML or markdown
    in_table, hide_index=True, placeholder="", key="audit_table", on_select="rerun", selection_mode="single-row",
    column_config={
        "id": st.column_config.NumberColumn("#", format="%d"),
        "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "actor": "User", "action": "Action", "entity": "Record", "entity_id": "Record id", "patient": "Patient",
        "changes": st.column_config.TextColumn("Changes", width="large"), "detail": "Detail",
    },
)

rows = picked.selection.rows if picked and picked.selection else []
row = shown.iloc[rows[0] if rows else 0]
st.header(f"Row {row['id']}" + ("" if rows else " (the newest; pick a row above to see another)"))
st.text(f"{row['at']:%Y-%m-%d %H:%M:%S} UTC · {row['action']} of {row['entity']}"
        f"{'' if pd.isna(row['entity_id']) else ' ' + str(row['entity_id'])}"
        f"{' · patient ' + row['patient'] if row['patient'] else ''} · by {row['actor']}")
st.text(row["changes"] or "No values recorded.")
if row["detail"]:
    st.text(f"Detail: {row['detail']}")
