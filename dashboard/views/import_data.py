"""Import sessions from a spreadsheet, all rows or none, after a preview; export every session (clinicians, admins)."""

import streamlit as st

from clinic.vocabulary import counted
from dashboard import actions, episode_preview
from dashboard.auth import current_actor
from dashboard.text import literal
from db.file_problems import ImportRefused
from db.import_result import ImportResult

PREVIEW_ROWS = 20
SPELLED_OUT = 5  # problems also written out in full above the table, which cuts a long reason short
CHANGE_COLUMNS = {"row": "Row", "patient_id": "Patient", "session_date": "Date", "field": "Field",
                  "stored": "Stored now", "file": "In the file"}

actor = current_actor()
st.title("Import sessions")
st.markdown(
    "Upload a **CSV** (UTF-8) or **Excel** file with one row per session and a header row: `patient_id`, "
    "`session_date` (YYYY-MM-DD), `technique` and `pain_before` are required; `pain_scale`, `pain_after`, "
    "`side_effects`, `condition`, `clinician`, `twitch_response`, `notes`, `body_region`, `muscles` and `episode` "
    "may follow. "
    "Every row is checked before anything is written, and then all rows are imported or none. Importing the same "
    "file again changes nothing; a corrected file updates the sessions it corrects, and the preview lists every "
    "value it would change. A session corrected in the app since it was imported is left as corrected unless you "
    "pick the file's values for it."
)

notice = st.session_state.pop("import_done", None)
if notice:
    st.success(notice, icon=":material/check_circle:")

# A new uploader after each import, so the imported file is not offered for import again.
attempt = st.session_state.get("import_attempt", 0)
upload = st.file_uploader("Sessions file", type=["csv", "xlsx"], key=f"import_file_{attempt}")
take_key = f"import_take_file_values_{attempt}"


def _validated(upload) -> list:
    """Return the file's rows validated (checked once per uploaded file), or raise ImportRefused."""
    checked = st.session_state.get("import_checked")
    if checked and checked[0] == upload.file_id:
        return checked[1]
    table = actions.read_import_file(upload, upload.name)
    bar = st.progress(0.0, text=f"Checking {len(table):,} rows…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Checked {done:,} of {total:,} rows")

    try:
        entries = actions.check_import_rows(table, progress)
    finally:
        bar.empty()
    st.session_state["import_checked"] = (upload.file_id, entries, table.head(PREVIEW_ROWS))
    return entries


def _refused(refused: ImportRefused) -> None:
    """Show why the file was refused, as a table of row, column, value and reason (a few problems also written out
    in full), and offer it as CSV."""
    problems = refused.table()
    st.error(
        f"Nothing was imported: {counted(len(problems), 'problem')} in {literal(upload.name)}. Correct "
        f"{'it' if len(problems) == 1 else 'them'} in the file and upload it again.", icon=":material/error:",
    )
    if len(problems) <= SPELLED_OUT:  # a few, read in full: a reason's advice comes at its end
        lines = [(f"Row {p.row}, {p.column}: " if p.row else "") + p.reason for p in refused.problems]
        st.markdown("\n".join(f"- {literal(line)}" for line in lines))
    whole_file = problems["row"] == 0  # a problem of the whole file has no row: its row cell is left empty
    st.dataframe(problems.assign(row=problems["row"].astype(object).where(~whole_file, "")), hide_index=True,
                 placeholder="", key="import_problems")
    st.download_button(
        "Download the problems (CSV)", actions.problems_csv(problems), mime="text/csv",
        file_name="problems.csv", on_click="ignore", icon=":material/download:", key="import_problems_csv",
    )


def _changes(plan: ImportResult) -> None:
    """List every value the file changes: plain updates, then sessions corrected in the app since their import."""
    table = plan.changes_table()
    updates = table[~table["conflict"]]
    if not updates.empty:
        st.markdown(f"**{counted(updates['row'].nunique(), 'stored session')} the file changes**, value by value:")
        st.dataframe(updates[list(CHANGE_COLUMNS)].rename(columns=CHANGE_COLUMNS), hide_index=True, placeholder="",
                     key="import_updates")
    conflicts = plan.conflicting_sessions()
    if conflicts:
        st.warning(
            f"{counted(len(conflicts), 'session')} of this file {'was' if len(conflicts) == 1 else 'were'} corrected "
            f"in the app after {'it was' if len(conflicts) == 1 else 'they were'} imported. The file would undo "
            "those corrections, so they are kept as corrected unless you pick the file's values below.",
            icon=":material/warning:",
        )
        shown = table[table["conflict"]]
        st.dataframe(shown[list(CHANGE_COLUMNS)].rename(columns=CHANGE_COLUMNS), hide_index=True, placeholder="",
                     key="import_conflicts")
        labels = {sid: f"Row {changes[0].row}: {changes[0].patient_id} on {changes[0].session_date}"
                  for sid, changes in conflicts.items()}
        st.multiselect("Take the file's values instead of the corrections for", options=list(labels),
                       format_func=labels.get, key=take_key, placeholder="None: keep every correction")


