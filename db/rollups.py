"""Roll-ups: the technique page's sums per cell, kept current by every write, so the page reads thousands of rows.

A cell is what the page filters and groups by: the episode's technique, condition, body region, first clinician
and first month, and the session's technique and number (`OutcomeRollup`). Each roll-up row is the sum over the
cell of `detail_rows`, one row per live session of an episode with a live first session, and nothing more;
`detail_rows` holds the only definition of each measure, and it is built on docs/DESIGN.md section 3 as in
analytics.outcomes (tests hold them equal). Only what a figure reads is summed: the curve's sums and the excluded
episodes (the responder counts and the safety figures read the sessions themselves, `db.queries`).

Keeping them current, inside each write's transaction: a write calls `touch(session, episode_ids)` (or
`touch_patients`, when it may create episodes) before it changes anything (their contribution is noted), and
`write_session` calls `settle(session)` before committing: the new contribution less the old is added to each
cell in one upsert, and a cell left with no session is deleted.
Writes are serialised (SQLite BEGIN IMMEDIATE, PostgreSQL advisory lock), so no two of them interleave here.
`rebuild` recomputes everything (the migration that made the tables, the benchmark's bulk load, large imports).

Reading (`cells`): the whole months of a date range come from the roll-ups; the part of a month that the range cuts
comes from `detail_rows`, so every filter is exact.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    extract,
    false,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session

from db.models import LIVE_SESSIONS, ROLLUP_CELL, Episode, OutcomeRollup, Patient, TreatmentSession, User

S = TreatmentSession
PENDING = "rollups_pending"  # key in Session.info: what this unit of work touched, and the cells' net changes
REBUILD = "rollups_rebuild"  # settle() rebuilds everything: the write touches too much for sums to pay
REBUILD_MIN, REBUILD_SHARE = 1000, 0.25  # patients touched by one write, and their share of all patients
CHUNK = 5000  # episode ids (or pseudonyms) per statement: well under SQLite's 32,766 parameters
OUTCOME_KEY = (*ROLLUP_CELL, "session_number")
# `sessions` first: a cell whose sessions fall to 0 is deleted (`_write`).
OUTCOME_MEASURES = (
    "sessions", "curve_sessions", "sum_pain", "sum_improvement", "sum_pct", "sum_pct_squared", "baseline_zero",
    "single_session",
)  # fmt: skip
TABLE = OutcomeRollup.__table__


def _points(scale, column):
    """Return a pain column on the 0–100 scale (NRS × 10), as analytics.outcomes.to_points does."""
    return case((scale == "nrs_10", column * 10.0), else_=cast(column, Float))


def month_of(day) -> object:
    """Return yyyymm of a date (Python date or SQL expression)."""
    if isinstance(day, date):
        return day.year * 100 + day.month
    return cast(extract("year", day) * 100 + extract("month", day), Integer)


def _flag(condition):
    return case((condition, 1), else_=0)


def detail_rows(*, by_episode: bool = False, dates: tuple[date, date] | None = None, dims=()):
    """Return a select of one row per live session with its cell and measures.

    Restricted, with `by_episode`, to the episodes of the expanding parameter `episode_ids`; to episodes whose
    first session falls within `dates`; and by the `dims` conditions (see `_dims`).
    """
    first = aliased(S, name="first_session")
    baseline = _points(first.pain_scale, first.pain_before)
    later = aliased(S, name="later")
    last = (
        select(func.max(later.session_number))
        .where(later.episode_id == first.episode_id, later.deleted_at.is_(None))
        .scalar_subquery()
    )
    episode = (
        select(
            first.episode_id,
            first.technique,
            func.coalesce(Episode.condition, "").label("condition"),
            func.coalesce(Episode.body_region, "").label("body_region"),
            func.coalesce(first.clinician_id, 0).label("clinician_id"),
            month_of(first.session_date).label("first_month"),
            baseline.label("baseline"),
            last.label("last"),  # the episode's last live session number
        )
        .join(Episode, Episode.id == first.episode_id)
        .where(first.session_number == 1, first.deleted_at.is_(None))
    )
    if by_episode:
        episode = episode.where(first.episode_id.in_(bindparam("episode_ids", expanding=True)))
    if dates is not None:
        episode = episode.where(first.session_date.between(*dates))
    # Materialised: SQLite would otherwise inline it and evaluate `last` once per use in every session row.
    e = episode.cte().prefix_with("MATERIALIZED")  # anonymous: a union of date stretches holds several
    key = [e.c.technique, e.c.condition, e.c.body_region, e.c.clinician_id, e.c.first_month]
    conditions = [LIVE_SESSIONS, *_dims(e.c, dims)]
    last = e.c.last
    pain = _points(S.pain_scale, S.pain_before)
    counted = e.c.baseline > 0
    pct = case((counted, 100.0 * (e.c.baseline - pain) / e.c.baseline), else_=0.0)
    return (
        select(
            *key,
            S.technique.label("session_technique"),
            S.session_number,
            literal(1).label("sessions"),
            _flag(counted).label("curve_sessions"),
            case((counted, pain), else_=0.0).label("sum_pain"),
            case((counted, e.c.baseline - pain), else_=0.0).label("sum_improvement"),
            pct.label("sum_pct"),
            (pct * pct).label("sum_pct_squared"),
            _flag(and_(S.session_number == 1, e.c.baseline <= 0)).label("baseline_zero"),
            _flag(and_(S.session_number == 1, counted, last <= 1)).label("single_session"),
        )
        .join(e, e.c.episode_id == S.episode_id)
        .where(*conditions)
    )


def _dims(columns, dims) -> list:
    """Return WHERE conditions for the filter's dimensions, on columns named as in ROLLUP_CELL."""
    conditions = []
    for name, values in dims:
        if name == "clinicians":
            conditions.append(columns.clinician_id.in_(select(User.id).where(User.username.in_(values))))
        else:
            conditions.append(columns[name].in_(values))
    return conditions


