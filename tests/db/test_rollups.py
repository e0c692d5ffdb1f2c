"""The roll-ups stay equal to a rebuild from the sessions through every kind of write, on every backend."""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from db import queries, rollups, spreadsheets
from db.corrections import correct_session, delete_session, restore_session
from db.engine import write_session
from db.models import Episode, OutcomeRollup, Patient, TreatmentSession
from db.queries import OutcomeFilter
from db.writes import record_session
from tests.db.factories import ADMIN, DATE_IS_RIGHT, SAMPLE_FILE, import_file, import_frame, record, session_input


def rollup_frames(session: Session) -> dict[str, pd.DataFrame]:
    columns = [c.name for c in OutcomeRollup.__table__.columns if c.name != "id"]
    rows = [row.model_dump(exclude={"id"}) for row in session.scalars(select(OutcomeRollup))]
    return {"outcome": pd.DataFrame(rows, columns=columns).sort_values(list(rollups.ROLLUP_KEY), ignore_index=True)}


def assert_rollups_match_a_rebuild(engine) -> None:
    with Session(engine) as session:
        kept = rollup_frames(session)
    with Session(engine) as session:
        rollups.rebuild(session)
        rebuilt = rollup_frames(session)
        session.rollback()
    for name, frame in kept.items():
        expected = rebuilt[name]
        assert list(frame.columns) == list(expected.columns), name
        assert len(frame) == len(expected), f"{name}: {len(frame)} cells kept, {len(expected)} rebuilt"
        numbers = frame.select_dtypes("number").columns
        texts = [c for c in frame.columns if c not in numbers]
        assert frame[texts].equals(expected[texts]), name
        assert np.allclose(frame[numbers].astype(float), expected[numbers].astype(float), rtol=1e-9, atol=1e-6), name


@pytest.mark.parametrize("rebuild_from", [0, rollups.REBUILD_MIN], ids=["rebuilt", "summed"])
def test_an_import_fills_the_rollups_as_a_rebuild_would(engine, monkeypatch, rebuild_from):
    monkeypatch.setattr(rollups, "REBUILD_MIN", rebuild_from)  # the sample's 300 patients: both ways
    import_file(engine, SAMPLE_FILE)
    with Session(engine) as session:
        assert session.execute(select(OutcomeRollup)).first() is not None
    assert_rollups_match_a_rebuild(engine)


def test_an_import_correcting_baselines_and_adding_sessions_keeps_the_rollups_equal_to_a_rebuild(engine):
    import_file(engine, SAMPLE_FILE)
    rows = spreadsheets.read_table(SAMPLE_FILE)
    first = rows.groupby("patient_id").head(1).index[:40]
    # New baselines: every later session's improvement changes.
    rows.loc[first, "pain_before"] = rows.loc[first, "pain_scale"].map({"vas_100": "55", "nrs_10": "5"})
    extra = rows.groupby("patient_id").tail(1).head(25).assign(session_date="2026-09-30", side_effects="bruising:mild")
    result = import_frame(engine, pd.concat([rows, extra], ignore_index=True))
    assert result.updated >= 30 and result.inserted == 25
    assert_rollups_match_a_rebuild(engine)


def test_every_kind_of_write_keeps_the_rollups_equal_to_a_rebuild(engine):
    """Records (back-dated too), corrections of baselines and side effects, deletes and restores, in random order."""
    chance = random.Random(11)
    start = date(2025, 1, 27)  # episodes whose first session moves across a month's end
    for step in range(40):
        patient = f"P{chance.randrange(6)}"
        kind = chance.choice(["record", "record", "correct", "delete", "restore"])
        with Session(engine) as session:
            live = session.scalars(select(TreatmentSession.id).where(TreatmentSession.deleted_at.is_(None))).all()
            deleted = session.scalars(select(TreatmentSession.id).where(TreatmentSession.deleted_at.is_not(None))).all()
        fields = {
            "patient_id": patient,
            "session_date": (start + timedelta(days=chance.randrange(12))).isoformat(),
            "technique": chance.choice(["superficial", "deep", "electrical"]),
            "pain_before": chance.choice([0, 20, 45, 70, 90]),
            "side_effects": chance.choice([[], [("bruising", "mild")], [("soreness", "mild"), ("syncope", "serious")]]),
            "condition": chance.choice(["neck_pain", "low_back_pain"]),
            "clinician": chance.choice([None, "clin_a", "clin_b"]),
            "body_region": chance.choice([None, None, "neck", "lumbar"]),  # a later one fills an episode's gap
        }
        if kind == "record" or not live:
            record(engine, answer=DATE_IS_RIGHT, **fields)  # a session before its episode's first is meant so
        elif kind == "correct":
            with write_session(engine) as session:
                session_id = chance.choice(live)
                same_episode = dict(zip(("patient_id", "condition"), _episode_of(session, session_id), strict=True))
                entry = session_input(**fields | same_episode)
                correct_session(session, actor=ADMIN, session_id=session_id, entry=entry)
        elif kind == "delete":
            with write_session(engine) as session:
                delete_session(session, actor=ADMIN, session_id=chance.choice(live), reason=f"step {step}")
        elif deleted:
            with write_session(engine) as session:
                restore_session(session, actor=ADMIN, session_id=chance.choice(deleted))
        assert_rollups_match_a_rebuild(engine)


