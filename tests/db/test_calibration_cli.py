"""`python -m db summary --calibration` (docs/DESIGN.md §5) on every backend: the contract's columns, computed from
the database as analytics.expected_recovery computes them from the imported file itself.

How well the bands are calibrated is tests/analytics/test_expected_recovery.py's question; this one asks that the
command prints that table, exactly, from what the database holds.
"""

from __future__ import annotations

import pytest

from analytics import recovery_calibration
from bench.calibration import improvement_of
from db.cli import main
from tests.analytics import independent
from tests.db.factories import SAMPLE_FILE, another_database

HEADER = "condition,technique,episodes,observations,coverage_50,coverage_80"


def calibration(capsys, url: str) -> str:
    capsys.readouterr()
    assert main(["--url", url, "summary", "--calibration"]) == 0
    return capsys.readouterr().out


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    with another_database(request, request.param, tmp_path) as url:
        yield url


def test_summary_calibration_of_the_sample_data_is_the_held_out_coverage_of_the_imported_file(empty_url, capsys):
    assert main(["--url", empty_url, "import", str(SAMPLE_FILE)]) == 0
    out = calibration(capsys, empty_url)
    expected = recovery_calibration.calibration_table(improvement_of(independent.read_rows(SAMPLE_FILE)))
    assert out == expected.to_csv(index=False, lineterminator="\n")
    lines = out.splitlines()
    assert lines[0] == HEADER
    assert lines[1].startswith("all,all,52,181,0.4972,0.7901")  # all/all sorts first; 4 decimals
    assert len(lines) > 10  # a row per condition and technique with held-out episodes


def test_summary_calibration_of_an_empty_database_is_the_all_row_with_nothing_tested(empty_url, capsys):
    assert calibration(capsys, empty_url) == f"{HEADER}\nall,all,0,0,,\n"
