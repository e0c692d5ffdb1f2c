"""Tests that the Import page refuses a bad file, listing its problems, and previews a good one, then imports it."""

from __future__ import annotations

import io

import openpyxl
import pandas as pd
from sqlalchemy import text

from dashboard import actions
from dashboard.text import literal
from db.access import Actor
from db.engine import make_engine
from tests.app.conftest import session_count
from tests.db.factories import interchange_rows

GOOD = [
    dict(patient_id="N001", session_date="2025-06-02", technique="deep", pain_before="70", pain_after="60",
         side_effects="bruising:mild", condition="neck_pain", clinician="clin_new", muscles="upper_trapezius"),
    dict(patient_id="N001", session_date="2025-06-09", technique="deep", pain_before="50", condition="neck_pain"),
    dict(patient_id="N002", session_date="2025-06-03", technique="superficial", pain_scale="nrs_10", pain_before="6"),
]


def csv_bytes(rows: list[dict]) -> bytes:
    return interchange_rows(*rows).to_csv(index=False).encode("utf-8")


def open_import_page(app):
    app.switch_page("views/import_data.py").run()
    assert not app.exception, app.exception
    assert [t.value for t in app.title] == ["Import sessions"]
    return app


def upload(app, name: str, content: bytes, mime: str = "text/csv"):
    app.file_uploader(key="import_file_0").set_value((name, content, mime))
    app.run()
    assert not app.exception, app.exception
    return app


def audit_count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    engine.dispose()
    return count


def test_a_bad_file_shows_a_table_of_its_problems_and_writes_nothing(app, seeded_url):
    before, audited = session_count(seeded_url), audit_count(seeded_url)
    rows = [dict(r) for r in GOOD]
    rows[1]["pain_before"] = "150"  # file line 3
    rows[2]["session_date"] = "03/06/2025"  # file line 4: day-first, refused with a hint
    upload(open_import_page(app), "clinic.csv", csv_bytes(rows))
    assert "Nothing was imported: 2 problems" in app.error[0].value
    problems = app.dataframe[0].value  # the only table: the problems
    assert list(problems.columns) == ["row", "column", "value", "reason"]
    assert list(zip(problems["row"], problems["column"], problems["value"], strict=True)) == [
        (3, "pain_before", "150"), (4, "session_date", "03/06/2025")]
    assert "day-first" in problems["reason"].iloc[1]
    assert app.get("download_button")[0].label == "Download the problems (CSV)"
    assert not [b for b in app.button if b.key == "import_confirm"]
    assert session_count(seeded_url) == before and audit_count(seeded_url) == audited


def test_the_refusal_asks_to_correct_it_for_one_problem_and_them_for_several(app):
    rows = [dict(r) for r in GOOD]
    rows[1]["pain_before"] = "150"
    upload(open_import_page(app), "clinic.csv", csv_bytes(rows))
    assert [e.value for e in app.error] == [
        r"Nothing was imported: 1 problem in clinic\.csv. Correct it in the file and upload it again."]
    rows[2]["session_date"] = "03/06/2025"
    upload(app, "clinic.csv", csv_bytes(rows))
    assert [e.value for e in app.error] == [
        r"Nothing was imported: 2 problems in clinic\.csv. Correct them in the file and upload it again."]


def test_a_few_problems_are_also_written_out_in_full_above_the_table_that_cuts_them(app):
    semicolons = b"patient_id;session_date;technique;pain_before\nP1;2025-01-02;deep;60\n"
    upload(open_import_page(app), "clinic.csv", semicolons)
    [(row, reason)] = app.dataframe[0].value[["row", "reason"]].values.tolist()
    assert row == ""  # a problem of the whole file: no row 0
    assert "save it from the spreadsheet program" in reason  # the advice, at the end of a long reason
    assert any(m.value == f"- {literal(reason)}" for m in app.markdown)
    rows = [dict(r) for r in GOOD]
    rows[1]["pain_before"] = "150"  # file line 3
    upload(app, "clinic.csv", csv_bytes(rows))
    reason = app.dataframe[0].value["reason"].iloc[0]
    assert any(m.value == f"- {literal(f'Row 3, pain_before: {reason}')}" for m in app.markdown)


