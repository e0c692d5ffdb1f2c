"""db.bulk.insert_columns stores every row, in order, however many statements SQLite's limits split it into."""

from __future__ import annotations

import gc
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db import bulk
from db.engine import write_session
from db.models import AuditEvent
from tests.db.factories import another_database, engine_on

AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def _insert_and_check(engine, ids: list[int], detail: str, limits: dict[int, int]) -> None:
    """Bulk-insert audit rows of these entity ids under these SQLite limits; check them as stored, in id order."""
    after = [None if i % 4 == 0 else f'{{"n": {i}, "text": "it\'s"}}' for i in ids]
    with write_session(engine) as session:
        for limit, value in limits.items():
            session.connection().connection.driver_connection.setlimit(limit, value)
        bulk.insert_columns(session, AuditEvent.__table__, {
            "at": AT, "actor_id": None, "actor": "O'Brien", "action": "create", "entity": "session",
            "entity_id": ids, "before": None, "after": after, "detail": detail,
        })  # fmt: skip
    with Session(engine) as session:
        rows = session.execute(
            select(AuditEvent.entity_id, AuditEvent.after, AuditEvent.actor, AuditEvent.detail, AuditEvent.at,
                   AuditEvent.before).order_by(AuditEvent.id)
        ).all()
    expected = [(i, a, "O'Brien", detail, AT, None) for i, a in zip(ids, after, strict=True)]
    assert [tuple(row) for row in rows] == expected


def test_a_bulk_insert_stores_every_row_in_order_with_its_constants(engine, backend):
    # On SQLite a text with a NUL is not written into the statement as a literal but bound in every row.
    detail = "import\x00'a'.csv" if backend == "sqlite" else "import 'a'.csv"
    _insert_and_check(engine, list(range(1, 12)), detail, {})


@pytest.mark.parametrize(
    "limits",
    [{sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: 7}, {sqlite3.SQLITE_LIMIT_SQL_LENGTH: 300}],
    ids=["2-rows-of-bound-values", "300-characters"],
)
def test_sqlites_limits_split_a_bulk_insert_into_statements_that_store_every_row(request, tmp_path, limits):
    with another_database(request, "sqlite", tmp_path) as url, engine_on(url) as engine:
        _insert_and_check(engine, list(range(1, 41)), "import 'a'.csv", limits)


def test_the_collector_is_paused_in_the_block_and_runs_again_after_it_even_on_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), bulk.collector_paused():
        assert not gc.isenabled()
        with bulk.collector_paused():  # nested (or another thread's import): the outer block resumes it
            assert not gc.isenabled()
        assert not gc.isenabled()
        raise RuntimeError("the import failed")
    assert gc.isenabled()


def test_a_bulk_insert_the_database_refuses_raises_sqlalchemys_error_and_leaves_nothing(engine):
    with pytest.raises(IntegrityError), write_session(engine) as session:
        bulk.insert_columns(session, AuditEvent.__table__, {
            "at": AT, "actor": "O'Brien", "action": ["create", "tamper"], "entity": "session", "entity_id": [1, 2],
            "detail": "",
        })  # fmt: skip
    with Session(engine) as session:
        assert session.execute(select(AuditEvent.id)).all() == []


def test_chunks_give_every_item_once_in_order_in_slices_of_at_most_the_size():
    assert [list(chunk) for chunk in bulk.chunks(list(range(12)), 5)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert list(bulk.chunks([], 5)) == []


def test_one_in_list_chunk_binds_fewer_parameters_than_sqlite_allows_and_postgresql_allows_more():
    ids = list(range(2 * bulk.IN_LIST_CHUNK + 1))
    assert [len(chunk) for chunk in bulk.chunks(ids)] == [bulk.IN_LIST_CHUNK, bulk.IN_LIST_CHUNK, 1]
    with sqlite3.connect(":memory:") as connection:
        assert connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) > bulk.IN_LIST_CHUNK
