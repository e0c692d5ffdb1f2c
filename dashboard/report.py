"""The patient's report for their GP: one course of treatment as a self-contained HTML page (the PDF: pdf_report).

Pure builders: one episode's rows from `analytics.outcomes.cumulative_improvement` and its side effects (one row
each) in, a document out. No Streamlit, no SQL; `dashboard.actions.gp_report` wraps a builder for a download
button, recording the export in the audit trail when the report is built. The report holds the progress chart,
the plain-language summary, every session's pain scores and the side effects; never the clinicians' notes. The
HTML carries plotly.js inline, so the chart works offline and the file can be mailed or opened years later; the
PDF (`dashboard.pdf_report`) draws its own chart with fpdf2 (no browser needed).
"""

from __future__ import annotations

import html
from datetime import date

import pandas as pd

from analytics.outcomes import progress_sentence
from clinic.side_effects import Pair, describe
from clinic.vocabulary import MINIMAL_PCT, MODERATE_PCT, SIDE_EFFECTS, SUBSTANTIAL_PCT, TECHNIQUE_LABELS
from dashboard import charts

TITLE = "Dry-needling progress report"
SCALE_WORDS = {"vas_100": "mm (VAS 0–100)", "nrs_10": "/ 10 (NRS)"}
EXPLANATION = (
    "Pain is recorded before each session on a 0–100 mm visual analogue scale (VAS) or a 0–10 numeric rating scale "
    "(NRS); both are shown here on the 0–100 scale (NRS × 10). Improvement compares the pain before each session "
    f"with the pain before the first session. By the IMMPACT recommendations (Dworkin et al., J Pain 2008), a "
    f"{MINIMAL_PCT} % reduction is minimal, {MODERATE_PCT} % moderately important and {SUBSTANTIAL_PCT} % "
    "substantial. Side-effect severity: mild (short, reversible), significant (needed medical care or stopped "
    "normal activities), serious (hospital admission, lasting harm or death)."
)


def _number(value, digits: int = 0) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def _as_recorded(value, scale: str) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{float(value):g} {SCALE_WORDS.get(scale, scale)}"


def effects_by_session(side_effects: pd.DataFrame) -> dict[int, list[Pair]]:
    """Return tidy side-effect rows (`session_id, code, severity`) as each session's (code, severity) pairs."""
    pairs: dict[int, list[Pair]] = {}
    for session_id, code, severity in side_effects[["session_id", "code", "severity"]].itertuples(index=False):
        pairs.setdefault(int(session_id), []).append((code, severity))
    return pairs


def session_rows(improvement: pd.DataFrame, side_effects: pd.DataFrame) -> pd.DataFrame:
    """Return the report's table: one row per session, text cells, no notes."""
    effects = effects_by_session(side_effects)
    return pd.DataFrame(
        {
            "Session": improvement["session_number"].astype(int).astype(str),
            "Date": improvement["session_date"].astype(str),
            "Technique": improvement["technique"].map(lambda t: TECHNIQUE_LABELS.get(t, t)),
            "Pain before (as recorded)": [
                _as_recorded(v, s) for v, s in zip(improvement["pain_before"], improvement["pain_scale"], strict=True)
            ],
            "Pain before (0–100)": improvement["pain_before_points"].map(_number),
            "Pain right after (0–100)": improvement["pain_after_points"].map(_number)
            if "pain_after_points" in improvement else "—",
            "Change since first session": [
                f"{_number(points)} points" + ("" if pd.isna(pct) else f", {_number(pct)} %")
                for points, pct in zip(improvement["improvement_points"], improvement["improvement_pct"], strict=True)
            ],
            "Side effects": [describe(effects.get(int(i), ())) for i in improvement["session_id"]],
        }
    )


def side_effect_rows(improvement: pd.DataFrame, side_effects: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Return every side effect of the course as (date, side effect, severity), in session order."""
    effects = effects_by_session(side_effects)
    return [
        (str(day), SIDE_EFFECTS.get(code, code), severity)
        for day, session_id in zip(improvement["session_date"], improvement["session_id"], strict=True)
        for code, severity in effects.get(int(session_id), ())
    ]


def course_heading(patient_id: str, condition: str | None) -> tuple[str, str]:
    course = (condition or "unspecified condition").replace("_", " ")
    return f"Patient {patient_id}", f"Course of treatment: {course}"


def report_html(
    improvement: pd.DataFrame, side_effects: pd.DataFrame, *, patient_id: str, condition: str | None,
    generated: date | None = None,
) -> str:
    """Return the report as one self-contained HTML page (plotly.js inline: the chart works offline)."""
    e = html.escape
    who, course = course_heading(patient_id, condition)
    generated = generated or date.today()
    figure = charts.patient_progress_figure(improvement).to_html(
        full_html=False, include_plotlyjs=True, config={"displaylogo": False, "responsive": True}
    )
    table = session_rows(improvement, side_effects)
    head = "".join(f"<th scope='col'>{e(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in table.itertuples(index=False)
    )
    effects = side_effect_rows(improvement, side_effects)
    effects_html = (
        "<ul>" + "".join(f"<li>{e(day)}: {e(label)} ({e(severity)})</li>" for day, label, severity in effects) + "</ul>"
        if effects else "<p>No side effects were recorded.</p>"
    )
    first, last = improvement["session_date"].iloc[0], improvement["session_date"].iloc[-1]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(TITLE)} — {e(patient_id)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }}
h1 {{ font-size: 1.6rem; margin-bottom: 0.2rem; }}
.summary {{ background: #eef5fb; border-left: 4px solid #0072B2; padding: 0.8rem 1rem; font-size: 1.15rem; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td:nth-child(2) {{ white-space: nowrap; }}
.meta, .note {{ color: #555; }}
@media print {{ .plotly-graph-div {{ break-inside: avoid; }} }}
</style>
</head>
<body>
<h1>{e(TITLE)}</h1>
<p class="meta">{e(who)} · {e(course)} · {len(improvement)} sessions from {e(str(first))} to {e(str(last))} ·
generated {e(generated.isoformat())}</p>
<h2>Summary</h2>
<p class="summary">{e(progress_sentence(improvement))}</p>
<h2>Pain and improvement by session</h2>
{figure}
<h2>Sessions</h2>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Side effects</h2>
{effects_html}
<h2>How to read this report</h2>
<p class="note">{e(EXPLANATION)}</p>
</body>
</html>
"""


def report_filename(patient_id: str, condition: str | None, suffix: str) -> str:
    """Return a file name for the report, e.g. `progress-P0002-neck_pain.pdf`."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{patient_id}-{condition or 'course'}")
    return f"progress-{safe}.{suffix}"
