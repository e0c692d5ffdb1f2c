"""`python -m db summary --safety` and `--reached` against a recomputation from the imported file itself.

The expected tables come from tests/analytics/independent.py: the CSV's rows counted in plain Python, textbook
Garwood limits from scipy's χ², and a hand-written product-limit estimator with Greenwood's variance. Nothing of
analytics/ or db/ is used to build them; the CLI is run as a user runs it (import, then summary). The same check
on a generated file of 100,000 sessions takes about 40 s, so it is `python -m tests.db.summary_tables_at_scale`.
"""

from __future__ import annotations

import io

import pandas as pd

from db.cli import main
from tests.analytics import independent
from tests.db.factories import SAMPLE_FILE

SAFETY_COLUMNS = ["technique", "side_effect", "severity", "events", "sessions", "per_100_sessions", "ci95_low",
                  "ci95_high"]
REACHED_COLUMNS = ["technique", "threshold_pct", "session_number", "at_risk", "events", "reached", "ci95_low",
                   "ci95_high"]


def summary(capsys, url: str, option: str) -> str:
    capsys.readouterr()
    assert main(["--url", url, "summary", option]) == 0
    return capsys.readouterr().out


def check(out: str, expected: pd.DataFrame, columns: list[str], keys: list[str], counts: list[str],
          decimals: int) -> pd.DataFrame:
    """Assert the CLI's CSV matches its recomputation (see independent.csv_problems); return it."""
    assert independent.csv_problems(out, expected, columns, keys, counts, decimals) == []
    return pd.read_csv(io.StringIO(out))


def test_summary_safety_on_the_sample_data_equals_a_count_of_the_file(sample_url, capsys):
    expected = independent.safety_by_hand(independent.read_rows(SAMPLE_FILE))
    got = check(summary(capsys, sample_url, "--safety"), expected, SAFETY_COLUMNS,
                ["technique", "side_effect", "severity"], ["events", "sessions"], 2)
    rows = got.set_index(["technique", "side_effect", "severity"])
    # The figures the issue quotes: 3 significant in 1,571 sessions, 0.19 per 100; deep any mild 36.38 per 100.
    assert rows.loc[("all", "any", "significant"), ["events", "sessions", "per_100_sessions"]].tolist() == [
        3, 1571, 0.19]
    assert rows.loc[("deep", "any", "mild"), "per_100_sessions"] == 36.38
    assert rows.loc[("all", "any", "serious"), "events"] == 0  # always present, also at 0


def test_summary_reached_on_the_sample_data_equals_a_textbook_kaplan_meier_of_the_file(sample_url, capsys):
    episodes = independent.episodes_from_rows(independent.read_rows(SAMPLE_FILE))
    expected = independent.reached_by_technique(episodes)
    got = check(summary(capsys, sample_url, "--reached"), expected, REACHED_COLUMNS,
                ["technique", "threshold_pct", "session_number"], ["at_risk", "events"], 4)
    assert set(got["threshold_pct"]) == {15, 30, 50} and got["session_number"].min() == 2
