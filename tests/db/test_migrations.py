"""The Alembic migrations build exactly the schema the models describe, and upgrading keeps the data."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session, SQLModel

import db.models  # noqa: F401  (registers the tables)
from db import rollups
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


# Episodes whose roll-up cells cover every measure: NRS and VAS, a baseline of 0, a single session, a session of
# another technique, a month's end, side effects.
OLD_SESSIONS = [  # (id, episode, number, date, technique, scale, pain, side effect)
    (1, 1, 1, "2025-01-30", "deep", "vas_100", 80, "bruising"),
    (2, 1, 2, "2025-02-06", "deep", "vas_100", 50, None),
    (3, 1, 3, "2025-02-13", "superficial", "vas_100", 20, "soreness"),
    (4, 2, 1, "2025-02-01", "deep", "nrs_10", 6, None),
    (5, 2, 2, "2025-02-08", "deep", "nrs_10", 5, "bruising"),
    (6, 3, 1, "2025-02-02", "electrical", "vas_100", 0, None),
    (7, 3, 2, "2025-02-09", "electrical", "vas_100", 10, None),
    (8, 4, 1, "2025-03-03", "superficial", "nrs_10", 7, "syncope"),
]


def _old_database(tmp_path, revision: str) -> str:
    """Return the URL of a SQLite database at `revision` holding OLD_SESSIONS."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_engine(url, foreign_keys=False)
    with old.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    with old.begin() as connection:
        for patient in (1, 2, 3):
            connection.execute(text(f"INSERT INTO patients (id, pseudonym, created_at) VALUES ({patient}, "
                                    f"'P{patient}', '2025-01-01')"))
        for episode, patient, condition in ((1, 1, "neck_pain"), (2, 2, None), (3, 3, "headache"), (4, 1, None)):
            connection.execute(text("INSERT INTO episodes (id, patient_id, condition, created_at) VALUES "
                                    "(:e, :p, :c, '2025-01-01')"), {"e": episode, "p": patient, "c": condition})
        for row in OLD_SESSIONS:
            connection.execute(text(
                "INSERT INTO sessions (id, episode_id, session_number, session_date, technique, muscles, pain_scale,"
                " pain_before, notes, created_at) VALUES (:i, :e, :n, :d, :t, '', :s, :p, '', '2025-01-01')"),
                dict(zip("iendtsp", row[:7], strict=True)))
            if row[7]:
                connection.execute(text("INSERT INTO side_effects (session_id, code, severity) VALUES (:i, :c, "
                                        "'mild')"), {"i": row[0], "c": row[7]})
    old.dispose()
    return url


def _table(connection, name: str) -> list[dict]:
    rows = connection.execute(text(f"SELECT * FROM {name}")).mappings().all()
    return sorted(({k: v for k, v in row.items() if k != "id"} for row in rows), key=lambda r: sorted(r.items()))


def test_upgrading_old_sessions_fills_the_rollups_as_todays_code_builds_them(tmp_path):
    url = _old_database(tmp_path, "0005")
    migrate(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        migrated = _table(connection, "outcome_rollup")
        with Session(bind=connection) as session:
            rollups.rebuild(session)
            rebuilt = _table(connection, "outcome_rollup")
            session.rollback()
    engine.dispose()
    assert len(migrated) >= 6 and migrated == rebuilt


def test_the_rollups_go_down_to_their_old_columns_and_up_again_unchanged(tmp_path):
    url = _old_database(tmp_path, "0005")
    old = make_engine(url, foreign_keys=False)
    config = alembic_config(url)

    def migrated_to(revision: str, down: bool = False) -> dict[str, list[dict]]:
        """Return every roll-up table's rows after moving the schema to `revision`."""
        with old.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
            return {name: _table(connection, name) for name in inspect(connection).get_table_names()
                    if name.endswith("_rollup")}

    filled = migrated_to("0010")  # as revision 0006 filled them
    assert {name: len(rows) > 0 for name, rows in filled.items()} == {"outcome_rollup": True, "safety_rollup": True}
    head = migrated_to("head")
    assert set(head) == {"outcome_rollup"}
    assert migrated_to("0010", down=True) == filled
    assert migrated_to("head") == head
    old.dispose()


def test_the_search_keys_compare_by_code_point_on_every_backend(engine, backend):
    """A prefix is a range of keys (db.patient_search) only in code-point order: PostgreSQL's "C" collation, SQLite's
    binary one; in a language's collation 'ab d' falls between 'abc' and 'abd'."""
    with engine.connect() as connection:
        if backend == "postgresql":
            collations = dict(connection.execute(text(
                "SELECT table_name || '.' || column_name, collation_name FROM information_schema.columns "
                "WHERE (table_name, column_name) IN (('patients', 'search_id'), ('patient_name_keys', 'key'))")).all())
            assert collations == {"patients.search_id": "C", "patient_name_keys.key": "C"}
        else:
            tables = connection.execute(text(
                "SELECT sql FROM sqlite_master WHERE name IN ('patients', 'patient_name_keys')")).scalars().all()
            assert len(tables) == 2 and not any("COLLATE" in sql.upper() for sql in tables)


def test_upgrading_gives_existing_patients_the_search_keys_todays_code_makes(tmp_path):
    from db import patient_search

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_engine(url, foreign_keys=False)
    with old.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0012")
        for pseudonym, name in (("P1", "Zoë O'Brien-Smith"), ("ab-7", None), ("X2", "  ")):
            connection.execute(text("INSERT INTO patients (pseudonym, name, created_at) VALUES (:p, :n, '2025-01-01')"),
                               {"p": pseudonym, "n": name})
    old.dispose()

    migrate(url)

    engine = make_engine(url)
    with engine.connect() as connection:
        ids = dict(connection.execute(text("SELECT pseudonym, search_id FROM patients")).all())
        keys = connection.execute(text("SELECT p.pseudonym, k.key FROM patient_name_keys k "
                                       "JOIN patients p ON p.id = k.patient_id")).all()
    engine.dispose()
    assert ids == {p: patient_search.search_id(p) for p in ("P1", "ab-7", "X2")}
    assert sorted(keys) == sorted(("P1", key) for key in patient_search.name_keys("Zoë O'Brien-Smith"))
