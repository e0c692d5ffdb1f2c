"""drop unused indexes: four that no query uses cost every insert (an import writes 100,000 rows at a time)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 08:30:00

- ix_side_effects_session_id: uq_side_effects_session_code starts with session_id and serves every lookup by it.
- ix_audit_log_at: the trail is listed newest first by id, which is time order in an append-only table.
- ix_sessions_date, ix_sessions_clinician_id: no query filters sessions by date or clinician on their own; the
  first-session filters read ix_sessions_number_live, which holds both columns.
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

DROPPED = [
    ('ix_side_effects_session_id', 'side_effects', ['session_id']),
    ('ix_audit_log_at', 'audit_log', ['at']),
    ('ix_sessions_date', 'sessions', ['session_date']),
    ('ix_sessions_clinician_id', 'sessions', ['clinician_id']),
]


def upgrade() -> None:
    for name, table, _ in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, columns in DROPPED:
        op.create_index(name, table, columns, unique=False)
