"""Migration 0015 (patient reports, #17) on SQLite and PostgreSQL: down to 0014 removes its seven tables and nothing
else, up again restores them, and their CHECKs refuse what the vocabulary does not allow on both backends."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from db.engine import alembic_config, make_engine
from tests.db.factories import record

TABLES = {"diary_entries", "diary_entry_versions", "patient_side_effects", "diary_annotations", "pgic_responses",
          "psfs_activities", "psfs_ratings"}


def move(url: str, where: str, revision: str) -> None:
    """Run Alembic `upgrade` or `downgrade` to `revision` as db.engine.migrate runs it (foreign keys off on SQLite)."""
    engine = make_engine(url, foreign_keys=False)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            getattr(command, where)(config, revision)
    finally:
        engine.dispose()


def tables(engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_downgrade_to_0014_drops_only_the_report_tables_and_upgrade_restores_them(database_url, engine):
    record(engine, patient_id="P1")
    before = tables(engine)
    assert before >= TABLES
    engine.dispose()
    move(database_url, "downgrade", "0014")
    assert tables(engine) == before - TABLES
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 1
    move(database_url, "upgrade", "0015")
    assert tables(engine) == before


@pytest.mark.parametrize(("table", "values"), [
    ("diary_entries", "window_h = 12"),
    ("diary_entries", "soreness = 11"),
    ("patient_side_effects", "code = 'pneumothorax'"),
    ("patient_side_effects", "severity = 'awful'"),
    ("pgic_responses", "score = 0"),
    ("pgic_responses", "entered_by = 'manager'"),
    ("psfs_activities", "position = 4"),
    ("psfs_ratings", "score = 11"),
])
def test_the_checks_refuse_values_outside_the_vocabulary_on_both_backends(engine, table, values):
    session = record(engine, patient_id="P1")
    good = {
        "diary_entries": ("INSERT INTO diary_entries (id, session_id, patient_id, window_h, soreness, note, "
                          "recorded_at) VALUES (1, :session, 1, 24, 3, '', '2025-01-11 12:00:00')"),
        "patient_side_effects": "INSERT INTO patient_side_effects (entry_id, code, severity) VALUES (1, 'bruising', "
                                "'mild')",
        "pgic_responses": ("INSERT INTO pgic_responses (patient_id, episode_id, answered_at, score, entered_by) "
                           "VALUES (1, :episode, '2025-01-11 12:00:00', 2, 'patient')"),
        "psfs_activities": ("INSERT INTO psfs_activities (id, episode_id, position, name, named_at, entered_by) "
                            "VALUES (1, :episode, 1, 'Lifting', '2025-01-11 12:00:00', 'patient')"),
        "psfs_ratings": ("INSERT INTO psfs_ratings (activity_id, rated_at, score, entered_by) "
                         "VALUES (1, '2025-01-11 12:00:00', 5, 'patient')"),
    }
    needs = {"patient_side_effects": ["diary_entries"], "psfs_ratings": ["psfs_activities"]}.get(table, [])
    ids = {"session": session["id"], "episode": session["episode_id"]}
    with engine.begin() as connection:
        for other in needs:
            connection.execute(text(good[other]), ids)
        connection.execute(text(good[table]), ids)  # the valid row goes in
        column, _, value = values.partition(" = ")
        with pytest.raises(IntegrityError), connection.begin_nested():
            connection.execute(text(f"UPDATE {table} SET {column} = {value}"))