if upload is not None:
    try:
        entries = _validated(upload)
        reports = actions.report_sheets(upload, upload.name)
        if reports:
            st.info(f"This workbook's patient reports ({', '.join(reports)}) are not imported on this page, only "
                    "its sessions. An admin imports the whole workbook with `python -m db import FILE.xlsx`.",
                    icon=":material/info:")
        chosen = set(st.session_state.get(take_key) or [])
        plan = actions.preview_import(actor, entries, chosen)
    except ImportRefused as refused:
        _refused(refused)
    else:
        st.header("Preview")
        new, updated, unchanged, conflicted, deleted = st.columns(5)
        new.metric("New sessions", plan.inserted)
        updated.metric("Updated", plan.updated, help="Sessions already stored whose values the file corrects.")
        unchanged.metric("Unchanged", plan.unchanged)
        conflicted.metric("Kept as corrected", plan.conflicts,
                          help="Sessions corrected in the app since their import: the file's values are not taken.")
        deleted.metric("Left deleted", plan.deleted, help="Rows matching sessions deleted in the app: not restored.")
        if plan.new_patients or plan.new_clinicians:
            clinicians = ", ".join(plan.new_clinicians)
            st.info(f"{plan.new_patients} new patient(s)"
                    + (f"; new clinician accounts (no password until an admin sets one): {literal(clinicians)}"
                       if clinicians else "") + ".")
        _changes(plan)
        episode_preview.new_episodes(plan)
        episode_preview.new_baselines(plan)
        preview = st.session_state["import_checked"][2]
        st.caption(f"The first {min(len(entries), PREVIEW_ROWS)} of {len(entries):,} rows of {literal(upload.name)}:")
        st.dataframe(preview, hide_index=True, placeholder="", key="import_preview")
        if not plan.inserted + plan.updated:
            st.info("Nothing to import: every session in this file is already stored as it is"
                    + (", or kept as corrected in the app." if plan.conflicts else "."))
        else:
            parts = [counted(plan.inserted, "new session")] if plan.inserted else []
            parts += [counted(plan.updated, "update")] if plan.updated else []
            if st.button(f"Import {' and '.join(parts)}", type="primary", key="import_confirm"):
                try:
                    with st.spinner("Importing…"):
                        result = actions.import_sessions(actor, entries, upload.name, chosen)
                except ImportRefused as refused:  # the accounts changed since the preview
                    _refused(refused)
                    st.stop()
                st.session_state.pop("import_checked", None)
                st.session_state["import_attempt"] = attempt + 1
                st.session_state["import_done"] = f"Imported {literal(upload.name)}: {result.summary()}."
                st.rerun()

st.header("Export every session")
st.caption("The interchange file (CSV or Excel) imports back to identical data; the FHIR R4 Bundle is for "
           "registries and other systems (pseudonymous ids only, no notes). Every export is recorded in the audit "
           "trail.")

# Each file is built when its button is clicked: audited then, not on every view of the page.
csv_column, xlsx_column, json_column = st.columns(3)
csv_column.download_button("Sessions (CSV)", actions.export_sessions(actor, ".csv"), file_name="sessions.csv",
                           mime="text/csv", on_click="ignore", icon=":material/download:", key="export_csv")
xlsx_column.download_button(
    "Sessions (Excel)", actions.export_sessions(actor, ".xlsx"), file_name="sessions.xlsx", on_click="ignore",
    icon=":material/download:", mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    key="export_xlsx",
)
json_column.download_button("FHIR R4 Bundle (JSON)", actions.export_sessions(actor, ".json"),
                            file_name="sessions-fhir.json", mime="application/fhir+json", on_click="ignore",
                            icon=":material/download:", key="export_fhir")