def _grouped(rows):
    r = rows.subquery("detail")
    return select(*(r.c[k] for k in OUTCOME_KEY), *(func.sum(r.c[m]).label(m) for m in OUTCOME_MEASURES)).group_by(
        *(r.c[k] for k in OUTCOME_KEY)
    )


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


@functools.cache
def _contribution():
    """Return the statement of some episodes' sums per cell (built once: building it takes milliseconds)."""
    return _grouped(detail_rows(by_episode=True))


def _sums(session: Session, episode_ids: set[int], sign: int, cells: dict) -> None:
    """Add `sign` × the episodes' sums per cell to `cells` ({cell: [measures]})."""
    width = len(OUTCOME_KEY)
    for ids in _chunks(sorted(episode_ids)):
        for row in session.execute(_contribution(), {"episode_ids": ids}):
            cell = cells.setdefault(tuple(row[:width]), [0] * len(OUTCOME_MEASURES))
            for i, value in enumerate(row[width:]):
                cell[i] += sign * value


@functools.cache
def _statements(dialect_name: str):
    """Return (upsert adding the measures to a cell, delete of a cell left empty), built once like `_contribution`."""
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(TABLE)
    adding = {m: TABLE.c[m] + insert.excluded[m] for m in OUTCOME_MEASURES}
    upsert = insert.on_conflict_do_update(index_elements=list(OUTCOME_KEY), set_=adding)
    empty = delete(TABLE).where(*(TABLE.c[k] == bindparam(f"cell_{k}") for k in OUTCOME_KEY), TABLE.c.sessions == 0)
    return upsert, empty


def _write(session: Session, deltas: dict) -> None:
    """Add each cell's net change to the roll-up in one upsert, and delete the cells that may be left empty."""
    changed = {cell: values for cell, values in deltas.items() if any(values)}
    if not changed:
        return
    upsert, empty = _statements(session.get_bind().dialect.name)
    session.execute(upsert, [dict(zip((*OUTCOME_KEY, *OUTCOME_MEASURES), (*cell, *values), strict=True))
                             for cell, values in changed.items()])
    fewer = [cell for cell, values in changed.items() if values[0] < 0]  # the first measure: sessions
    if fewer:
        session.execute(empty, [{f"cell_{k}": v for k, v in zip(OUTCOME_KEY, cell, strict=True)} for cell in fewer])


def _pending(session: Session) -> dict:
    """Return this unit of work's touched episodes and patients, and the cells' net changes so far."""
    return session.info.setdefault(PENDING, {"episodes": set(), "patients": set(), "deltas": {}})


def touch(session: Session, episode_ids: Iterable[int]) -> None:
    """Note these episodes' contribution, to be taken out at `settle`; call before changing them."""
    if session.info.get(REBUILD):
        return
    pending = _pending(session)
    fresh = set(episode_ids) - pending["episodes"]
    if fresh:
        _sums(session, fresh, -1, pending["deltas"])
        pending["episodes"] |= fresh


