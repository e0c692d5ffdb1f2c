"""Tests that the GP report is self-contained, says the summary, escapes every value and leaves notes out; PDF too."""

from __future__ import annotations

import re
import zlib
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from analytics.outcomes import cumulative_improvement, progress_sentence
from dashboard import pdf_report, report
from db.engine import make_engine
from tests.app.conftest import downloaded

SCRIPT_ID = '<script>alert("id")</script>'
SCRIPT_NOTE = '<script>alert("note")</script>'


@pytest.fixture
def improvement() -> pd.DataFrame:
    """Return one course of four sessions, mixed scales, a side effect, and notes that must never be shown."""
    sessions = pd.DataFrame(
        {
            "session_id": [1, 2, 3, 4],
            "episode_id": [7, 7, 7, 7],
            "session_number": [1, 2, 3, 4],
            "session_date": [date(2025, 3, 1), date(2025, 3, 8), date(2025, 3, 15), date(2025, 3, 22)],
            "technique": ["deep", "deep", "electrical", "deep"],
            "pain_scale": ["vas_100", "vas_100", "nrs_10", "vas_100"],
            "pain_before": [80.0, 60.0, 5.0, 36.0],
            "pain_after": [70.0, None, 4.0, 30.0],
            "notes": [SCRIPT_NOTE, "Patient’s GP (Dr Šimůnek) informed", "", "private remark"],
            "patient_id": ["P1"] * 4,
        }
    )
    return cumulative_improvement(sessions)


@pytest.fixture
def side_effects() -> pd.DataFrame:
    """Return the course's side effects, one row each: two at the first session, one at the third."""
    return pd.DataFrame({"session_id": [1, 1, 3], "code": ["bruising", "soreness", "faintness"],
                         "severity": ["mild", "mild", "significant"]})


