"""Inserts of many rows at once, given as columns, in the caller's transaction: what an import writes."""

from __future__ import annotations

from itertools import repeat

from sqlalchemy import Table, insert
from sqlmodel import Session


def insert_columns(session: Session, table: Table, columns: dict[str, list | object]) -> None:
    """Insert one row per position of the column lists; a value that is not a list is the same in every row.

    On SQLite the statement goes straight to the driver's executemany, each distinct value converted once as
    SQLAlchemy would convert it: SQLAlchemy's own per-row parameter handling costs as much as SQLite's work on
    100,000 rows. Elsewhere it is an ordinary Core insert, which the dialect batches (insertmanyvalues).
    """
    lengths = {len(values) for values in columns.values() if isinstance(values, list)}
    if len(lengths) != 1:
        raise ValueError(f"{table.name}: columns of different lengths, or no list among them")
    count = lengths.pop()
    if not count:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        names = list(columns)
        values = [v if isinstance(v, list) else repeat(v, count) for v in columns.values()]
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)])
        return
    names, marks, converted = [], [], []
    for name, values in columns.items():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        names.append(dialect.identifier_preparer.quote(name))
        if isinstance(values, list):
            marks.append("?")
            converted.append(values if process is None else _converted(values, process))
            continue
        value = values if process is None or values is None else process(values)
        literal = _literal(value)
        if literal is None:
            marks.append("?")
            converted.append(repeat(value, count))
        else:  # the same in every row: written into the statement once rather than bound 100,000 times
            marks.append(literal)
    table_name = dialect.identifier_preparer.quote(table.name)
    sql = f"INSERT INTO {table_name} ({', '.join(names)}) VALUES ({', '.join(marks)})"
    session.connection().exec_driver_sql(sql, list(zip(*converted, strict=True)))


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
