"""indexes at scale: covering indexes for the clinic-wide aggregates, side effects by severity

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 05:00:00

The technique page aggregates every live session. These indexes let it read narrow index entries instead of the
wide session rows (SQLite counts an index as covering only if it holds every column the query names, hence
deleted_at as a column too), and find the few significant or serious side effects without a scan. The old
(technique, session_number) index served no query any more, and SQLite's planner preferred a skip-scan over it.
Plain CREATE INDEX: no table is rebuilt.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_index(
        'ix_sessions_number_live', 'sessions',
        ['session_number', 'episode_id', 'technique', 'pain_scale', 'pain_before', 'session_date', 'clinician_id',
         'deleted_at'],
        unique=False, sqlite_where=LIVE, postgresql_where=LIVE,
    )
    op.create_index(
        'ix_sessions_episode_live', 'sessions',
        ['episode_id', 'session_number', 'technique', 'pain_scale', 'pain_before', 'deleted_at'],
        unique=False, sqlite_where=LIVE, postgresql_where=LIVE,
    )
    op.create_index('ix_side_effects_severity', 'side_effects', ['severity'], unique=False)
    op.drop_index('ix_sessions_technique_number', table_name='sessions')


def downgrade() -> None:
    op.create_index('ix_sessions_technique_number', 'sessions', ['technique', 'session_number'], unique=False)
    op.drop_index('ix_side_effects_severity', table_name='side_effects')
    op.drop_index('ix_sessions_episode_live', table_name='sessions')
    op.drop_index('ix_sessions_number_live', table_name='sessions')
