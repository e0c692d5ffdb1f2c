"""The demo patient reports (sample_data/diaries.py): reproducible from sessions.csv, valid patient-report files, and
shaped as promised (soreness peaking early and fading by 72 h, entries missing, a few significant effects)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from clinic import side_effects
from clinic.patient_reports import WINDOW_HOURS
from db import report_exchange
from sample_data import diaries


@pytest.fixture(scope="module")
def files() -> dict[str, pd.DataFrame]:
    """The committed files as an importer reads them: every cell text."""
    return {kind: pd.read_csv(path, dtype=str, keep_default_na=False) for kind, path in diaries.PATHS.items()}


def test_the_committed_files_are_exactly_a_fresh_run_on_the_committed_sessions():
    # After sessions.csv changes, run `python -m sample_data.diaries` to bring these along.
    for kind, table in diaries.generate().items():
        assert diaries.PATHS[kind].read_text(encoding="utf-8") == diaries.to_csv_text(table), kind


def test_every_file_is_a_valid_patient_report_file(files):
    for kind, table in files.items():
        assert list(table.columns) == report_exchange.COLUMNS[kind]
        assert len(report_exchange.validate(kind, table)) == len(table)


def test_every_entry_names_a_sample_session_and_falls_in_its_window(files):
    sessions = diaries.read_sessions()
    keys = set(zip(sessions["patient_id"], sessions["session_date"], sessions["technique"],
                   sessions["session_entry"].astype(str), strict=True))
    diary = files["diary"]
    assert set(zip(diary["patient_id"], diary["session_date"], diary["technique"], diary["session_entry"],
                   strict=True)) <= keys
    for day, window, recorded in zip(diary["session_date"], diary["window_h"], diary["recorded_at"], strict=True):
        hours = (datetime.fromisoformat(recorded.rstrip("Z")) - datetime.fromisoformat(day).replace(hour=12))
        start, end = WINDOW_HOURS[int(window)]
        assert timedelta(hours=start) <= hours < timedelta(hours=end), (day, window, recorded)


def test_soreness_peaks_within_a_day_and_has_nearly_gone_by_72_hours(files):
    mean = files["diary"].astype({"soreness": int, "window_h": int}).groupby("window_h")["soreness"].mean()
    assert max(mean[6], mean[24]) > mean[48] > mean[72]
    assert mean[72] < 1.5


def test_entries_are_missing_as_in_real_diaries_and_most_of_all_the_last(files):
    diary = files["diary"]
    per_session = diary.groupby(["patient_id", "session_date", "technique", "session_entry"]).size()
    assert 0.1 < (per_session == 4).mean() < 0.6
    counts = diary["window_h"].value_counts()
    assert counts["72"] < counts["48"] < counts["24"]
    sessions = diaries.read_sessions()
    assert 0.3 < len(per_session) / len(sessions) < 0.8  # many sessions have no diary at all


def test_three_significant_effects_one_the_demo_patients_and_no_serious_one(files):
    reported = [(patient, severity) for patient, cell in zip(files["diary"]["patient_id"],
                                                             files["diary"]["side_effects"], strict=True)
                for _, severity in side_effects.parse(cell)]
    significant = [patient for patient, severity in reported if severity == "significant"]
    assert len(significant) == 3 and diaries.DEMO_PATIENT in significant
    assert all(severity != "serious" for _, severity in reported)


def test_the_demo_patient_has_a_diary_for_every_session_and_pgic_and_psfs(files):
    sessions = diaries.read_sessions()
    own = sessions[sessions["patient_id"] == diaries.DEMO_PATIENT]
    diary = files["diary"][files["diary"]["patient_id"] == diaries.DEMO_PATIENT]
    assert set(diary["session_date"]) == set(own["session_date"])
    assert (files["pgic"]["patient_id"] == diaries.DEMO_PATIENT).sum() == len(own) - 1  # before each follow-up
    assert set(files["psfs"].loc[files["psfs"]["patient_id"] == diaries.DEMO_PATIENT, "position"]) == {"1", "2", "3"}
