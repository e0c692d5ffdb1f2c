"""Session numbers, k of docs/DESIGN.md section 3: 1, 2, 3… per episode in date order, ties in entry (id) order.

A unique index holds the numbers of an episode's live sessions distinct after every single statement, so numbers
change in two steps, the same for a single write and for an import: the sessions whose numbers change first step
aside, each to a number of its own above every real one; then, once the block of writes in between has run, each
takes its final number.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from db import bulk
from db.models import LIVE_SESSIONS, TreatmentSession

ASIDE = 1_000_000  # above every real session number: a session waiting for its number holds ASIDE + its id
# Numbers are written to the Core table: a TreatmentSession object already loaded keeps its old number until refreshed.
_SESSIONS = TreatmentSession.__table__


def aside(session_id: int) -> int:
    """Return the number a session holds while it waits for its final one: above every real number, its own."""
    return ASIDE + session_id


def in_date_order(sessions: Iterable[tuple[int, date, int, Hashable]]) -> dict[Hashable, int]:
    """Return the number of each session, given as (episode, date, entry order, key): 1, 2, 3… per episode."""
    numbers: dict[Hashable, int] = {}
    k, previous = 0, None
    for episode, _, _, key in sorted(sessions):
        k = k + 1 if episode == previous else 1
        previous = episode
        numbers[key] = k
    return numbers


def renumber(session: Session, episode_ids: Collection[int]) -> None:
    """Give the live sessions of these episodes their numbers by date again, after a write that may move them."""
    rows = []
    for chunk in bulk.chunks(sorted(episode_ids)):
        # Through the ORM, so that the unit of work's pending changes are flushed before the numbers are read.
        rows += session.execute(
            select(TreatmentSession.episode_id, TreatmentSession.session_date, TreatmentSession.id,
                   TreatmentSession.session_number)
            .where(TreatmentSession.episode_id.in_(chunk), LIVE_SESSIONS)
        ).all()
    current = {session_id: number for _, _, session_id, number in rows}
    wanted = in_date_order((episode, day, session_id, session_id) for episode, day, session_id, _ in rows)
    with renumbering(session, {sid: k for sid, k in wanted.items() if current[sid] != k}):
        pass  # no other write: the numbers only move among these sessions


@contextmanager
def renumbering(session: Session, numbers: dict[int, int]) -> Iterator[None]:
    """Step these sessions aside, run the block, then give each its number (`numbers`: session id -> number).

    The block may give the numbers these sessions leave to others: new sessions, or sessions moved between episodes.
    """
    sessions = _SESSIONS.c
    for chunk in bulk.chunks(list(numbers)):
        session.execute(update(_SESSIONS).where(sessions.id.in_(chunk)).values(session_number=ASIDE + sessions.id))
    yield
    if numbers:
        session.execute(
            update(_SESSIONS).where(sessions.id == bindparam("b_id")).values(session_number=bindparam("number")),
            [{"b_id": session_id, "number": k} for session_id, k in numbers.items()],
        )
