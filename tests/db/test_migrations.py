"""The Alembic migrations build exactly the schema the models describe, and upgrading keeps the data."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables)
from db.engine import alembic_config, make_engine, migrate


def test_the_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def _checks(connection, schema: str | None = None) -> dict[str, str]:
    """Return {table.constraint: its CHECK text as the database reports it} of every table in `schema`."""
    inspector = inspect(connection)
    return {f"{table}.{check['name']}": check["sqltext"]
            for table in inspector.get_table_names(schema=schema) if table != "alembic_version"
            for check in inspector.get_check_constraints(table, schema=schema)}


def test_the_migrated_checks_are_the_models_checks_and_none_is_an_in_list(engine, backend, tmp_path):
    # Alembic's comparison above does not look at CHECK constraints: the models' own DDL is made beside them
    # (a fresh SQLite file; a schema of its own on PostgreSQL, rolled back) and the texts compared.
    with engine.connect() as connection:
        migrated = _checks(connection)
        if backend == "sqlite":
            fresh = create_engine(f"sqlite:///{tmp_path / 'models.db'}")
            SQLModel.metadata.create_all(fresh)
            with fresh.connect() as other:
                modelled = _checks(other)
            fresh.dispose()
        else:  # in the connection's transaction, rolled back as it closes
            connection.execute(text("CREATE SCHEMA models"))
            SQLModel.metadata.create_all(connection.execution_options(schema_translate_map={None: "models"}))
            modelled = _checks(connection, "models")
    assert {"sessions.ck_sessions_technique", "side_effects.ck_side_effects_code", "audit_log.ck_audit_action"} <= set(
        migrated
    )
    assert migrated == modelled
    # SQLite checks `col IN ('a', 'b', 'c')` by building a temporary index for every row (db.models._one_of);
    # PostgreSQL would report an IN list as `= ANY (ARRAY[…])`.
    lists = {name: sql for name, sql in migrated.items() if " IN (" in sql.upper() or "ANY (" in sql.upper()}
    assert lists == {}


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
