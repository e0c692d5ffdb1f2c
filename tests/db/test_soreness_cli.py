"""`python -m db summary --soreness` (docs/DESIGN.md §5) on the seeded sample, on every backend, against a count
made here with plain Python over the sample files themselves (csv module; no pandas, no analytics)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db import queries, report_queries
from db.access import Actor
from db.cli import main
from db.models import User
from tests.db.factories import another_database, engine_on

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
HEADER = ["technique", "adjunct", "sessions", "diaries", "soreness_24h", "soreness_48h", "soreness_72h"]


def expected_table() -> dict[tuple[str, str], dict]:
    """Return per (technique, adjunct) the sessions with an entry, the entries and the soreness of each window,
    from sessions.csv and diary.csv: a session is (patient, date, technique, its order among those), as the
    interchange identifies it; a session whose adjuncts were not recorded counts under 'not_recorded', apart from
    'none' (recorded: no adjunct)."""
    adjuncts, seen = {}, defaultdict(int)
    with open(SAMPLE / "sessions.csv", newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            key = (row["patient_id"], row["session_date"], row["technique"])
            seen[key] += 1
            adjuncts[(*key, seen[key])] = (row.get("adjuncts") or "not_recorded").split(";")
    table: dict[tuple[str, str], dict] = {}
    with open(SAMPLE / "diary.csv", newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            session = (row["patient_id"], row["session_date"], row["technique"], int(row["session_entry"]))
            for adjunct in adjuncts[session]:
                cell = table.setdefault((row["technique"], adjunct),
                                        {"sessions": set(), "diaries": 0, 24: [], 48: [], 72: []})
                cell["sessions"].add(session)
                cell["diaries"] += 1
                if int(row["window_h"]) in (24, 48, 72):
                    cell[int(row["window_h"])].append(int(row["soreness"]))
    return table


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded_url(request, tmp_path):
    with another_database(request, request.param, tmp_path) as url:
        assert main(["--url", url, "seed"]) == 0
        yield url


def test_summary_soreness_of_the_seeded_sample_matches_a_count_over_the_sample_files(seeded_url, capsys):
    capsys.readouterr()
    assert main(["--url", seeded_url, "summary", "--soreness"]) == 0
    printed = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert printed[0] == HEADER
    expected = expected_table()
    assert [tuple(row[:2]) for row in printed[1:]] == sorted(expected)  # sorted by technique, then adjunct
    for technique, adjunct, sessions, diaries, *means in printed[1:]:
        cell = expected[(technique, adjunct)]
        assert (int(sessions), int(diaries)) == (len(cell["sessions"]), cell["diaries"])
        for window, text in zip((24, 48, 72), means, strict=True):
            scores = cell[window]
            if not scores:
                assert text == ""
                continue
            assert text == text.strip() and len(text.partition(".")[2]) <= 2  # 2 decimals at most
            assert abs(float(text) - sum(scores) / len(scores)) <= 0.005 + 1e-9


def test_the_seeded_demo_patient_has_a_diary_and_the_sample_raises_three_patient_reported_alerts(seeded_url):
    with engine_on(seeded_url) as engine, Session(engine) as session:
        account = session.scalars(select(User).where(User.username == "patient")).one()
        me = Actor(id=account.id, username=account.username, role="patient", patient_id=account.patient_id)
        mine = report_queries.patient_reports(session, actor=me, patient_id=account.patient_id)
        alerts = queries.serious_events(session, actor=Actor(id=None, username="m", role="manager"))
    assert len(mine["diary"]) > 20 and not mine["pgic"].empty and len(mine["psfs_activities"]) == 3
    assert (alerts["source"] == "patient").sum() == 3


def test_the_sample_soreness_peaks_early_and_fades_by_72_hours():
    # What the demo promises (sample_data/diaries.py): mean soreness falls from 24 to 72 h in every group large
    # enough for a mean to say so (20 entries a window; a handful of entries may go either way).
    for cell in expected_table().values():
        if min(len(cell[24]), len(cell[48]), len(cell[72])) >= 20:
            assert sum(cell[24]) / len(cell[24]) > sum(cell[48]) / len(cell[48]) > sum(cell[72]) / len(cell[72])


def test_summary_soreness_of_a_database_without_diaries_is_the_header_alone(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["--url", url, "init"]) == 0
    capsys.readouterr()
    assert main(["--url", url, "summary", "--soreness"]) == 0
    assert capsys.readouterr().out == ",".join(HEADER) + "\n"
