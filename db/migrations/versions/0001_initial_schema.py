"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 03:38:41.089488
"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0001'
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pseudonym', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_pseudonym'), ['pseudonym'], unique=True)

    op.create_table('episodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('condition', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('body_region', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.create_index('ix_episodes_patient_condition', ['patient_id', 'condition'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.CheckConstraint("role IN ('clinician', 'manager', 'patient', 'admin')", name='ck_users_role'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_username'), ['username'], unique=True)

    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('session_number', sa.Integer(), nullable=False),
    sa.Column('session_date', sa.Date(), nullable=False),
    sa.Column('technique', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('clinician_id', sa.Integer(), nullable=True),
    sa.Column('muscles', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('twitch_response', sa.Boolean(), nullable=True),
    sa.Column('pain_scale', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('pain_before', sa.Float(), nullable=False),
    sa.Column('pain_after', sa.Float(), nullable=True),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.CheckConstraint("pain_after IS NULL OR (pain_after >= 0 AND pain_after <= CASE pain_scale WHEN 'nrs_10' THEN 10 ELSE 100 END)", name='ck_sessions_pain_after_range'),
    sa.CheckConstraint("pain_before >= 0 AND pain_before <= CASE pain_scale WHEN 'nrs_10' THEN 10 ELSE 100 END", name='ck_sessions_pain_before_range'),
    sa.CheckConstraint("pain_scale IN ('vas_100', 'nrs_10')", name='ck_sessions_pain_scale'),
    sa.CheckConstraint("technique IN ('superficial', 'deep', 'electrical')", name='ck_sessions_technique'),
    sa.CheckConstraint('session_number >= 1', name='ck_sessions_number_positive'),
    sa.ForeignKeyConstraint(['clinician_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('episode_id', 'session_number', name='uq_sessions_episode_number')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_clinician_id'), ['clinician_id'], unique=False)
        batch_op.create_index('ix_sessions_date', ['session_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_episode_id'), ['episode_id'], unique=False)
        batch_op.create_index('ix_sessions_technique_number', ['technique', 'session_number'], unique=False)

    op.create_table('side_effects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.CheckConstraint("code IN ('bleeding', 'bruising', 'pain_during', 'soreness', 'aggravation', 'drowsiness', 'fatigue', 'headache', 'nausea', 'faintness', 'syncope', 'sweating', 'emotional', 'itching', 'numbness', 'nerve_irritation', 'infection', 'pneumothorax', 'needle_breakage', 'other')", name='ck_side_effects_code'),
    sa.CheckConstraint("severity IN ('mild', 'significant', 'serious')", name='ck_side_effects_severity'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'code', name='uq_side_effects_session_code')
    )
    with op.batch_alter_table('side_effects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_side_effects_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('side_effects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_side_effects_session_id'))

    op.drop_table('side_effects')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_technique_number')
        batch_op.drop_index(batch_op.f('ix_sessions_episode_id'))
        batch_op.drop_index('ix_sessions_date')
        batch_op.drop_index(batch_op.f('ix_sessions_clinician_id'))

    op.drop_table('sessions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_username'))

    op.drop_table('users')
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.drop_index('ix_episodes_patient_condition')

    op.drop_table('episodes')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_pseudonym'))

    op.drop_table('patients')
