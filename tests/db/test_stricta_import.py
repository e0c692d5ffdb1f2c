"""The import's fast path takes the needling record's cells exactly as SessionInput does (issue #16): the same
sessions, or the same problems, for any file, its rules between fields (stimulation on electrical sessions only, a
twitch count agreeing with the twitch answer) included."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db import file_validation
from tests.db.test_import_fast_path import BAD, GOOD, cells, outcome, without_fast_path

NEEDLING_GOOD = {
    "insertions": ("", "1", "12", "500"),
    "side": ("", "left", "midline"),
    "depth_mm": ("", "0", "25", "32.5"),
    "needle_diameter_mm": ("", "0.1", "0.25"),
    "needle_length_mm": ("", "30", "150"),
    "twitch_count": ("", "0", "3"),
    "retention_s": ("", "0", "600"),
    "manipulation": ("", "none", "pistoning_rotation"),
    "estim_hz": ("", "2", "0.1"),
    "estim_pulse_us": ("", "250"),
    "estim_ma": ("", "7.5", "0"),
    "estim_minutes": ("", "15"),
    "adjuncts": ("", "none", "massage", "cold_spray;stretching", " heat ; exercise "),
}
NEEDLING_BAD = {
    "insertions": ("0", "501", "2.5", "x", "1e1"),
    "side": ("up", "LEFT"),
    "depth_mm": ("-1", "150.01", "nan"),
    "needle_diameter_mm": ("0.05", "1"),
    "needle_length_mm": ("4.9",),
    "twitch_count": ("-1", "201", "3.0"),
    "retention_s": ("7201", "0.5"),
    "manipulation": ("twist",),
    "estim_hz": ("0", "inf"),
    "estim_pulse_us": ("9.99",),
    "estim_ma": ("60.5",),
    "estim_minutes": ("0",),
    "adjuncts": ("yoga", "none;heat", "heat;heat", ";"),
}
COLUMNS = [*GOOD, *NEEDLING_GOOD]
plain = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in (GOOD | NEEDLING_GOOD).items()})
odd = st.fixed_dictionaries({name: cells(*GOOD[name], bad=BAD[name]) for name in GOOD}
                            | {name: cells(*NEEDLING_GOOD[name], bad=NEEDLING_BAD[name]) for name in NEEDLING_GOOD})
files = st.lists(st.one_of(plain, plain, odd), min_size=1, max_size=6).map(lambda r: pd.DataFrame(r, columns=COLUMNS))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(table=files)
def test_the_fast_path_takes_the_needling_record_as_sessionInput_does_for_any_file(table):
    fast = outcome(table)
    with pytest.MonkeyPatch.context() as monkeypatch:
        without_fast_path(monkeypatch)
        slow = outcome(table)
    assert fast == slow


def test_a_plain_file_s_rows_take_the_fast_path_and_a_count_alone_answers_the_twitch(monkeypatch):
    rows = pd.DataFrame([{"patient_id": "P1", "session_date": "2025-01-31", "technique": "electrical",
                          "pain_before": "40", "twitch_count": count, "estim_hz": "2", "adjuncts": "heat;massage"}
                         for count in ("0", "4", "")])
    slow_rows = []
    validate = file_validation._validate_row
    monkeypatch.setattr(file_validation, "_validate_row", lambda row, today: slow_rows.append(row) or validate(
        row, today))
    status, entries = outcome(rows)
    assert status == "valid" and slow_rows == []
    assert [values["twitch_response"] for values, _, _ in entries] == [False, True, None]
    assert [values["adjuncts"] for values, _, _ in entries] == ["massage;heat"] * 3
