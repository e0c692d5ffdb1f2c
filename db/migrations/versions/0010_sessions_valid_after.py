"""sessions valid after: a logout ends every session of the account, not only the browser tab it was made in

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 12:00:00

- users.sessions_valid_after: every session of the account that logged in at or before this time is over. Set by a
  logout, a password reset, a role change and disabling the account; each app session compares its own login time
  with it at every click (`dashboard.auth.current_actor`). Empty for every account until then.
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0010'
down_revision: Union[str, None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # A nullable column: ALTER TABLE … ADD COLUMN on both backends, no table rebuild on SQLite.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sessions_valid_after', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('sessions_valid_after')
