"""patient-reported diary, PGIC and PSFS (issue #17)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:00:00

Seven new tables, nothing existing changed (db/report_models.py describes them; docs/DESIGN.md, "Patient-reported
data", the rules):
- `diary_entries`: a patient's soreness (0–10) for one session and window (6, 24, 48 or 72 h), at its real time;
  `diary_entry_versions`: the values an entry had before each correction; `patient_side_effects`: the side effects
  reported in an entry, reviewed like recorded ones; `diary_annotations`: clinicians' notes on an entry;
- `pgic_responses` (1–7 per episode), `psfs_activities` (up to three per episode) and `psfs_ratings` (0–10).
The vocabularies are frozen here as they are at this revision; the CHECKs are written as `col = 'a' OR …`
(db.models._one_of), the same text on SQLite and PostgreSQL.
"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0015'
down_revision: Union[str, None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# clinic.patient_reports and clinic.vocabulary as of this revision.
WINDOWS = (6, 24, 48, 72)
PATIENT_EFFECT_CODES = ('bruising', 'bleeding', 'soreness_over_72h', 'fatigue', 'headache', 'nausea', 'faintness',
                        'other')
SEVERITIES = ('mild', 'significant', 'serious')
ENTERED_BY = ('patient', 'clinician', 'admin')


def _one_of(column: str, values) -> str:
    return ' OR '.join(f"{column} = '{value}'" for value in values)


def _text(length: int | None = None):
    return sqlmodel.sql.sqltypes.AutoString(length=length) if length else sa.Text()


def _user(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey('users.id'), nullable=True)


def upgrade() -> None:
    op.create_table(
        'diary_entries',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('session_id', sa.Integer(), sa.ForeignKey('sessions.id'), nullable=False),
        sa.Column('patient_id', sa.Integer(), sa.ForeignKey('patients.id'), nullable=False),
        sa.Column('window_h', sa.Integer(), nullable=False),
        sa.Column('soreness', sa.Integer(), nullable=False),
        sa.Column('note', _text(), nullable=False),
        sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        _user('created_by'),
        sa.Column('corrected_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint(' OR '.join(f'window_h = {w}' for w in WINDOWS), name='ck_diary_entries_window'),
        sa.CheckConstraint('soreness >= 0 AND soreness <= 10', name='ck_diary_entries_soreness'),
        sa.UniqueConstraint('session_id', 'window_h', name='uq_diary_entries_session_window'),
    )
    op.create_index('ix_diary_entries_patient', 'diary_entries', ['patient_id', 'recorded_at'])
    op.create_table(
        'diary_entry_versions',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('entry_id', sa.Integer(), sa.ForeignKey('diary_entries.id'), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('soreness', sa.Integer(), nullable=False),
        sa.Column('note', _text(), nullable=False),
        sa.Column('side_effects', _text(), nullable=False),
        sa.Column('valid_from', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('replaced_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        _user('replaced_by'),
        sa.CheckConstraint('version >= 1', name='ck_diary_entry_versions_version'),
        sa.CheckConstraint('soreness >= 0 AND soreness <= 10', name='ck_diary_entry_versions_soreness'),
        sa.UniqueConstraint('entry_id', 'version', name='uq_diary_entry_versions_entry_version'),
    )
    op.create_table(
        'patient_side_effects',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('entry_id', sa.Integer(), sa.ForeignKey('diary_entries.id'), nullable=False),
        sa.Column('code', _text(32), nullable=False),
        sa.Column('severity', _text(16), nullable=False),
        sa.Column('reviewed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        _user('reviewed_by'),
        sa.CheckConstraint(_one_of('code', PATIENT_EFFECT_CODES), name='ck_patient_side_effects_code'),
        sa.CheckConstraint(_one_of('severity', SEVERITIES), name='ck_patient_side_effects_severity'),
        sa.UniqueConstraint('entry_id', 'code', name='uq_patient_side_effects_entry_code'),
    )
    op.create_index('ix_patient_side_effects_severity', 'patient_side_effects', ['severity'])
    op.create_table(
        'diary_annotations',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('entry_id', sa.Integer(), sa.ForeignKey('diary_entries.id'), nullable=False),
        _user('author_id'),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('text', _text(), nullable=False),
    )
    op.create_index('ix_diary_annotations_entry', 'diary_annotations', ['entry_id'])
    op.create_table(
        'pgic_responses',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('patient_id', sa.Integer(), sa.ForeignKey('patients.id'), nullable=False),
        sa.Column('episode_id', sa.Integer(), sa.ForeignKey('episodes.id'), nullable=False),
        sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('before_session_id', sa.Integer(), sa.ForeignKey('sessions.id'), nullable=True),
        _user('recorded_by'),
        sa.Column('entered_by', _text(16), nullable=False),
        sa.CheckConstraint('score >= 1 AND score <= 7', name='ck_pgic_responses_score'),
        sa.CheckConstraint(_one_of('entered_by', ENTERED_BY), name='ck_pgic_responses_entered_by'),
    )
    op.create_index('ix_pgic_responses_patient', 'pgic_responses', ['patient_id', 'answered_at'])
    op.create_index('ix_pgic_responses_episode', 'pgic_responses', ['episode_id'])
    op.create_table(
        'psfs_activities',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('episode_id', sa.Integer(), sa.ForeignKey('episodes.id'), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('name', _text(200), nullable=False),
        sa.Column('named_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        _user('named_by'),
        sa.Column('entered_by', _text(16), nullable=False),
        sa.CheckConstraint('position >= 1 AND position <= 3', name='ck_psfs_activities_position'),
        sa.CheckConstraint(_one_of('entered_by', ENTERED_BY), name='ck_psfs_activities_entered_by'),
        sa.UniqueConstraint('episode_id', 'position', name='uq_psfs_activities_episode_position'),
    )
    op.create_table(
        'psfs_ratings',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('activity_id', sa.Integer(), sa.ForeignKey('psfs_activities.id'), nullable=False),
        sa.Column('rated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        _user('rated_by'),
        sa.Column('entered_by', _text(16), nullable=False),
        sa.CheckConstraint('score >= 0 AND score <= 10', name='ck_psfs_ratings_score'),
        sa.CheckConstraint(_one_of('entered_by', ENTERED_BY), name='ck_psfs_ratings_entered_by'),
    )
    op.create_index('ix_psfs_ratings_activity', 'psfs_ratings', ['activity_id', 'rated_at'])


def downgrade() -> None:
    op.drop_index('ix_psfs_ratings_activity', table_name='psfs_ratings')
    op.drop_table('psfs_ratings')
    op.drop_table('psfs_activities')
    op.drop_index('ix_pgic_responses_episode', table_name='pgic_responses')
    op.drop_index('ix_pgic_responses_patient', table_name='pgic_responses')
    op.drop_table('pgic_responses')
    op.drop_index('ix_diary_annotations_entry', table_name='diary_annotations')
    op.drop_table('diary_annotations')
    op.drop_index('ix_patient_side_effects_severity', table_name='patient_side_effects')
    op.drop_table('patient_side_effects')
    op.drop_table('diary_entry_versions')
    op.drop_index('ix_diary_entries_patient', table_name='diary_entries')
    op.drop_table('diary_entries')
