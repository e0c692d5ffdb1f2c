"""The Needling record page reads counts made in the database, never every session (#15), and shows the same figures
as when it read every session: counts, completeness by clinician and month, the STRICTA table to the byte (and
`summary --stricta`'s), the methods text and dose and outcome, on both backends, on the sample data and on
randomized needling records (electrical and other sessions, several adjuncts, items never recorded, deleted
sessions), with each filter."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlmodel import Session, select

from analytics import dose_outcome, stricta
from clinic.vocabulary import ADJUNCTS, MANIPULATIONS, SIDES, TECHNIQUES
from dashboard import clinic_wide, needling_data
from db import corrections, queries, stricta_queries
from db.access import Actor
from db.engine import make_engine, write_session
from db.models import TreatmentSession
from db.queries import OutcomeFilter
from tests.db.factories import ADMIN, SAMPLE_FILE, import_file, import_frame, interchange_rows

MANAGER = Actor(id=None, username="manager", role="manager")
FILTERS = [
    OutcomeFilter(),
    OutcomeFilter(conditions=("neck_pain",)),
    OutcomeFilter(techniques=("electrical",)),
    OutcomeFilter(techniques=("deep", "superficial"), conditions=("low_back_pain", "neck_pain")),
    OutcomeFilter(clinicians=("clin_a", "clin_chen")),
    OutcomeFilter(start=date(2025, 3, 1), end=date(2025, 6, 30)),
    OutcomeFilter(start=date(1990, 1, 1), end=date(1990, 1, 2)),  # no session
]


def reference(session: Session, where: OutcomeFilter, dose_episodes: int) -> dict:
    """Return the page's figures as the page computed them before #15, from every session of the filtered episodes
    (`stricta_sessions`) and the definitions of analytics.stricta."""
    sessions = stricta_queries.stricta_sessions(session, actor=MANAGER, where=where)
    pain = queries.outcome_sessions(session, actor=MANAGER, where=where, episodes=dose_episodes)
    complete = stricta.is_complete(sessions) if len(sessions) else pd.Series(dtype=bool)
    if len(sessions):
        frame = pd.DataFrame({"clinician": sessions["clinician"].fillna("not recorded"),
                              "month": pd.to_datetime(sessions["session_date"]).dt.to_period("M"),
                              "complete": complete})
        completeness = frame.groupby(["clinician", "month"]).agg(sessions=("complete", "size"),
                                                                 complete=("complete", "sum"))
        completeness["share"] = completeness["complete"] / completeness["sessions"]
        completeness = completeness.reset_index().astype({"complete": int})
        completeness["month"] = completeness["month"].astype(str)
    else:
        completeness = pd.DataFrame(columns=["clinician", "month", "sessions", "complete", "share"])
    doses = pain[["session_id", "episode_id", "session_number", "technique", "pain_scale", "pain_before"]].merge(
        sessions[["session_id", *dose_outcome.DOSE_COLUMNS]], on="session_id", how="inner")
    return {
        "sessions": len(sessions),
        "episodes": int(sessions["episode_id"].nunique()),
        "complete": float(complete.mean()) if len(sessions) else None,
        "first": sessions["session_date"].min() if len(sessions) else None,
        "last": sessions["session_date"].max() if len(sessions) else None,
        "completeness": completeness,
        "table": stricta.summary_table(sessions),
        "dose": dose_outcome.dose_outcome(doses[list(dose_outcome.SESSION_COLUMNS)]),
    }


def assert_same_figures(engine, where: OutcomeFilter, monkeypatch, dose_episodes: int = 5) -> dict:
    monkeypatch.setattr(needling_data, "DOSE_EPISODES", dose_episodes)  # a sample smaller than the episodes
    reading = clinic_wide.Reading(engine=engine, actor=MANAGER, version=0)
    page = needling_data._needling_record(reading, where)
    with Session(engine) as session:
        wanted = reference(session, where, dose_episodes)
        cli_table = stricta.table_from_counts(*stricta_queries.stricta_counts(session, actor=MANAGER, where=where))
    assert {key: page[key] for key in ("sessions", "episodes", "complete", "first", "last")} == {
        key: wanted[key] for key in ("sessions", "episodes", "complete", "first", "last")}
    assert needling_data.table_csv(page["table"]) == needling_data.table_csv(wanted["table"])  # to the byte
    assert needling_data.table_csv(cli_table) == needling_data.table_csv(wanted["table"])
    pd.testing.assert_frame_equal(page["table"], wanted["table"])
    pd.testing.assert_frame_equal(page["completeness"], wanted["completeness"], check_dtype=bool(wanted["sessions"]))
    pd.testing.assert_frame_equal(page["dose"], wanted["dose"])
    assert page["dose"].attrs == wanted["dose"].attrs
    assert page["markdown"] == needling_data.methods_markdown(wanted["table"], wanted, where)
    return page


@pytest.fixture
def sample(engine):
    import_file(engine, SAMPLE_FILE)
    return engine


@pytest.mark.parametrize("where", FILTERS, ids=range(len(FILTERS)))
def test_the_page_s_figures_on_the_sample_data_are_those_of_every_session(sample, where, monkeypatch):
    page = assert_same_figures(sample, where, monkeypatch)
    assert page["sessions"] > 0 or where.start == date(1990, 1, 1)


def random_rows(seed: int, patients: int = 14) -> pd.DataFrame:
    """Return interchange rows of random patients with random needling records, each valid."""
    rng = random.Random(seed)
    rows = []
    for patient in range(patients):
        day = date(2025, 1, 1) + timedelta(days=rng.randrange(300))
        condition = rng.choice(["neck_pain", "low_back_pain", "plantar_fasciitis"])
        for _ in range(rng.randint(1, 7)):
            technique = rng.choice(TECHNIQUES)
            twitch = rng.choice(["", "yes", "no"])
            cells = {
                "patient_id": f"R{seed}P{patient}", "session_date": day.isoformat(), "technique": technique,
                "pain_before": str(rng.randint(0, 100)), "condition": condition, "twitch_response": twitch,
                "clinician": rng.choice(["clin_a", "clin_b", "clin_c", ""]),
                "insertions": rng.choice(["", "5", "8", str(rng.randint(1, 500))]),
                "side": rng.choice(["", *SIDES]),
                "depth_mm": rng.choice(["", "22.5", "30", f"{rng.uniform(0, 150):.1f}"]),
                "needle_diameter_mm": rng.choice(["", "0.16", "0.25", "0.3"]),
                "needle_length_mm": rng.choice(["", "40", f"{rng.uniform(5, 150):.2f}"]),
                "twitch_count": {"yes": str(rng.randint(1, 9)), "no": "0", "": rng.choice(["", "0", "3"])}[twitch]
                if rng.random() < 0.7 else "",
                "retention_s": rng.choice(["", "0", "300", "900"]),
                "manipulation": rng.choice(["", *MANIPULATIONS]),
                "adjuncts": rng.choice(["", "none", ";".join(rng.sample(ADJUNCTS, rng.randint(1, 3))),
                                        "heat;stretching"]),
            }
            if technique == "electrical":
                cells |= {"estim_hz": rng.choice(["", "2", "80", f"{rng.uniform(0.1, 250):.1f}"]),
                          "estim_pulse_us": rng.choice(["", "250"]),
                          "estim_ma": rng.choice(["", f"{rng.uniform(0, 60):.1f}"]),
                          "estim_minutes": rng.choice(["", "10", "15"])}
            if seed % 2 and rng.random() < 0.8:  # some runs hold an item no session records
                cells["needle_length_mm"] = ""
            rows.append(cells)
            day += timedelta(days=rng.randint(1, 40))
    return interchange_rows(*rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_page_s_figures_on_random_needling_records_are_those_of_every_session(engine, seed, monkeypatch):
    import_frame(engine, random_rows(seed))
    with write_session(engine) as session:  # a few soft-deleted sessions leave every figure
        ids = session.exec(select(TreatmentSession.id).order_by(TreatmentSession.id)).all()
        for session_id in random.Random(seed).sample(ids, 4):
            corrections.delete_session(session, actor=ADMIN, session_id=session_id, reason="entered twice")
    for where in [*FILTERS, OutcomeFilter(clinicians=("clin_b",), techniques=("electrical", "deep"))]:
        assert_same_figures(engine, where, monkeypatch, dose_episodes=3 + seed)


def test_the_counts_are_one_row_per_group_not_per_session(sample):
    with Session(sample) as session:
        counts, values = stricta_queries.stricta_counts(session, actor=MANAGER)
    assert list(counts.columns) == stricta_queries.COUNT_COLUMNS
    assert list(values.columns) == stricta_queries.VALUE_COLUMNS
    # A row per clinician, month, technique and number of items reported; one per technique, item and value.
    assert not counts.duplicated(["clinician", "month", "technique", "reported_items"]).any()
    assert not values.duplicated(["technique", "item", "value"]).any() and values["value"].notna().all()
    assert counts["sessions"].sum() == 1571 and len(values) < values["sessions"].sum() / 5
    per_item = values.groupby("item")["sessions"].sum()
    assert set(per_item.index) == set(stricta.ITEMS) and (per_item <= 1571).all()


def test_a_database_url_engine_is_used_as_the_page_uses_it(database_url, monkeypatch):
    # The empty database: no session, no figure, no error, on each backend.
    engine = make_engine(database_url)
    try:
        page = assert_same_figures(engine, OutcomeFilter(), monkeypatch)
    finally:
        engine.dispose()
    assert (page["sessions"], page["episodes"], page["complete"], page["heat_map"]) == (0, 0, None, None)