def test_excels_unicode_text_is_refused_in_one_line_naming_utf16_and_how_to_save_it(app):
    lines = ["patient_id\tsession_date\ttechnique\tpain_before", "P1\t2025-01-02\tdeep\t60"]
    upload(open_import_page(app), "clinic.csv", "".join(line + "\r\n" for line in lines).encode("utf-16"))
    [reason] = app.dataframe[0].value["reason"]
    assert "UTF-16" in reason and "'CSV UTF-8'" in reason and "no sessions" not in reason
    assert any(m.value == f"- {literal(reason)}" for m in app.markdown)


def test_a_good_file_is_previewed_with_counts_then_imported_on_confirm(app, seeded_url):
    before = session_count(seeded_url)
    upload(open_import_page(app), "clinic.csv", csv_bytes(GOOD))
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"New sessions": "3", "Updated": "0", "Unchanged": "0", "Kept as corrected": "0",
                       "Left deleted": "0"}
    assert "2 new patient(s)" in app.info[0].value and r"clin\_new" in app.info[0].value  # escaped markdown
    assert list(app.dataframe[0].value["patient_id"]) == ["N001", "N001", "N002"]
    assert session_count(seeded_url) == before, "the preview writes nothing"
    confirm = app.button(key="import_confirm")
    assert confirm.label == "Import 3 new sessions"
    confirm.click().run()
    assert not app.exception, app.exception
    assert app.success[0].value == r"Imported clinic\.csv: 3 added, 0 updated, 0 unchanged."
    assert session_count(seeded_url) == before + 3
    assert app.file_uploader(key="import_file_1").value is None  # a fresh uploader: the file is not offered again


def test_the_same_file_again_is_previewed_as_unchanged_with_nothing_to_import(app, seeded_url):
    upload(open_import_page(app), "clinic.csv", csv_bytes(GOOD))
    app.button(key="import_confirm").click().run()
    after = session_count(seeded_url)
    app.file_uploader(key="import_file_1").set_value(("clinic.csv", csv_bytes(GOOD), "text/csv"))
    app.run()
    assert {m.label: m.value for m in app.metric}["Unchanged"] == "3"
    assert "Nothing to import" in app.info[-1].value
    assert not [b for b in app.button if b.key == "import_confirm"]
    assert session_count(seeded_url) == after


def test_a_corrected_file_is_previewed_as_one_update_listing_the_changed_value(app, seeded_url):
    upload(open_import_page(app), "clinic.csv", csv_bytes(GOOD))
    app.button(key="import_confirm").click().run()
    corrected = [dict(r) for r in GOOD]
    corrected[1]["pain_before"] = "45"
    app.file_uploader(key="import_file_1").set_value(("clinic.csv", csv_bytes(corrected), "text/csv"))
    app.run()
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["New sessions"], metrics["Updated"], metrics["Unchanged"]) == ("0", "1", "2")
    [changes] = [d.value for d in app.dataframe if "In the file" in d.value.columns]
    assert changes.to_dict("records") == [{"Row": 3, "Patient": "N001", "Date": "2025-06-09",
                                           "Field": "pain_before", "Stored now": "50", "In the file": "45"}]
    assert app.button(key="import_confirm").label == "Import 1 update"


