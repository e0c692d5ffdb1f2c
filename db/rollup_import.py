"""The roll-ups of an import's new patients: their episodes' sums added in the database, grouped as a rebuild groups.

A write touches episodes (`rollups.touch`): their old sums are taken out before it and the new ones put back at
`rollups.settle`, through Python. A patient new to the database has no old sums: the import adds its episodes' sums
straight into the roll-up rows, one statement per few thousand episodes, grouped in SQL by `rollups.REBUILD_PASSES`
as `rollups.rebuild` groups every session (issue #15: importing a network's million sessions as five files rebuilt
the roll-ups five times, over every session imported before, and summing them through Python cost as much).
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from sqlalchemy import select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from db import bulk, rollups


def add_new_episodes(session: Session, episode_ids: Collection[int]) -> None:
    """Add to the roll-ups the sums of these episodes, none of whose sessions they count yet (new episodes of new
    patients, just written); nothing when `settle` is to rebuild the roll-ups, which counts them then."""
    if not episode_ids or session.info.get(rollups.REBUILD):
        return
    statement = _adding(session.get_bind().dialect.name)
    connection = session.connection()
    for chunk in bulk.chunks(sorted(episode_ids), rollups.CHUNK):
        connection.execute(statement, {"episode_ids": list(chunk)})


@functools.cache
def _adding(dialect_name: str):
    """Return the upsert adding some episodes' sums (`episode_ids`) to each roll-up row, built once."""
    t = rollups.TABLE
    rows = rollups.dimension_rows(of="episode_ids").subquery()
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(t)
    # WHERE true: SQLite reads an upsert's SELECT without a WHERE as ambiguous (https://sqlite.org/lang_upsert.html).
    adding = insert.from_select([*rollups.ROLLUP_KEY, *rollups.OUTCOME_MEASURES], select(rows).where(true()))
    return adding.on_conflict_do_update(index_elements=list(rollups.ROLLUP_KEY),
                                        set_={m: t.c[m] + adding.excluded[m] for m in rollups.OUTCOME_MEASURES})
