"""Statements over many rows at once, in the caller's transaction: column inserts and their ids, IN (…) lists."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, islice, repeat
from sqlite3 import SQLITE_LIMIT_SQL_LENGTH, SQLITE_LIMIT_VARIABLE_NUMBER

from sqlalchemy import Table, func, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

# Ids per IN (…) list, each a bound parameter: well below what one statement may bind (SQLite 32,766, PostgreSQL
# 65,535), with room for a statement's other parameters.
IN_LIST_CHUNK = 5_000


def chunks(items: Sequence, size: int = IN_LIST_CHUNK) -> Iterator[Sequence]:
    """Return the items in consecutive slices of at most `size`: one IN (…) list each."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the block runs, then let it run again.

    An import holds a million small objects (cells, tuples, lists) until it ends, none of them in a cycle; every
    full collection walks all of them for nothing, about 0.1 s each, several times per 100,000 rows. A block run
    while another thread has paused the collector leaves it to that thread to resume it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def insert_columns(session: Session, table: Table, columns: dict[str, list | object]) -> None:
    """Insert one row per position of the column lists; a value that is not a list is the same in every row.

    The statements go straight to the driver, each distinct value converted once as SQLAlchemy would convert it
    (SQLAlchemy's own per-row parameter handling costs as much as the database's work on 100,000 rows):
    - SQLite: `INSERT … SELECT … FROM (VALUES (…), (…), …)` of as many rows as SQLite binds parameters for, one
      statement run per few thousand rows rather than per row, and a value that is the same in every row written
      once into the SELECT;
    - PostgreSQL: `COPY … FROM STDIN`, every row in one stream (its documentation's way to load many rows).
    """
    lengths = {len(values) for values in columns.values() if isinstance(values, list)}
    if len(lengths) != 1:
        raise ValueError(f"{table.name}: columns of different lengths, or no list among them")
    count = lengths.pop()
    if not count:
        return
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    names, selected, bound = [], [], []  # column names; what the SELECT gives each; the lists bound per row
    for name, values in columns.items():
        if isinstance(values, list) and values.count(None) == count:
            values = None  # a column empty in every row (an optional column a file left out): NULL, written once
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        names.append(quote(name))
        if isinstance(values, list):
            bound.append(values if process is None else _converted(values, process))
        else:
            value = values if process is None or values is None else process(values)
            literal = _literal(value) if dialect.name == "sqlite" else None
            if literal is not None:  # the same in every row: written into the statement once, not bound per row
                selected.append(literal)
                continue
            bound.append(repeat(value, count))
        selected.append(f"column{len(bound)}")  # SQLite's name of a VALUES column
    connection = session.connection()
    driver = connection.connection.driver_connection  # the DBAPI connection, in the session's transaction
    if dialect.name == "postgresql":
        sql = f"COPY {quote(table.name)} ({', '.join(names)}) FROM STDIN"
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in zip(*bound, strict=True):
                    copy.write_row(row)
        except dialect.loaded_dbapi.Error as error:  # raised as SQLAlchemy raises the driver's errors elsewhere
            raise DBAPIError.instance(sql, None, error, dialect.loaded_dbapi.Error) from error
        return
    head = f"INSERT INTO {quote(table.name)} ({', '.join(names)}) SELECT {', '.join(selected)} FROM (VALUES "
    row = f"({', '.join(repeat('?', len(bound)))})"
    per_statement = min(
        driver.getlimit(SQLITE_LIMIT_VARIABLE_NUMBER) // len(bound),
        (driver.getlimit(SQLITE_LIMIT_SQL_LENGTH) - len(head)) // (len(row) + 2),
    )
    rows = zip(*bound, strict=True)  # row tuples made a statement's worth at a time, not all at once
    statements: dict[int, str] = {}
    for _ in range(0, count, per_statement):
        chunk = tuple(chain.from_iterable(islice(rows, per_statement)))
        length = len(chunk) // len(bound)
        if length not in statements:
            statements[length] = head + ", ".join(repeat(row, length)) + ")"
        connection.exec_driver_sql(statements[length], chunk)


def highest_id(session: Session, table: Table) -> int:
    """Return the highest id in the table (0 when empty): the rows of an insert that follows take ids above it."""
    return session.execute(select(func.max(table.c.id))).scalar() or 0


def inserted_ids(session: Session, table: Table, before: int, names: tuple[str, ...], keys: list[tuple]) -> list[int]:
    """Return the ids of the rows just inserted, in insertion order, given their keys (values of `names`).

    SQLite gives a new row the highest id so far + 1 (https://sqlite.org/autoinc.html), so under the write lock
    the rows of one insert hold the ids after `before`, the highest id before it, in order; a count checks it.
    Elsewhere, or should the count differ, the ids are read back by key.
    """
    if session.get_bind().dialect.name == "sqlite":
        count, highest = session.execute(
            select(func.count(), func.max(table.c.id)).where(table.c.id > before)
        ).one()
        if count == len(keys) and highest == before + count:
            return list(range(before + 1, before + count + 1))
    found = _ids_by_key(session, table, before, names, keys)
    return [found[key] for key in keys]


def _ids_by_key(session: Session, table: Table, before: int, names: tuple[str, ...], keys: list[tuple]
                ) -> dict[tuple, int]:
    """Return {key: id} for rows just inserted with these keys (values of `names`), live rows only.

    They are the rows above `before`, the highest id before the insert: writes hold the write lock (SQLite's BEGIN
    IMMEDIATE, PostgreSQL's advisory lock), and both hand out ids above every existing one. Should a key not be
    among them, it is looked up by its first column, the oldest row first.
    """
    columns = [table.c[name] for name in names]
    live = [table.c.deleted_at.is_(None)] if "deleted_at" in table.c else []
    connection = session.connection()
    # By id alone, a range of the primary key: rows just inserted are live, and a condition on deleted_at could
    # lead SQLite to scan a partial index of every session instead.
    rows = connection.execute(select(table.c.id, *columns).where(table.c.id > before)).all()
    ids, *values = zip(*rows, strict=True) if rows else ((),) * (len(columns) + 1)
    found = dict(zip(zip(*values, strict=True), ids, strict=True))
    missing = sorted({key[0] for key in keys if key not in found})
    for chunk in chunks(missing):
        rows = connection.execute(select(*columns, table.c.id).where(columns[0].in_(chunk), *live).order_by(table.c.id))
        for row in rows:
            found.setdefault(tuple(row[:-1]), row[-1])
    return found


def _literal(value) -> str | None:
    """Return a value as an SQLite literal (NULL, an integer, or text quoted by doubling its quotes), else None."""
    if value is None:
        return "NULL"
    if value.__class__ is int:
        return str(value)
    if value.__class__ is str and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


def _converted(values: list, process) -> list:
    """Return each value through a bind processor, each distinct value converted once (None stays None).

    A column repeats its values (one time stamp, a few hundred dates), so this is a few thousand calls, not 100,000.
    """
    kinds = {value.__class__ for value in values} - {type(None)}
    if len(kinds) <= 1:  # one type: equal values convert alike
        done = {value: process(value) for value in set(values) if value is not None}
        done[None] = None
        return [done[value] for value in values]
    done = {}  # 1, 1.0 and True are one key of a dict but need not convert alike
    out = []
    for value in values:
        key = (value.__class__, value)
        if key not in done:
            done[key] = None if value is None else process(value)
        out.append(done[key])
    return out