def test_an_excel_file_imports_too(app, seeded_url):
    before = session_count(seeded_url)
    book = openpyxl.Workbook()
    sheet = book.active
    frame = interchange_rows(*GOOD)
    sheet.append([f" {c.upper()} " for c in frame.columns])  # column names: any case, surrounding spaces
    for row in frame.itertuples(index=False):
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    upload(open_import_page(app), "clinic.xlsx", buffer.getvalue(),
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    app.button(key="import_confirm").click().run()
    assert session_count(seeded_url) == before + 3


def test_the_page_offers_csv_excel_and_fhir_exports_without_exporting_until_clicked(app, seeded_url):
    audited = audit_count(seeded_url)
    open_import_page(app)
    labels = {b.label for b in app.get("download_button")}
    assert {"Sessions (CSV)", "Sessions (Excel)", "FHIR R4 Bundle (JSON)"} <= labels
    assert audit_count(seeded_url) == audited, "nothing is exported (or audited) by viewing the page"


def test_an_admin_has_the_import_page_and_a_manager_does_not(as_role):
    admin = as_role("admin")
    open_import_page(admin)
    assert admin.file_uploader(key="import_file_0") is not None


def test_a_manager_cannot_open_the_import_page(as_role):
    manager = as_role("manager")
    try:
        manager.switch_page("views/import_data.py")
    except ValueError as refused:
        assert "Could not find a navigation page" in str(refused)
    else:
        raise AssertionError("a manager opened the import page")


def test_the_problems_download_is_the_problem_table_as_csv():
    # The page offers `ImportRefused.table()` as CSV: it reads back to the same table.
    from db import file_problems, file_validation

    rows = interchange_rows(dict(patient_id="X", session_date="2025-01-01", technique="acupuncture", pain_before="5"))
    try:
        file_validation.validate_rows(rows)
    except file_problems.ImportRefused as refused:
        table = refused.table()
    back = pd.read_csv(io.StringIO(table.to_csv(index=False)), dtype={"value": str})
    assert back.to_dict("records") == table.to_dict("records")


def test_an_upload_named_like_markdown_is_shown_as_typed(app, seeded_url):
    from dashboard.text import literal

    name = "[click me](https://evil.example) **now**_x_.csv"
    upload(open_import_page(app), name, csv_bytes(GOOD))
    assert any(literal(name) in caption.value for caption in app.caption)
    app.button(key="import_confirm").click().run()
    assert app.success[0].value == f"Imported {literal(name)}: 3 added, 0 updated, 0 unchanged."


def correct_pain_before(url: str, patient: str, day: str, value: float) -> int:
    """Correct a stored session in the app's own way (the Patient progress page's correction); return its id."""
    from sqlmodel import Session

    from db import corrections, queries
    from db.engine import write_session
    from db.validation import validate_session
    from tests.db.factories import ADMIN

    engine = make_engine(url)
    with Session(engine) as session:
        frame = queries.all_sessions(session, actor=ADMIN)
    row = frame[(frame["patient_id"] == patient) & (frame["session_date"].map(str) == day)].iloc[0]
    entry = validate_session({"patient_id": patient, "session_date": day, "technique": row["technique"],
                              "pain_before": value, "condition": row["condition"]})
    with write_session(engine) as session:
        corrections.correct_session(session, actor=ADMIN, session_id=int(row["session_id"]), entry=entry)
    engine.dispose()
    return int(row["session_id"])


def test_a_correction_made_in_the_app_is_kept_unless_the_file_value_is_picked(app, seeded_url):
    rows = [dict(r) for r in GOOD[1:2]]  # N001's second session: no side effects, no clinician
    upload(open_import_page(app), "clinic.csv", csv_bytes(rows))
    app.button(key="import_confirm").click().run()
    corrected = correct_pain_before(seeded_url, "N001", "2025-06-09", 45)
    app.file_uploader(key="import_file_1").set_value(("clinic.csv", csv_bytes(rows), "text/csv"))
    app.run()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Updated"], metrics["Kept as corrected"]) == ("0", "1")
    assert "corrected in the app after it was imported" in app.warning[0].value
    [conflicts] = [d.value for d in app.dataframe if "In the file" in d.value.columns]
    assert conflicts[["Row", "Field", "Stored now", "In the file"]].values.tolist() == [[2, "pain_before", "45", "50"]]
    assert not [b for b in app.button if b.key == "import_confirm"], "nothing to import while the correction is kept"
    assert app.multiselect(key="import_take_file_values_1").options == ["Row 2: N001 on 2025-06-09"]
    app.multiselect(key="import_take_file_values_1").set_value([corrected])
    app.run()
    assert app.button(key="import_confirm").label == "Import 1 update"
    app.button(key="import_confirm").click().run()
    assert not app.exception, app.exception
    assert "0 added, 1 updated" in app.success[0].value


def test_a_workbook_exported_with_patient_reports_imports_its_sessions_and_says_what_it_leaves(app, seeded_url):
    open_import_page(app)  # the page's "Sessions (Excel)" download builds this workbook when clicked
    workbook = actions.export_sessions(Actor(id=None, username="admin", role="admin"), ".xlsx")()
    assert openpyxl.load_workbook(io.BytesIO(workbook), read_only=True).sheetnames == ["sessions", "diary", "pgic",
                                                                                        "psfs"]
    upload(app, "clinic.xlsx", workbook, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert any("patient reports (diary, pgic, psfs) are not imported on this page" in i.value for i in app.info)
    assert app.get("metric")[0].value == "0"  # every session of the export is stored already: nothing new
