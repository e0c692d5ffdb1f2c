"""`python -m db summary --responders / --reached` with `--mcid-points` and `--min-baseline`: the responder rule on
two criteria, set on the command line; the same tables as before at the defaults (issue #14)."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.db.factories import record
from tests.db.test_cli import run

# Three deep-needling episodes of two sessions, first and last pain on 0–100 (hand figures):
# P1 30 -> 15: 15 points, 50 %, below the 40 baseline and under 20 points: not a responder by default;
# P2 80 -> 40: 40 points, 50 %: a responder at 15, 30 and 50 %;
# P3 30 -> 5: 25 points, 83.3 %: below 40 but 20 points or more, a responder.
EPISODES = {"P1": (30, 15), "P2": (80, 40), "P3": (30, 5)}


@pytest.fixture
def url(database_url, engine) -> str:
    for patient, (first, last) in EPISODES.items():
        record(engine, patient_id=patient, session_date="2025-03-03", pain_before=first)
        record(engine, patient_id=patient, session_date="2025-03-10", pain_before=last)
    return database_url


def table(capsys, *args: str) -> pd.DataFrame:
    status, out, err = run(capsys, *args)
    assert status == 0, err
    return pd.read_csv(io.StringIO(out))


def responders_at_30(frame: pd.DataFrame) -> int:
    return int(frame.loc[frame["threshold_pct"] == 30, "responders"].iloc[0])


@pytest.mark.parametrize(("options", "responders"), [
    ((), 2),  # P2, P3
    (("--mcid-points", "10"), 3),  # P1's 15 points now count
    (("--min-baseline", "30"), 3),  # P1's first pain of 30 is no longer below the minimum: percent alone
    (("--mcid-points", "30"), 1),  # P3's 25 points no longer count
])
def test_the_responder_table_classifies_by_the_points_and_baseline_given(capsys, url, options, responders):
    frame = table(capsys, "--url", url, "summary", "--responders", *options)
    assert responders_at_30(frame) == responders
    assert frame.loc[frame["threshold_pct"] == 30, "share"].iloc[0] == round(responders / 3, 4)


def test_the_reached_table_classifies_by_the_points_given(capsys, url):
    def reached_by_2(*options: str) -> float:
        frame = table(capsys, "--url", url, "summary", "--reached", *options)
        return frame.loc[(frame["threshold_pct"] == 30) & (frame["session_number"] == 2), "reached"].iloc[0]

    assert reached_by_2() == round(2 / 3, 4)
    assert reached_by_2("--mcid-points", "10") == 1.0


@pytest.mark.parametrize("kind", ["--responders", "--reached"])
def test_the_defaults_given_print_exactly_the_table_without_them(capsys, url, kind):
    plain = run(capsys, "--url", url, "summary", kind)
    given = run(capsys, "--url", url, "summary", kind, "--mcid-points", "20", "--min-baseline", "40")
    assert plain == given and plain[0] == 0


@pytest.mark.parametrize(("options", "reason"), [
    (("--mcid-points", "150", "--responders"), "--mcid-points: 150 is not a number of points from 0 to 100"),
    (("--min-baseline", "nan", "--reached"), "--min-baseline: nan is not a number of points from 0 to 100"),
    (("--mcid-points", "10"), "--mcid-points: the responder rule applies to --responders and --reached"),
])
def test_a_rule_out_of_range_or_without_its_table_exits_1_in_one_line(capsys, url, options, reason):
    status, out, err = run(capsys, "--url", url, "summary", *options)
    assert (status, out, err) == (1, "", f"error: {reason}\n")
