"""`python -m db summary --stricta` on the seeded sample data equals a count made here, independently, with plain
Python over sample_data/sessions.csv (docs/DESIGN.md section 5): the import, the read and the table together."""

from __future__ import annotations

import csv
import io
import statistics

import pytest

from db.cli import main
from tests.db.factories import SAMPLE_FILE

ITEMS = ["insertions", "side", "depth_mm", "needle_diameter_mm", "needle_length_mm", "twitch_count", "retention_s",
         "manipulation", "estim_hz", "estim_pulse_us", "estim_ma", "estim_minutes", "adjuncts"]
CODES = {"side": ["left", "right", "bilateral", "midline"],
         "manipulation": ["none", "pistoning", "rotation", "pistoning_rotation"],
         "adjuncts": ["cold_spray", "massage", "stretching", "exercise", "heat", "other", "none"]}


def number(value: float) -> str:
    return f"{round(value, 2):g}"


def expected_table() -> list[dict[str, str]]:
    """Count the sample file's needling record per technique (and all) and item, as the contract defines it."""
    with SAMPLE_FILE.open(encoding="utf-8", newline="") as file:
        sessions = list(csv.DictReader(file))
    groups = {technique: [s for s in sessions if s["technique"] == technique]
              for technique in {s["technique"] for s in sessions}} | {"all": sessions}
    rows = []
    for technique in sorted(groups):
        for item in ITEMS:
            applies = [s for s in groups[technique] if not item.startswith("estim_") or s["technique"] == "electrical"]
            if not applies:
                continue
            cells = [s[item] for s in applies if s[item] != ""]
            if not cells:
                words = ""
            elif item in CODES:
                named = [cell.split(";") for cell in cells]
                counts = [(code, sum(code in codes for codes in named)) for code in CODES[item]]
                words = "; ".join(f"{code} {100 * n / len(cells):.1f}%" for code, n in counts if n)
            else:
                values = sorted(float(cell) for cell in cells)
                q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
                words = f"{number(median)} ({number(q1)}–{number(q3)})"
            rows.append({"technique": technique, "item": item, "applicable_sessions": str(len(applies)),
                         "reported_sessions": str(len(cells)),
                         "completeness": f"{round(len(cells) / len(applies), 4):g}", "distribution": words})
    return rows


@pytest.fixture
def seeded(database_url):
    assert main(["--url", database_url, "import", str(SAMPLE_FILE)]) == 0
    return database_url


def test_summary_stricta_on_the_sample_data_is_the_independent_count(seeded, capsys):
    capsys.readouterr()
    assert main(["--url", seeded, "summary", "--stricta"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "technique,item,applicable_sessions,reported_sessions,completeness,distribution"
    table = list(csv.DictReader(io.StringIO(printed)))
    expected = expected_table()
    assert [(row["technique"], row["item"]) for row in table] == [(row["technique"], row["item"]) for row in expected]
    for row, wanted in zip(table, expected, strict=True):
        assert {**row, "completeness": f"{float(row['completeness']):g}"} == wanted
    # What the table says of the sample: every technique, the estim_* items for electrical sessions only.
    assert {row["technique"] for row in table} == {"all", "deep", "electrical", "superficial"}
    assert not [row for row in table if row["technique"] in ("deep", "superficial") and row["item"][:6] == "estim_"]
