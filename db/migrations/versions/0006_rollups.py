"""rollups: the technique page's sums per cell, kept current by every write (db/rollups.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 08:15:00

At a million sessions every clinic-wide figure scanned every session (about 1.5 s each on SQLite). The roll-ups
hold the same sums per cell (episode technique, condition, body region, first clinician, first month, session
technique, and session number or side-effect code), tens of thousands of rows at that size. The tables are filled
from the existing sessions here, with each measure as db/rollups.py defined it at this revision (copied, so that
this migration stays what it was when db/rollups.py changes). Two indexes on episodes give the page's filter
choices (distinct conditions and body regions) without reading every episode.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CELL = ['technique', 'condition', 'body_region', 'clinician_id', 'first_month', 'session_technique']
OUTCOME_MEASURES = ['sessions', 'with_side_effect', 'curve_sessions', 'sum_pain', 'sum_improvement', 'sum_pct',
                    'sum_pct_squared', 'last_sessions', 'responders_15', 'responders_30', 'responders_50',
                    'baseline_zero', 'single_session']
RESPONDER_COLUMNS = {15: 'responders_15', 30: 'responders_30', 50: 'responders_50'}

# The tables the roll-ups are filled from, as this revision reads them.
sessions = sa.table(
    'sessions', sa.column('id', sa.Integer()), sa.column('episode_id', sa.Integer()),
    sa.column('session_number', sa.Integer()), sa.column('session_date', sa.Date()),
    sa.column('technique', sa.String()), sa.column('pain_scale', sa.String()), sa.column('pain_before', sa.Float()),
    sa.column('clinician_id', sa.Integer()), sa.column('deleted_at', sa.DateTime()),
)
episodes = sa.table('episodes', sa.column('id', sa.Integer()), sa.column('condition', sa.String()),
                    sa.column('body_region', sa.String()))
side_effects = sa.table('side_effects', sa.column('session_id', sa.Integer()), sa.column('code', sa.String()))


def _cell_columns() -> list[sa.Column]:
    return [
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('technique', sa.String(length=16), nullable=False),
        sa.Column('condition', sa.String(length=64), nullable=False),
        sa.Column('body_region', sa.String(length=64), nullable=False),
        sa.Column('clinician_id', sa.Integer(), nullable=False),
        sa.Column('first_month', sa.Integer(), nullable=False),
        sa.Column('session_technique', sa.String(length=16), nullable=False),
    ]


def upgrade() -> None:
    counts = ['sessions', 'with_side_effect', 'curve_sessions']
    sums = ['sum_pain', 'sum_improvement', 'sum_pct', 'sum_pct_squared']
    tail = ['last_sessions', 'responders_15', 'responders_30', 'responders_50', 'baseline_zero', 'single_session']
    op.create_table(
        'outcome_rollup',
        *_cell_columns(),
        sa.Column('session_number', sa.Integer(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in counts),
        *(sa.Column(c, sa.Float(), nullable=False) for c in sums),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in tail),
        sa.UniqueConstraint(*CELL, 'session_number', name='uq_outcome_rollup_cell'),
    )
    op.create_table(
        'safety_rollup',
        *_cell_columns(),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.UniqueConstraint(*CELL, 'code', name='uq_safety_rollup_cell'),
    )
    op.create_index('ix_episodes_condition', 'episodes', ['condition'], unique=False)
    op.create_index('ix_episodes_body_region', 'episodes', ['body_region'], unique=False)
    _fill()


def _points(scale, pain):
    """Return pain on the 0–100 scale (NRS × 10)."""
    return sa.case((scale == 'nrs_10', pain * 10.0), else_=sa.cast(pain, sa.Float))


def _flag(condition):
    return sa.case((condition, 1), else_=0)


def _fill() -> None:
    """Fill both roll-ups from the live sessions: each cell's sums of the per-session (per-side-effect) measures."""
    first, later, s = sessions.alias('first_session'), sessions.alias('later'), sessions
    baseline = _points(first.c.pain_scale, first.c.pain_before)
    last = (sa.select(sa.func.max(later.c.session_number))
            .where(later.c.episode_id == first.c.episode_id, later.c.deleted_at.is_(None)).scalar_subquery())
    month = sa.cast(sa.extract('year', first.c.session_date) * 100 + sa.extract('month', first.c.session_date),
                    sa.Integer)
    e = (
        sa.select(first.c.episode_id, first.c.technique,
                  sa.func.coalesce(episodes.c.condition, '').label('condition'),
                  sa.func.coalesce(episodes.c.body_region, '').label('body_region'),
                  sa.func.coalesce(first.c.clinician_id, 0).label('clinician_id'), month.label('first_month'),
                  baseline.label('baseline'), last.label('last'))
        .join(episodes, episodes.c.id == first.c.episode_id)
        .where(first.c.session_number == 1, first.c.deleted_at.is_(None))
        .cte().prefix_with('MATERIALIZED')
    )
    key = [e.c.technique, e.c.condition, e.c.body_region, e.c.clinician_id, e.c.first_month,
           s.c.technique.label('session_technique')]
    pain = _points(s.c.pain_scale, s.c.pain_before)
    counted = e.c.baseline > 0
    pct = sa.case((counted, 100.0 * (e.c.baseline - pain) / e.c.baseline), else_=0.0)
    at_last = sa.and_(counted, s.c.session_number == e.c.last, e.c.last > 1)
    per_session = (
        sa.select(
            *key, s.c.session_number, sa.literal(1).label('sessions'),
            _flag(sa.exists().where(side_effects.c.session_id == s.c.id)).label('with_side_effect'),
            _flag(counted).label('curve_sessions'),
            sa.case((counted, pain), else_=0.0).label('sum_pain'),
            sa.case((counted, e.c.baseline - pain), else_=0.0).label('sum_improvement'),
            pct.label('sum_pct'), (pct * pct).label('sum_pct_squared'),
            _flag(at_last).label('last_sessions'),
            *(_flag(sa.and_(at_last, pct >= t)).label(name) for t, name in RESPONDER_COLUMNS.items()),
            _flag(sa.and_(s.c.session_number == 1, e.c.baseline <= 0)).label('baseline_zero'),
            _flag(sa.and_(s.c.session_number == 1, counted, e.c.last <= 1)).label('single_session'),
        )
        .join(e, e.c.episode_id == s.c.episode_id)
        .where(s.c.deleted_at.is_(None))
    )
    per_effect = (
        sa.select(*key, side_effects.c.code, sa.literal(1).label('events'))
        .join(s, s.c.id == side_effects.c.session_id)
        .join(e, e.c.episode_id == s.c.episode_id)
        .where(s.c.deleted_at.is_(None))
    )
    for table, cell, measures, rows in (
        ('outcome_rollup', [*CELL, 'session_number'], OUTCOME_MEASURES, per_session),
        ('safety_rollup', [*CELL, 'code'], ['events'], per_effect),
    ):
        r = rows.subquery('detail')
        grouped = sa.select(*(r.c[k] for k in cell), *(sa.func.sum(r.c[m]).label(m) for m in measures)).group_by(
            *(r.c[k] for k in cell))
        target = sa.table(table, *(sa.column(c) for c in (*cell, *measures)))
        op.get_bind().execute(target.insert().from_select([*cell, *measures], grouped))


def downgrade() -> None:
    op.drop_index('ix_episodes_body_region', table_name='episodes')
    op.drop_index('ix_episodes_condition', table_name='episodes')
    op.drop_table('safety_rollup')
    op.drop_table('outcome_rollup')
