"""Roll-ups: the technique page's sums, kept current by every write, so that every read is of a bounded size.

A fine cell is what the page filters and groups by: the episode's technique, condition, body region, first
clinician and first month, and the session's number. Its sums are those of `detail_rows`, one row per live session
of an episode with a live first session, and nothing more; `detail_rows` holds the only definition of each measure,
and it is built on docs/DESIGN.md section 3 as in analytics.outcomes (tests hold them equal). Only what a figure
reads is summed: the curve's sums and the excluded episodes (the responder counts and the safety figures read the
sessions themselves, `db.queries`).

The roll-up (`OutcomeRollup`) holds those sums per technique and session number, of all episodes (dimension "all")
and of each value of one filter (dimension "condition", "body_region", "clinician_id" or "first_month"): one row per
value of one filter, never of two, so that it grows with the sum of the filters' values and not with their product
(issue #15: keyed by all of them at once, with 60 clinicians over 25 months it held 0.27 rows per session).

Keeping it current, inside each write's transaction: a write calls `touch(session, episode_ids)` (or
`touch_patients`, when it may create episodes) before it changes anything (their contribution is noted), and
`write_session` calls `settle(session)` before committing: the new contribution less the old is added to each
row in one upsert, and a row left with no session is deleted.
Writes are serialised (SQLite BEGIN IMMEDIATE, PostgreSQL advisory lock), so no two of them interleave here.
`rebuild` recomputes everything (the migration that made the table, the benchmark's bulk load, large imports).

Reading (`cells`): no filter, or one filter (any of its values, and any techniques), reads that dimension's rows; a
date range alone reads its whole months from the month rows and the part of a month that it cuts from `detail_rows`;
two filters or more (a date range counts as one) read `detail_rows` of the episodes they select. Every filter is
exact.
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

from db import bulk
from db.models import (
    LIVE_SESSIONS,
    ROLLUP_CELL,
    ROLLUP_DIMENSIONS,
    Episode,
    OutcomeRollup,
    Patient,
    TreatmentSession,
    User,
)

S = TreatmentSession
PENDING = "rollups_pending"  # key in Session.info: what this unit of work touched, and the cells' net changes
REBUILD = "rollups_rebuild"  # settle() rebuilds everything: the write touches too much for sums to pay
REBUILD_MIN, REBUILD_SHARE = 1000, 0.25  # patients touched by one write, and their share of all patients
CHUNK = 5000  # episode ids (or pseudonyms) per statement: well under SQLite's 32,766 parameters
FILTERS = ("condition", "body_region", "clinician_id", "first_month")  # the dimensions, and a fine cell's columns
BLANK = {"condition": "", "body_region": "", "clinician_id": 0, "first_month": 0}  # a column not of the dimension
FINE_KEY = ("technique", *FILTERS, "session_number")
# `rebuild` sums the sessions in two passes, each by two filters, and each dimension's rows from one of them: one pass
# by all four filters would group by their product, as the roll-up once did, and take half as long again.
REBUILD_PASSES = ((("condition", "body_region"), ("all", "condition", "body_region")),
                  (("clinician_id", "first_month"), ("clinician_id", "first_month")))
ROLLUP_KEY = (*ROLLUP_CELL, "session_number")
# `sessions` first: a row whose sessions fall to 0 is deleted (`_write`).
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


def detail_rows(*, of: str | None = None, dates: tuple[date | None, date | None] = (None, None), dims=()):
    """Return a select of one row per live session with its episode id, fine cell and measures.

    Restricted, with `of`, to the episodes of the expanding parameter it names: `episode_ids`, or `pseudonyms` (the
    episodes of these patients); to episodes whose first session falls within `dates` (first and last day, None:
    open); and by the `dims` conditions (see `_dims`).
    """
    first = aliased(S, name="first_session")
    baseline = _points(first.pain_scale, first.pain_before)
    later = aliased(S, name="later")
    last = (select(func.max(later.session_number))
            .where(later.episode_id == first.episode_id, later.deleted_at.is_(None)).scalar_subquery())
    episode = (
        select(first.episode_id, first.technique, func.coalesce(Episode.condition, "").label("condition"),
               func.coalesce(Episode.body_region, "").label("body_region"),
               func.coalesce(first.clinician_id, 0).label("clinician_id"),
               month_of(first.session_date).label("first_month"), baseline.label("baseline"),
               last.label("last"))  # last: the episode's last live session number
        .join(Episode, Episode.id == first.episode_id)
        .where(first.session_number == 1, first.deleted_at.is_(None))
    )
    if of == "episode_ids":
        episode = episode.where(first.episode_id.in_(bindparam(of, expanding=True)))
    elif of == "pseudonyms":
        # On the first session's episode id, so that SQLite looks the few up rather than scan every first session.
        chosen = select(Episode.id).join(Patient, Patient.id == Episode.patient_id).where(
            Patient.pseudonym.in_(bindparam(of, expanding=True)))
        episode = episode.where(first.episode_id.in_(chosen))
    start, end = dates
    if start is not None:
        episode = episode.where(first.session_date >= start)
    if end is not None:
        episode = episode.where(first.session_date <= end)
    # On the stored columns, inside the episodes' part: the episodes left out are never materialised. A condition or
    # body region picks episode ids by its index, so that SQLite looks their first sessions up rather than scan them.
    stored = {"technique": first.technique, "clinician_id": first.clinician_id}
    of_episode = {"condition": Episode.condition, "body_region": Episode.body_region}
    for name, values in dims:
        if name in of_episode:
            episode = episode.where(first.episode_id.in_(select(Episode.id).where(of_episode[name].in_(values))))
    episode = episode.where(*_dims(stored, [(name, values) for name, values in dims if name in stored]))
    # Materialised: SQLite would otherwise inline it and evaluate `last` once per use in every session row.
    e = episode.cte().prefix_with("MATERIALIZED")  # anonymous: a union of date stretches holds several
    last = e.c.last
    pain = _points(S.pain_scale, S.pain_before)
    counted = e.c.baseline > 0
    pct = case((counted, 100.0 * (e.c.baseline - pain) / e.c.baseline), else_=0.0)
    return (
        select(
            e.c.episode_id,
            e.c.technique,
            *(e.c[name] for name in FILTERS),
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
        .where(LIVE_SESSIONS)
    )


def _dims(columns, dims) -> list:
    """Return WHERE conditions for the filter's dimensions (name, values), on the columns of those names."""
    conditions = []
    for name, values in dims:
        if name == "clinician_id":  # the filter names clinicians by username
            conditions.append(columns["clinician_id"].in_(select(User.id).where(User.username.in_(values))))
        else:
            conditions.append(columns[name].in_(values))
    return conditions


