"""side effect review: managers mark significant and serious events as reviewed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 04:30:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('side_effects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reviewed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_side_effects_reviewed_by_users', 'users', ['reviewed_by'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('side_effects', schema=None) as batch_op:
        batch_op.drop_constraint('fk_side_effects_reviewed_by_users', type_='foreignkey')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('reviewed_at')
