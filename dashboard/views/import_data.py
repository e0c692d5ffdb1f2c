"""Import sessions from a spreadsheet, all rows or none, after a preview; export every session (clinicians, admins)."""

import zipfile
from collections.abc import Callable

import streamlit as st
from sqlmodel import Session

from dashboard import resources
from dashboard.navigation import current_actor
from dashboard.text import literal
from db import fhir, interchange
from db.engine import write_session
from db.interchange import ImportRefused

PREVIEW_ROWS = 20

actor = current_actor()
engine = resources.engine()
st.title("Import sessions")
st.markdown(
    "Upload a **CSV** (UTF-8) or **Excel** file with one row per session and a header row: `patient_id`, "
    "`session_date` (YYYY-MM-DD), `technique` and `pain_before` are required; `pain_scale`, `pain_after`, "
    "`side_effects`, `condition`, `clinician`, `twitch_response`, `notes`, `body_region` and `muscles` may follow. "
    "Every row is checked before anything is written, and then all rows are imported or none. Importing the same "
    "file again changes nothing; a corrected file updates the sessions it corrects."
)

notice = st.session_state.pop("import_done", None)
if notice:
    st.success(notice, icon=":material/check_circle:")

# A new uploader after each import, so the imported file is not offered for import again.
attempt = st.session_state.get("import_attempt", 0)
upload = st.file_uploader("Sessions file", type=["csv", "xlsx"], key=f"import_file_{attempt}")


def _validated(upload) -> list:
    """Return the file's rows validated (checked once per uploaded file), or raise ImportRefused."""
    checked = st.session_state.get("import_checked")
    if checked and checked[0] == upload.file_id:
        return checked[1]
    table = interchange.read_table(upload, name=upload.name)
    bar = st.progress(0.0, text=f"Checking {len(table):,} rows…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Checked {done:,} of {total:,} rows")

    try:
        entries = interchange.validate_rows(table, on_progress=progress)
    finally:
        bar.empty()
    st.session_state["import_checked"] = (upload.file_id, entries, table.head(PREVIEW_ROWS))
    return entries


if upload is not None:
    try:
        entries = _validated(upload)
    except ImportRefused as refused:
        problems = refused.table()
        st.error(
            f"Nothing was imported: {len(problems)} problem(s) in {literal(upload.name)}. Correct them in the file "
            "and upload it again.", icon=":material/error:",
        )
        st.dataframe(problems, hide_index=True, key="import_problems")
        st.download_button(
            "Download the problems (CSV)", problems.to_csv(index=False).encode("utf-8"), mime="text/csv",
            file_name=f"problems-{upload.name.rsplit('.', 1)[0]}.csv", on_click="ignore",
            icon=":material/download:", key="import_problems_csv",
        )
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile) as unreadable:
        st.error(f"Nothing was imported: {literal(upload.name)} could not be read ({literal(unreadable)}).")
    else:
        with Session(engine) as session:
            plan = interchange.plan_import(session, actor=actor, entries=entries)
        st.subheader("Preview")
        new, updated, unchanged, deleted = st.columns(4)
        new.metric("New sessions", plan.inserted)
        updated.metric("Updated", plan.updated, help="Sessions already stored whose values the file corrects.")
        unchanged.metric("Unchanged", plan.unchanged)
        deleted.metric("Left deleted", plan.deleted, help="Rows matching sessions deleted in the app: not restored.")
        if plan.new_patients or plan.new_clinicians:
            clinicians = ", ".join(plan.new_clinicians)
            st.info(f"{plan.new_patients} new patient(s)"
                    + (f"; new clinician accounts (no password until an admin sets one): {literal(clinicians)}"
                       if clinicians else "") + ".")
        preview = st.session_state["import_checked"][2]
        st.caption(f"The first {min(len(entries), PREVIEW_ROWS)} of {len(entries):,} rows of {literal(upload.name)}:")
        st.dataframe(preview, hide_index=True, key="import_preview")
        changes = plan.inserted + plan.updated
        if not changes:
            st.info("Nothing to import: every session in this file is already stored as it is.")
        elif st.button(f"Import {changes:,} sessions", type="primary", key="import_confirm"):
            with st.spinner("Importing…"), write_session(engine) as session:
                result = interchange.import_sessions(session, actor=actor, entries=entries, source=upload.name)
            resources.clear_after_write()
            st.session_state.pop("import_checked", None)
            st.session_state["import_attempt"] = attempt + 1
            st.session_state["import_done"] = f"Imported {upload.name}: {result.summary()}."
            st.rerun()

st.subheader("Export every session")
st.caption("The interchange file (CSV or Excel) imports back to identical data; the FHIR R4 Bundle is for "
           "registries and other systems (pseudonymous ids only, no notes). Every export is recorded in the audit "
           "trail.")


def _export(suffix: str) -> Callable[[], bytes]:
    """Return a function that builds the export when its button is clicked (audited then, not on every view)."""

    def build() -> bytes:
        with write_session(engine) as session:
            if suffix == ".json":
                return fhir.bundle_bytes(fhir.export_bundle(session, actor=actor))
            table = interchange.export_table(session, actor=actor, purpose=suffix.lstrip(".").upper())
        return interchange.table_bytes(table, suffix)

    return build


csv_column, xlsx_column, json_column = st.columns(3)
csv_column.download_button("Sessions (CSV)", _export(".csv"), file_name="sessions.csv", mime="text/csv",
                           on_click="ignore", icon=":material/download:", key="export_csv")
xlsx_column.download_button(
    "Sessions (Excel)", _export(".xlsx"), file_name="sessions.xlsx", on_click="ignore", icon=":material/download:",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="export_xlsx",
)
json_column.download_button("FHIR R4 Bundle (JSON)", _export(".json"), file_name="sessions-fhir.json",
                            mime="application/fhir+json", on_click="ignore", icon=":material/download:",
                            key="export_fhir")
