"""Rows of a select as pandas frames, a part at a time (issue #15: a network's reads are never held as Row objects)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from sqlmodel import Session

# Rows turned into a frame at a time. A part's rows, as Python objects, take several times its frame, and a step made
# a part at a time copies it a few times: at a million sessions the expected-recovery fit peaked 28 MB lower with
# parts of 10,000 than of 20,000, 9 MB lower again with 5,000 (2,500: 4 MB lower, 6 s more on the worker); with
# 5,000, the Needling record page 11 MB lower and the Responders' sample read left 9 MB less resident than with 20,000.
READ_PART_ROWS = 5_000


def read_frame(session: Session, stmt, columns=None) -> pd.DataFrame:
    """Return the rows of a select as a DataFrame (`columns` names them, else the select's labels)."""
    parts = list(read_frame_parts(session, stmt, columns))
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def read_frame_parts(session: Session, stmt, columns=None) -> Iterator[pd.DataFrame]:
    """Yield the rows of a select as DataFrames of at most READ_PART_ROWS rows (one empty frame when there are none),
    for a caller that adds up what each part counts without ever holding every row."""
    # Core rows: the ORM's row loading doubles the cost of big reads. Streamed: PostgreSQL's driver otherwise
    # receives every row before the first part is made (a server-side cursor; SQLite steps through rows anyway):
    # the Needling record page's peak on PostgreSQL at a million sessions went from 406 to 400 MB.
    result = session.connection().execute(stmt, execution_options={"stream_results": True})
    names = columns or list(result.keys())
    # A part at a time, column by column: a whole result's Row objects and their Python values take several times
    # the frame's memory, and given Row objects pandas probes each one for namedtuple fields (10 s for a million).
    empty = True
    for rows in result.partitions(READ_PART_ROWS):
        empty = False
        yield pd.DataFrame(dict(zip(names, map(list, zip(*rows, strict=True)), strict=True)), columns=names)
    if empty:
        yield pd.DataFrame({name: [] for name in names}, columns=names)


def whole_groups(parts: Iterator[pd.DataFrame], column: str) -> Iterator[pd.DataFrame]:
    """Yield `parts` (of rows ordered by `column`) cut afresh so that no value of `column` spans two: each part's
    rows of its last value wait for the next part. At least one frame, empty when the parts hold no row."""
    waiting = None
    for part in parts:
        part = part if waiting is None or waiting.empty else pd.concat([waiting, part], ignore_index=True)
        if part.empty:
            waiting = part
            continue
        last = (part[column] == part[column].iloc[-1]).to_numpy()
        if not last.all():
            yield part[~last]
        waiting = part[last].reset_index(drop=True)
    if waiting is not None:
        yield waiting