def touch_patients(session: Session, pseudonyms: Iterable[str]) -> None:
    """Touch every episode of these patients, and at `settle` those they have then (for imports, which create some).

    When they are many and a large share of all patients (a first import), `settle` rebuilds the roll-ups instead:
    one pass over every session is cheaper than taking out and putting back most of them.
    """
    if session.info.get(REBUILD):
        return
    pending = _pending(session)
    fresh = set(pseudonyms) - pending["patients"]
    if len(fresh) > REBUILD_MIN and len(fresh) > REBUILD_SHARE * session.scalar(select(func.count(Patient.id))):
        session.info[REBUILD] = True
        return
    touch(session, _episodes_of(session, fresh))
    pending["patients"] |= fresh


def _episodes_of(session: Session, pseudonyms: set[str]) -> list[int]:
    found = []
    for chunk in _chunks(sorted(pseudonyms)):
        found += session.scalars(
            select(Episode.id).join(Patient, Patient.id == Episode.patient_id).where(Patient.pseudonym.in_(chunk))
        )
    return found


def settle(session: Session) -> None:
    """Write the touched episodes' change to the roll-ups (write_session calls this before committing)."""
    pending = session.info.pop(PENDING, None)
    if session.info.pop(REBUILD, False):
        rebuild(session)
        return
    if pending is None:
        return
    session.flush()
    episodes = pending["episodes"] | set(_episodes_of(session, pending["patients"]))
    _sums(session, episodes, 1, pending["deltas"])
    _write(session, pending["deltas"])


def rebuild(session: Session) -> None:
    """Recompute the roll-up from the sessions (after a bulk load that bypassed `touch`, or to check it)."""
    session.execute(delete(TABLE))
    session.execute(TABLE.insert().from_select([*OUTCOME_KEY, *OUTCOME_MEASURES], _grouped(detail_rows())))


# -- reading ------------------------------------------------------------------------------------------------------
def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def split_range(start: date | None, end: date | None) -> tuple[tuple[int | None, int | None] | None, list]:
    """Split a first-session date range into whole months (yyyymm bounds, None: open) and the partial stretches.

    Returns (months, stretches): `months` is None when no whole month is inside the range; each stretch is a
    (first day, last day) to read in detail.
    """
    if start and end and start > end:
        return None, []
    stretches = []
    low = high = None
    if start:
        if start.day == 1:
            low = month_of(start)
        else:
            stretch_end = min(_month_end(start), end) if end else _month_end(start)
            stretches.append((start, stretch_end))
            following = _month_end(start) + timedelta(days=1)
            low = month_of(following)
    if end:
        if end == _month_end(end):
            high = month_of(end)
        else:
            stretch = (max(end.replace(day=1), start) if start else end.replace(day=1), end)
            if stretch not in stretches:
                stretches.append(stretch)
            high = month_of(end.replace(day=1)) - 1 if end.month > 1 else (end.year - 1) * 100 + 12
    if low is not None and high is not None and low > high:
        return None, stretches
    return (low, high), stretches


def cells(where):
    """Return a subquery of the cells the filter `where` (a queries.OutcomeFilter) selects, with their measures.

    Whole months come from the roll-up, the stretches of a month that the date range cuts from `detail_rows`.
    """
    dims = [
        (name, values)
        for name, values in (
            ("condition", where.conditions), ("body_region", where.body_regions),
            ("clinicians", where.clinicians), ("technique", where.techniques),
        )
        if values
    ]  # fmt: skip
    columns = [*OUTCOME_KEY, *OUTCOME_MEASURES]
    months, stretches = split_range(where.start, where.end)
    parts = []
    if months is not None:
        stmt = select(*(TABLE.c[c] for c in columns)).where(*_dims(TABLE.c, dims))
        low, high = months
        if low is not None:
            stmt = stmt.where(TABLE.c.first_month >= low)
        if high is not None:
            stmt = stmt.where(TABLE.c.first_month <= high)
        parts.append(stmt)
    for stretch in stretches:
        rows = detail_rows(dates=stretch, dims=dims).subquery("stretch")
        parts.append(select(*(rows.c[c] for c in columns)))
    if not parts:  # an empty range: no cell
        parts.append(select(*(TABLE.c[c] for c in columns)).where(false()))
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("outcome_cells")