def _grouped(rows, key=FINE_KEY):
    r = rows.subquery("detail")
    return select(*(r.c[k] for k in key), *(func.sum(r.c[m]).label(m) for m in OUTCOME_MEASURES)).group_by(
        *(r.c[k] for k in key)
    )


@functools.cache
def _contribution(of: str):
    """Return the statement of some episodes' sums per episode and fine cell (`detail_rows`' `of`), built once:
    building it takes longer than running it."""
    return _grouped(detail_rows(of=of), key=("episode_id", *FINE_KEY))


def _sums(session: Session, of: str, values: set, sign: int, pending: dict) -> None:
    """Add `sign` × the sums of the episodes `of` these `values` to the pending fine cells, each episode once: those
    already in `pending["episodes"]` are left out, and the others added to it."""
    cells, done = pending["deltas"], set(pending["episodes"])
    width = len(FINE_KEY)
    connection = session.connection()  # Core rows: the ORM's statement handling costs more than SQLite's work here
    for chunk in bulk.chunks(sorted(values), CHUNK):
        for episode_id, *row in connection.execute(_contribution(of), {of: chunk}):
            if episode_id in done:
                continue
            pending["episodes"].add(episode_id)
            cell = cells.setdefault(tuple(row[:width]), [0] * len(OUTCOME_MEASURES))
            for i, value in enumerate(row[width:]):
                cell[i] += sign * value


def _rollup_key(dimension: str, filters) -> list:
    """Return the roll-up columns of `dimension` for a fine cell's FILTERS values: its own kept, the others blank."""
    return [value if name == dimension else BLANK[name] for name, value in zip(FILTERS, filters, strict=True)]


def _by_dimension(fine: dict) -> dict:
    """Return the net change of each roll-up row ({ROLLUP_KEY: [measures]}) from those of the fine cells."""
    rows: dict = {}
    for (technique, *filters, number), values in fine.items():
        if not any(values):
            continue
        for dimension in ROLLUP_DIMENSIONS:
            key = (dimension, *_rollup_key(dimension, filters), technique, number)
            row = rows.setdefault(key, [0] * len(OUTCOME_MEASURES))
            for i, value in enumerate(values):
                row[i] += value
    return rows


@functools.cache
def _statements(dialect_name: str):
    """Return (upsert adding the measures to a row, delete of a row left empty), built once like `_contribution`."""
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(TABLE)
    adding = {m: TABLE.c[m] + insert.excluded[m] for m in OUTCOME_MEASURES}
    upsert = insert.on_conflict_do_update(index_elements=list(ROLLUP_KEY), set_=adding)
    empty = delete(TABLE).where(*(TABLE.c[k] == bindparam(f"row_{k}") for k in ROLLUP_KEY), TABLE.c.sessions == 0)
    return upsert, empty


def _write(session: Session, fine: dict) -> None:
    """Add each roll-up row's net change in one upsert, and delete the rows that may be left empty."""
    changed = {key: values for key, values in _by_dimension(fine).items() if any(values)}
    if not changed:
        return
    upsert, empty = _statements(session.get_bind().dialect.name)
    connection = session.connection()
    connection.execute(upsert, [dict(zip((*ROLLUP_KEY, *OUTCOME_MEASURES), (*key, *values), strict=True))
                                for key, values in changed.items()])
    fewer = [key for key, values in changed.items() if values[0] < 0]  # the first measure: sessions
    if fewer:
        connection.execute(empty, [{f"row_{k}": v for k, v in zip(ROLLUP_KEY, key, strict=True)} for key in fewer])


