"""An import adds its new patients' sums to the roll-ups in SQL (db.rollup_import) and touches the stored patients it
changes: the roll-ups stay equal to a rebuild when files of new patients follow one another (a network's history
imported in parts), and when one file mixes new patients with sessions of stored ones."""

from __future__ import annotations

import pandas as pd
import pytest

from db import rollup_import, rollups, spreadsheets
from tests.db.factories import SAMPLE_FILE, import_frame
from tests.db.test_rollups import assert_rollups_match_a_rebuild


def parts_by_patient(parts: int) -> list[pd.DataFrame]:
    rows = spreadsheets.read_table(SAMPLE_FILE)
    patients = list(dict.fromkeys(rows["patient_id"]))
    return [rows[rows["patient_id"].isin(patients[i::parts])] for i in range(parts)]


@pytest.mark.parametrize("rebuild_from", [0, rollups.REBUILD_MIN], ids=["may rebuild", "never rebuilds"])
def test_files_of_new_patients_one_after_another_keep_the_rollups_equal_to_a_rebuild(engine, monkeypatch,
                                                                                     rebuild_from):
    monkeypatch.setattr(rollups, "REBUILD_MIN", rebuild_from)
    calls = []
    rebuild, adding = rollups.rebuild, rollup_import.add_new_episodes
    monkeypatch.setattr(rollups, "rebuild", lambda session: (calls.append("rebuild"), rebuild(session)))
    monkeypatch.setattr(rollup_import, "add_new_episodes",
                        lambda session, ids: (calls.append(len(ids)), adding(session, ids)))
    for part in parts_by_patient(3):
        import_frame(engine, part)
    assert len(calls) == 3 and "rebuild" not in calls and all(calls)  # each file's new episodes, added
    monkeypatch.setattr(rollups, "rebuild", rebuild)
    assert_rollups_match_a_rebuild(engine)


@pytest.mark.parametrize("rebuild_from", [0, rollups.REBUILD_MIN], ids=["rebuilt", "summed"])
def test_a_file_of_new_patients_and_stored_patients_sessions_keeps_the_rollups_equal_to_a_rebuild(engine, monkeypatch,
                                                                                                  rebuild_from):
    monkeypatch.setattr(rollups, "REBUILD_MIN", rebuild_from)  # every stored patient touched: a rebuild, or sums
    first, second = parts_by_patient(2)
    import_frame(engine, first)
    later = first.groupby("patient_id").tail(1).assign(session_date="2026-09-30")
    result = import_frame(engine, pd.concat([first, later, second], ignore_index=True))
    assert result.inserted == len(second) + len(later) and result.updated == 0
    assert_rollups_match_a_rebuild(engine)