def _episode_of(session: Session, session_id: int) -> tuple[str, str]:
    """Return the (patient id, condition) of a session's episode: a correction stays in its episode."""
    return session.execute(
        select(Patient.pseudonym, Episode.condition)
        .join(Episode, Episode.patient_id == Patient.id)
        .join(TreatmentSession, TreatmentSession.episode_id == Episode.id)
        .where(TreatmentSession.id == session_id)
    ).one()


def test_a_write_that_fails_leaves_the_rollups_as_they_were(engine):
    record(engine, patient_id="P1", pain_before=60)
    with Session(engine) as session:
        before = rollup_frames(session)
    with pytest.raises(RuntimeError), write_session(engine) as session:
        record_session(session, actor=ADMIN, entry=session_input(patient_id="P1", session_date="2025-01-20"))
        raise RuntimeError("crash after the write, before the commit")
    with Session(engine) as session:
        after = rollup_frames(session)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])


@pytest.mark.parametrize(
    ("start", "end", "months", "stretches"),
    [
        (None, None, (None, None), []),
        (date(2025, 9, 1), date(2026, 2, 28), (202509, 202602), []),
        (date(2025, 9, 17), date(2026, 2, 11), (202510, 202601),
         [(date(2025, 9, 17), date(2025, 9, 30)), (date(2026, 2, 1), date(2026, 2, 11))]),
        (date(2025, 10, 3), date(2025, 10, 29), None, [(date(2025, 10, 3), date(2025, 10, 29))]),
        (date(2025, 10, 3), date(2025, 10, 31), None, [(date(2025, 10, 3), date(2025, 10, 31))]),
        (date(2025, 10, 1), date(2025, 10, 12), None, [(date(2025, 10, 1), date(2025, 10, 12))]),
        (date(2025, 12, 5), date(2026, 1, 10), None,
         [(date(2025, 12, 5), date(2025, 12, 31)), (date(2026, 1, 1), date(2026, 1, 10))]),
        (date(2025, 3, 2), None, (202504, None), [(date(2025, 3, 2), date(2025, 3, 31))]),
        (None, date(2025, 1, 15), (None, 202412), [(date(2025, 1, 1), date(2025, 1, 15))]),
        (date(2025, 5, 1), date(2025, 4, 1), None, []),
    ],
)
def test_a_date_range_splits_into_whole_months_and_the_stretches_it_cuts(start, end, months, stretches):
    assert rollups.split_range(start, end) == (months, stretches)


def test_the_rollup_holds_a_row_per_value_of_one_filter_never_one_per_combination(engine):
    """Its size is the sum of the filters' values (× technique × session number), not their product (issue #15)."""
    import_file(engine, SAMPLE_FILE)
    with Session(engine) as session:
        rows = rollup_frames(session)["outcome"]
        sessions = queries.all_sessions(session, actor=ADMIN)
    first = sessions[sessions["session_number"] == 1].set_index("episode_id")
    by_episode = {  # each filter's value for an episode, as its first session gives it
        "all": pd.Series("", index=first.index),
        "condition": first["condition"].fillna(""),
        "body_region": first["body_region"].fillna(""),
        "clinician_id": first["clinician"].fillna(""),
        "first_month": pd.to_datetime(first["session_date"]).dt.strftime("%Y%m"),
    }
    technique = sessions["episode_id"].map(first["technique"])
    expected = {dimension: len(set(zip(sessions["episode_id"].map(values), technique, sessions["session_number"],
                                       strict=True)))
                for dimension, values in by_episode.items()}
    assert rows["dimension"].value_counts().to_dict() == expected
    kept = rows[list(rollups.FILTERS)] != pd.Series(rollups.BLANK)  # the filters' columns a row holds a value in
    assert not kept[rows["dimension"] == "all"].any(axis=None)
    for dimension in rollups.FILTERS:  # its own column, none of the others
        of_it = kept[rows["dimension"] == dimension]
        assert of_it[dimension].sum() > 0
        assert not of_it.drop(columns=dimension).any(axis=None)


@pytest.mark.parametrize(
    ("where", "reads"),
    [
        (OutcomeFilter(), {"rollup"}),
        (OutcomeFilter(conditions=("neck_pain",), techniques=("deep",)), {"rollup"}),
        (OutcomeFilter(body_regions=("neck", "hip")), {"rollup"}),
        (OutcomeFilter(clinicians=("clin_a",)), {"rollup"}),
        (OutcomeFilter(start=date(2025, 9, 1), end=date(2025, 12, 31), techniques=("deep",)), {"rollup"}),
        (OutcomeFilter(start=date(2025, 9, 17), end=date(2025, 10, 31)), {"rollup", "sessions"}),  # September cut
        (OutcomeFilter(start=date(2025, 10, 2), end=date(2025, 10, 30)), {"sessions"}),
        (OutcomeFilter(conditions=("neck_pain",), clinicians=("clin_a",)), {"sessions"}),
        (OutcomeFilter(body_regions=("neck",), start=date(2025, 9, 1), end=date(2025, 12, 31)), {"sessions"}),
    ],
    ids=["none", "condition and technique", "body regions", "clinician", "whole months", "cut months",
         "within a month", "two filters", "a filter and dates"],
)
def test_one_filter_reads_the_rollup_and_two_read_the_sessions_they_select(where, reads):
    sql = str(rollups.cells(where).element.compile(dialect=sqlite.dialect()))
    read = {"rollup" if table == "outcome_rollup" else table
            for table in re.findall(r"\b(?:FROM|JOIN) (outcome_rollup|sessions)\b", sql)}
    assert read == reads