def _pending(session: Session) -> dict:
    """Return this unit of work's touched episodes and patients, and the fine cells' net changes so far."""
    return session.info.setdefault(PENDING, {"episodes": set(), "patients": set(), "deltas": {}})


def touch(session: Session, episode_ids: Iterable[int]) -> None:
    """Note these episodes' contribution, to be taken out at `settle`; call before changing them."""
    if session.info.get(REBUILD):
        return
    pending = _pending(session)
    fresh = set(episode_ids) - pending["episodes"]
    if fresh:
        _sums(session, "episode_ids", fresh, -1, pending)
        pending["episodes"] |= fresh  # those without a live session too: they may have one at `settle`


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
    if fresh:
        _sums(session, "pseudonyms", fresh, -1, pending)
        pending["patients"] |= fresh


def settle(session: Session) -> None:
    """Write the touched episodes' change to the roll-ups (write_session calls this before committing)."""
    pending = session.info.pop(PENDING, None)
    if session.info.pop(REBUILD, False):
        rebuild(session)
        return
    if pending is None:
        return
    session.flush()
    touched = pending["episodes"]
    again = {"episodes": set(), "deltas": pending["deltas"]}  # each touched episode's sums now, added once
    _sums(session, "pseudonyms", pending["patients"], 1, again)  # with the episodes the write gave them
    if touched - again["episodes"]:
        _sums(session, "episode_ids", touched - again["episodes"], 1, again)
    _write(session, pending["deltas"])


def dimension_rows(of: str | None = None):
    """Return the union of every dimension's roll-up rows (columns ROLLUP_KEY, then OUTCOME_MEASURES) of the live
    sessions, or of those `detail_rows`' `of` names: summed in REBUILD_PASSES, each dimension from one of them."""
    per_dimension = []
    for filters, dimensions in REBUILD_PASSES:
        part = _grouped(detail_rows(of=of), key=("technique", "session_number", *filters)).cte()
        sums = [func.sum(part.c[m]).label(m) for m in OUTCOME_MEASURES]
        for dimension in dimensions:
            own = [part.c[dimension]] if dimension in FILTERS else []
            kept = [part.c[name] if name == dimension else literal(BLANK[name]) for name in FILTERS]
            per_dimension.append(select(literal(dimension), *kept, part.c.technique, part.c.session_number, *sums)
                                 .group_by(*own, part.c.technique, part.c.session_number))
    return union_all(*per_dimension)


def rebuild(session: Session) -> None:
    """Recompute the roll-up from the sessions (after a bulk load that bypassed `touch`, or to check it)."""
    session.execute(delete(TABLE))
    rows = dimension_rows()
    # In the order a save changes them: its rows of every dimension (one technique and session number) are stored
    # side by side (SQLite's row ids), so that a save writes one or two pages of the table rather than five.
    rows = rows.order_by(rows.selected_columns.technique, rows.selected_columns.session_number)
    session.execute(TABLE.insert().from_select([*ROLLUP_KEY, *OUTCOME_MEASURES], rows))


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
    """Return a subquery of rows whose sums per technique and session number are the filter's (`where`, a
    queries.OutcomeFilter): columns technique, session_number and the measures (see the module's docstring)."""
    chosen = (("condition", where.conditions), ("body_region", where.body_regions), ("clinician_id", where.clinicians))
    dims = [(name, values) for name, values in chosen if values]
    techniques = [("technique", where.techniques)] if where.techniques else []
    dated = where.start is not None or where.end is not None
    columns = ["technique", "session_number", *OUTCOME_MEASURES]

    def rollup_rows(dimension: str):
        return select(*(TABLE.c[c] for c in columns)).where(TABLE.c.dimension == dimension,
                                                            *_dims(TABLE.c, dims + techniques))

    def detail(dates):
        rows = detail_rows(dates=dates, dims=dims + techniques).subquery("detail")
        return select(*(rows.c[c] for c in columns))

    if len(dims) + dated > 1:  # two filters or more: the episodes they select
        parts = [detail((where.start, where.end))]
    elif not dated:
        parts = [rollup_rows(dims[0][0] if dims else "all")]
    else:
        months, stretches = split_range(where.start, where.end)
        parts = [detail(stretch) for stretch in stretches]
        if months is not None:
            low, high = months
            whole = rollup_rows("first_month")
            if low is not None:
                whole = whole.where(TABLE.c.first_month >= low)
            if high is not None:
                whole = whole.where(TABLE.c.first_month <= high)
            parts.insert(0, whole)
        if not parts:  # an empty range: no row
            parts = [rollup_rows("all").where(false())]
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("outcome_cells")