def pdf_text(pdf: bytes) -> str:
    """Return the text drawn in a PDF's (Flate-compressed or plain) content streams."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            chunks.append(zlib.decompress(stream))
        except zlib.error:
            chunks.append(stream)
    return b"\n".join(chunks).decode("latin-1")


def test_the_html_report_holds_the_summary_sentence_sessions_and_side_effects(improvement, side_effects):
    page = report.report_html(improvement, side_effects, patient_id="P1", condition="neck_pain",
                              generated=date(2025, 4, 1))
    sentence = progress_sentence(improvement)
    assert sentence == "Your pain is 55 % lower than at your first session. That is a substantial improvement."
    assert sentence in page
    assert "Patient P1" in page and "neck pain" in page and "generated 2025-04-01" in page
    assert "Bruising (mild)" in page and "Faintness (no loss of consciousness) (significant)" in page
    assert "<td>bruising (mild), post-needling soreness (mild)</td>" in page  # each session's own, in the table
    assert page.count("<td>none</td>") == 2
    assert "5 / 10 (NRS)" in page and "80 mm (VAS 0–100)" in page  # as recorded, with the scale


def test_the_html_report_carries_plotly_inline_and_loads_nothing_from_the_network(improvement, side_effects):
    page = report.report_html(improvement, side_effects, patient_id="P1", condition=None)
    assert "Plotly.newPlot" in page
    assert len(page) > 1_000_000, "plotly.js itself is in the page"
    assert not re.search(r"<script[^>]*\bsrc=", page, re.I)
    assert not re.search(r"<link[^>]*\bhref=\s*[\"']?https?:", page, re.I)


def test_the_html_report_escapes_every_value_and_leaves_notes_out(improvement, side_effects):
    page = report.report_html(improvement, side_effects, patient_id=SCRIPT_ID, condition="<b>bold</b>")
    assert SCRIPT_ID not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;" in page
    assert "alert(\"note\")" not in page and "alert(&quot;note&quot;)" not in page
    assert "Šimůnek" not in page and "private remark" not in page


def test_the_pdf_report_is_a_pdf_with_the_summary_and_without_notes(improvement, side_effects):
    pdf = pdf_report.report_pdf(improvement, side_effects, patient_id="P1", condition="neck_pain",
                                generated=date(2025, 4, 1))
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert "Your pain is 55 % lower than at your first session." in text
    assert "Faintness" in text and "Patient P1" in text
    assert "alert" not in text
    assert "private remark" not in text and "imunek" not in text


def test_the_pdf_report_survives_text_its_fonts_cannot_show(improvement, side_effects):
    pdf = pdf_report.report_pdf(improvement, side_effects, patient_id="Pš–1", condition="other")
    assert pdf.startswith(b"%PDF") and "Ps-1" in pdf_text(pdf)


def test_a_single_session_course_still_makes_both_reports(improvement, side_effects):
    first = improvement.head(1)
    assert "This was the first session" in report.report_html(first, side_effects, patient_id="P1", condition=None)
    assert pdf_report.report_pdf(first, side_effects, patient_id="P1", condition=None).startswith(b"%PDF")


def test_report_file_names_are_safe():
    assert report.report_filename("P 1/..", "neck_pain", "pdf") == "progress-P_1___-neck_pain.pdf"


def test_the_progress_page_offers_the_patient_both_reports(as_role):
    app = as_role("patient")
    assert not app.exception
    labels = [b.label for b in app.get("download_button")]
    assert "Report for my GP (HTML)" in labels and "Report for my GP (PDF)" in labels


def test_the_progress_page_offers_a_clinician_both_reports_for_the_course_shown(app):
    app.switch_page("views/patient_progress.py").run()
    assert not app.exception
    labels = [b.label for b in app.get("download_button")]
    assert "Report for the patient's GP (HTML)" in labels and "Report for the patient's GP (PDF)" in labels


# -- every report handed over is an export in the audit trail ---------------------------------------------------------


def exports(url: str, actor: str) -> list[tuple]:
    """Return (entity, entity id, detail) of every export audited for `actor`, oldest first."""
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT entity, entity_id, detail FROM audit_log WHERE actor = :a AND action = 'export' ORDER BY id"
        ), {"a": actor}).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def patient_record_id(url: str, pseudonym: str) -> int:
    engine = make_engine(url)
    with engine.connect() as connection:
        found = connection.execute(text("SELECT id FROM patients WHERE pseudonym = :p"), {"p": pseudonym}).scalar()
    engine.dispose()
    return found


def test_a_patients_gp_report_download_is_audited_as_an_export_of_their_record(as_role, seeded_url):
    app = as_role("patient")
    assert exports(seeded_url, "patient") == []  # showing the page builds and audits nothing
    pdf = downloaded(app, "report_pdf")
    assert pdf.startswith(b"%PDF")
    [(entity, entity_id, detail)] = exports(seeded_url, "patient")
    assert (entity, entity_id) == ("patient", patient_record_id(seeded_url, "P0002"))
    assert detail.startswith("GP report (PDF): ") and detail.endswith(" sessions")


def test_a_clinicians_gp_report_downloads_are_each_audited_with_the_patient_shown(app, seeded_url):
    app.switch_page("views/patient_progress.py").run()
    app.selectbox(key="progress_patient").select("P0003").run()
    assert not app.exception, app.exception
    page = downloaded(app, "report_html").decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Patient P0003" in page
    downloaded(app, "report_pdf")
    patient = patient_record_id(seeded_url, "P0003")
    audited = exports(seeded_url, "clin_ahmed")
    assert [(entity, entity_id) for entity, entity_id, _ in audited] == [("patient", patient)] * 2
    assert [detail.split(":")[0] for _, _, detail in audited] == ["GP report (HTML)", "GP report (PDF)"]


def test_a_gp_report_of_another_kind_is_refused_before_anything_is_built_or_audited(improvement, side_effects):
    from dashboard import actions
    from tests.db.factories import ADMIN

    with pytest.raises(ValueError, match="kind must be html or pdf, not 'docx'"):
        actions.gp_report("docx", improvement, side_effects, actor=ADMIN, patient=1, patient_id="P1",
                          condition=None)
