"""rollups: the technique page's sums per cell, kept current by every write (db/rollups.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 08:15:00

At a million sessions every clinic-wide figure scanned every session (about 1.5 s each on SQLite). The roll-ups
hold the same sums per cell (episode technique, condition, body region, first clinician, first month, session
technique, and session number or side-effect code), tens of thousands of rows at that size. The tables are filled
from the existing sessions here, with the one definition of each measure in db/rollups.py. Two indexes on episodes
give the page's filter choices (distinct conditions and body regions) without reading every episode.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlmodel import Session


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CELL = ['technique', 'condition', 'body_region', 'clinician_id', 'first_month', 'session_technique']


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
    from db import rollups  # the one definition of the measures

    rollups.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index('ix_episodes_body_region', table_name='episodes')
    op.drop_index('ix_episodes_condition', table_name='episodes')
    op.drop_table('safety_rollup')
    op.drop_table('outcome_rollup')
