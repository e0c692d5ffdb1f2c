"""episodes of care: a number per patient and condition, a goal, start and discharge dates, a discharge status

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00

Until now an episode was a patient and a condition for ever (issue #14, item 5). An episode now has
- `number`: 1, 2, 3… per patient and condition, the interchange format's `episode` column. The existing episodes
  are numbered per patient and condition in id order (as a rule there was one of each);
- `goal` (optional text), `started_on` (the first session's date: a live one, else any, else the day the row was
  made), `discharged_on` and `status` (`goal_met`, `dropped_out`, `referred_on`, `other`; both empty: open). Every
  existing episode is open;
- the unique index (patient, condition, number), which also finds a patient's episodes of a condition, in place
  of ix_episodes_patient_condition.
On SQLite, making the new columns NOT NULL and adding the CHECKs rebuilds the table (Alembic's batch mode, with
foreign keys off as `db.engine.migrate` runs it); on PostgreSQL they are altered in place.
"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0012'
down_revision: Union[str, None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STATUSES = ('goal_met', 'dropped_out', 'referred_on', 'other')  # clinic.vocabulary.EPISODE_STATUSES as of this revision
CHECKS = [
    ('ck_episodes_number_positive', 'number >= 1'),
    ('ck_episodes_status', ' OR '.join(f"status = '{status}'" for status in STATUSES)),
    ('ck_episodes_discharge', '(status IS NULL) = (discharged_on IS NULL)'),
    ('ck_episodes_discharge_date', 'discharged_on IS NULL OR discharged_on >= started_on'),
]
NUMBER_IN_ID_ORDER = """
UPDATE episodes SET number = (
    SELECT count(*) FROM episodes AS earlier
    WHERE earlier.patient_id = episodes.patient_id
      AND (earlier.condition = episodes.condition OR (earlier.condition IS NULL AND episodes.condition IS NULL))
      AND earlier.id <= episodes.id
)
"""
FIRST_SESSION = """
UPDATE episodes SET started_on = (
    SELECT min(session_date) FROM sessions WHERE sessions.episode_id = episodes.id {live}
) WHERE started_on IS NULL
"""


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('goal', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column('started_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('discharged_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.execute(NUMBER_IN_ID_ORDER)
    op.execute(FIRST_SESSION.format(live='AND sessions.deleted_at IS NULL'))
    op.execute(FIRST_SESSION.format(live=''))
    made_on = 'substr(created_at, 1, 10)' if sqlite else 'CAST(created_at AS DATE)'
    op.execute(f'UPDATE episodes SET started_on = {made_on} WHERE started_on IS NULL')
    with op.batch_alter_table('episodes', recreate='always' if sqlite else 'never') as batch_op:
        batch_op.alter_column('number', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('started_on', existing_type=sa.Date(), nullable=False)
        for name, condition in CHECKS:
            batch_op.create_check_constraint(name, condition)
        batch_op.drop_index('ix_episodes_patient_condition')
        batch_op.create_index('uq_episodes_patient_condition_number', ['patient_id', 'condition', 'number'],
                              unique=True)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('episodes', recreate='always' if sqlite else 'never') as batch_op:
        batch_op.drop_index('uq_episodes_patient_condition_number')
        batch_op.create_index('ix_episodes_patient_condition', ['patient_id', 'condition'], unique=False)
        for name, _ in CHECKS:
            batch_op.drop_constraint(name, type_='check')
        for column in ('status', 'discharged_on', 'started_on', 'goal', 'number'):
            batch_op.drop_column(column)
