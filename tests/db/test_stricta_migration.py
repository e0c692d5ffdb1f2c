"""Migration 0014 (issue #16) adds the needling record's columns with their CHECKs and takes them away again, on
SQLite and PostgreSQL, keeping every row."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from db.engine import alembic_config, make_engine
from tests.conftest import BACKENDS
from tests.db.factories import new_postgres_database

NEW_COLUMNS = {
    "sessions": {"insertions", "side", "depth_mm", "needle_diameter_mm", "needle_length_mm", "twitch_count",
                 "retention_s", "manipulation", "estim_hz", "estim_pulse_us", "estim_ma", "estim_minutes", "adjuncts"},
    "episodes": {"planned_sessions", "planned_per_week"},
    "users": {"needling_training", "years_practice"},
}
ROWS = [
    "INSERT INTO users (id, username, display_name, role, failed_logins, is_active, created_at) "
    "VALUES (1, 'clin', 'clin', 'clinician', 0, TRUE, '2025-01-01')",
    "INSERT INTO patients (id, pseudonym, created_at, search_id) VALUES (1, 'P1', '2025-01-01', 'p1')",
    "INSERT INTO episodes (id, patient_id, number, started_on, created_at) "
    "VALUES (1, 1, 1, '2025-01-01', '2025-01-01')",
    "INSERT INTO sessions (id, episode_id, session_number, session_date, technique, clinician_id, muscles, pain_scale,"
    " pain_before, notes, created_at, twitch_response) VALUES (1, 1, 1, '2025-01-01', 'deep', 1, '', 'vas_100', 50,"
    " '', '2025-01-01', TRUE)",
]


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return new_postgres_database(request.getfixturevalue("postgres_server"), "needle_migration_0014")


def _columns(connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {table: {c["name"] for c in inspector.get_columns(table)} & NEW_COLUMNS[table] for table in NEW_COLUMNS}


def test_0014_adds_the_columns_with_their_checks_and_its_downgrade_removes_them_keeping_the_rows(empty_url):
    engine = make_engine(empty_url, foreign_keys=False)  # as db.engine.migrate runs the migrations
    config = alembic_config(empty_url)

    def move(revision: str, down: bool = False) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)

    move("0013")
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement))
    move("0014")
    with engine.begin() as connection:
        assert _columns(connection) == NEW_COLUMNS
        assert connection.execute(text("SELECT insertions, adjuncts FROM sessions")).all() == [(None, None)]
        connection.execute(text("UPDATE sessions SET insertions = 12, twitch_count = 3, adjuncts = 'none'"))
        connection.execute(text("UPDATE episodes SET planned_sessions = 6, planned_per_week = 1.5"))
        connection.execute(text("UPDATE users SET years_practice = 12, needling_training = 'course, 2019'"))
    for statement in ("UPDATE sessions SET estim_hz = 2", "UPDATE sessions SET twitch_count = 0",
                      "UPDATE sessions SET adjuncts = 'none;heat'", "UPDATE episodes SET planned_per_week = 8",
                      "UPDATE users SET years_practice = -1"):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(statement))
    move("0013", down=True)
    with engine.begin() as connection:
        assert _columns(connection) == {table: set() for table in NEW_COLUMNS}
        counts = [connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("users", "patients", "episodes", "sessions")]
        assert counts == [1, 1, 1, 1]
    move("0014")  # and up again, the rows' record empty
    with engine.begin() as connection:
        assert connection.execute(text("SELECT insertions FROM sessions")).all() == [(None,)]
    engine.dispose()
