"""The GP report as a PDF (A4), drawn with fpdf2 (no browser needed): what `dashboard.report` builds as HTML.

A module of its own so that fpdf2 (about 26 MB and 0.4 s of imports) is loaded only when a PDF is asked for
(`dashboard.actions.gp_report`), not by every server at its first page.
"""

from __future__ import annotations

import unicodedata
from datetime import date

import pandas as pd
from fpdf import FPDF, FontFace

from analytics.outcomes import progress_sentence
from dashboard.report import EXPLANATION, TITLE, course_heading, session_rows, side_effect_rows

_PDF_TEXT = str.maketrans({"–": "-", "—": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "×": "x", "≥": ">=",
                           "·": "-", "…": "...", "\u00a0": " "})
BLUE, LIGHT_BLUE, GREY = (0, 114, 178), (86, 180, 233), (120, 120, 120)


def _latin(text: str) -> str:
    """Return text the PDF's built-in fonts can show (Latin-1): punctuation mapped, accents kept or dropped."""
    text = str(text).translate(_PDF_TEXT)
    if all(ord(c) < 256 for c in text):
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("latin-1", "replace").decode("latin-1")


class _Report(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("helvetica", size=8)
        self.set_text_color(*GREY)
        self.cell(0, 5, _latin(f"{TITLE} - page {self.page_no()}/{{nb}}"), align="C")


def _pdf_chart(pdf: FPDF, improvement: pd.DataFrame) -> None:
    """Draw pain before (line) and right after (diamonds) each session on the 0–100 scale."""
    left, top, width, height = pdf.l_margin + 12, pdf.get_y() + 4, pdf.epw - 16, 60
    sessions = list(improvement["session_number"].astype(int))
    n = max(len(sessions), 2)

    def x(i: int) -> float:
        return left + width * (i + 0.5) / n

    def y(points: float) -> float:
        return top + height * (1 - max(0.0, min(100.0, float(points))) / 100)

    pdf.set_font("helvetica", size=8)
    pdf.set_draw_color(210, 210, 210)
    pdf.set_text_color(*GREY)
    for level in (0, 25, 50, 75, 100):
        pdf.line(left, y(level), left + width, y(level))
        pdf.text(left - 8, y(level) + 1, str(level))
    for i, k in enumerate(sessions):
        pdf.text(x(i) - 1, top + height + 5, str(k))
    pdf.text(left + width / 2 - 6, top + height + 10, "Session")
    pdf.set_draw_color(*BLUE)
    pdf.set_fill_color(*BLUE)
    pdf.set_line_width(0.8)
    before = list(improvement["pain_before_points"])
    for i in range(1, len(before)):
        pdf.line(x(i - 1), y(before[i - 1]), x(i), y(before[i]))
    for i, value in enumerate(before):
        pdf.circle(x=x(i), y=y(value), radius=1.2, style="F")
    pdf.set_line_width(0.4)
    pdf.set_draw_color(*LIGHT_BLUE)
    after = list(improvement["pain_after_points"]) if "pain_after_points" in improvement else []
    for i, value in enumerate(after):
        if not pd.isna(value):
            cx, cy = x(i), y(value)
            pdf.polygon([(cx, cy - 1.6), (cx + 1.6, cy), (cx, cy + 1.6), (cx - 1.6, cy)], style="D")
    legend_y = top + height + 15
    pdf.set_fill_color(*BLUE)
    pdf.circle(x=left + 2, y=legend_y - 1, radius=1.2, style="F")
    pdf.set_text_color(0, 0, 0)
    pdf.text(left + 5, legend_y, "Pain before the session (0-100)")
    pdf.set_draw_color(*LIGHT_BLUE)
    cx, cy = left + 62, legend_y - 1
    pdf.polygon([(cx, cy - 1.6), (cx + 1.6, cy), (cx, cy + 1.6), (cx - 1.6, cy)], style="D")
    pdf.text(cx + 3, legend_y, "Pain right after (0-100)")
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_y(legend_y + 4)


def report_pdf(
    improvement: pd.DataFrame, side_effects: pd.DataFrame, *, patient_id: str, condition: str | None,
    generated: date | None = None,
) -> bytes:
    """Return the report as a PDF (A4): summary, chart, sessions, side effects and how to read them."""
    who, course = course_heading(patient_id, condition)
    generated = generated or date.today()
    pdf = _Report(format="A4")
    pdf.set_title(_latin(f"{TITLE} - {patient_id}"))
    pdf.set_creator("Needle Outcomes")
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 9, _latin(TITLE), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    pdf.set_text_color(*GREY)
    first, last = improvement["session_date"].iloc[0], improvement["session_date"].iloc[-1]
    pdf.multi_cell(0, 5, _latin(f"{who} - {course} - {len(improvement)} sessions from {first} to {last} - "
                                f"generated {generated.isoformat()}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 12)
    pdf.set_fill_color(238, 245, 251)
    pdf.multi_cell(0, 7, _latin(progress_sentence(improvement)), fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 7, "Pain by session", new_x="LMARGIN", new_y="NEXT")
    _pdf_chart(pdf, improvement)
    pdf.ln(2)
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 7, "Sessions", new_x="LMARGIN", new_y="NEXT")
    table = session_rows(improvement, side_effects).drop(columns=["Pain before (as recorded)"])
    pdf.set_font("helvetica", size=8)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(180, 180, 180)
    headings = FontFace(emphasis="BOLD", fill_color=(243, 243, 243))
    with pdf.table(col_widths=(12, 17, 26, 15, 15, 24, 31), text_align="LEFT", line_height=4.5,
                   headings_style=headings) as grid:
        grid.row([_latin(c) for c in table.columns])
        for row in table.itertuples(index=False):
            grid.row([_latin(str(v)) for v in row])
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 7, "Side effects", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    effects = side_effect_rows(improvement, side_effects)
    lines = [f"{day}: {label} ({severity})" for day, label, severity in effects] or ["No side effects were recorded."]
    for line in lines:
        pdf.multi_cell(0, 5, _latin(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 7, "How to read this report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    pdf.multi_cell(0, 4.5, _latin(EXPLANATION), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
