"""The Alembic migrations build exactly the schema the models describe, and upgrading keeps the data."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables)
from db.engine import alembic_config, make_engine, migrate


def test_the_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrading_a_database_with_data_from_the_first_schema_keeps_every_row(tmp_path):
    # SQLite's batch migrations rebuild tables; with foreign keys on, that would cascade-delete side effects.
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_engine(url, foreign_keys=False)
    with old.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with old.begin() as connection:
        connection.execute(text("INSERT INTO patients (id, pseudonym, created_at) VALUES (1, 'P1', '2026-01-01')"))
        connection.execute(text("INSERT INTO episodes (id, patient_id, created_at) VALUES (1, 1, '2026-01-01')"))
        connection.execute(text(
            "INSERT INTO sessions (id, episode_id, session_number, session_date, technique, muscles, pain_scale,"
            " pain_before, notes, created_at) VALUES (1, 1, 1, '2026-01-01', 'deep', '', 'vas_100', 50, '',"
            " '2026-01-01')"
        ))
        connection.execute(text("INSERT INTO side_effects (session_id, code, severity) VALUES (1, 'bruising', 'mild')"))
    old.dispose()

    migrate(url)

    engine = make_engine(url)
    with engine.connect() as connection:
        counts = [connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("patients", "episodes", "sessions", "side_effects")]
        assert counts == [1, 1, 1, 1]
        assert connection.execute(text("PRAGMA foreign_key_check")).fetchall() == []
    engine.dispose()
