"""STRICTA needling record (issue #16): the session's dose, the episode's planned course, the clinician's background

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:00:00

New nullable columns (NULL = not recorded), each with a CHECK of its range or codes (docs/DESIGN.md §5, "optional
STRICTA columns"; clinic.vocabulary.RANGES as of this revision):
- sessions: insertions, side, depth_mm, needle_diameter_mm, needle_length_mm, twitch_count, retention_s,
  manipulation, estim_hz, estim_pulse_us, estim_ma, estim_minutes (these four on electrical sessions only) and
  adjuncts (codes joined by ';', or 'none'); a twitch count agrees with the twitch response (> 0 means yes);
- episodes: planned_sessions, planned_per_week (the planned course);
- users: needling_training (free text), years_practice (STRICTA item 5).
Every new column is NULL, so no row is rewritten: SQLite adds each column with its CHECK as a column constraint
(no table rebuild, which at a million sessions would take minutes), PostgreSQL adds the column and then the
constraint. The downgrade drops the columns, and with them their constraints, on both.
"""
from collections.abc import Sequence
from typing import Union

from alembic import op

revision: str = '0014'
down_revision: Union[str, None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ADJUNCTS = ('cold_spray', 'massage', 'stretching', 'exercise', 'heat', 'other')
ESTIM = ('estim_hz', 'estim_pulse_us', 'estim_ma', 'estim_minutes')


def _within(column: str, low: float, high: float) -> str:
    technique = "technique = 'electrical' AND " if column in ESTIM else ''
    return f'{column} IS NULL OR ({technique}{column} >= {low:g} AND {column} <= {high:g})'


def _one_of(column: str, values) -> str:
    return ' OR '.join(f"{column} = '{value}'" for value in values)


def _adjuncts() -> str:
    remainder = "';' || adjuncts || ';'"
    for code in ADJUNCTS:
        remainder = f"replace({remainder}, ';{code};', ';')"
    return f"adjuncts IS NULL OR adjuncts = 'none' OR {remainder} = ';'"


def _ranged(column: str, sql_type: str, low: float, high: float) -> tuple:
    return column, sql_type, [(column, _within(column, low, high))]


# table -> [(column, SQL type, [(constraint name without the table's prefix, CHECK text)])], in the models' order
COLUMNS = {
    'users': [
        ('needling_training', 'VARCHAR(500)', []),
        _ranged('years_practice', 'INTEGER', 0, 60),
    ],
    'episodes': [
        _ranged('planned_sessions', 'INTEGER', 1, 50),
        _ranged('planned_per_week', 'FLOAT', 0.25, 7),
    ],
    'sessions': [
        _ranged('insertions', 'INTEGER', 1, 500),
        ('side', 'VARCHAR(16)', [('side', _one_of('side', ('left', 'right', 'bilateral', 'midline')))]),
        _ranged('depth_mm', 'FLOAT', 0, 150),
        _ranged('needle_diameter_mm', 'FLOAT', 0.10, 0.50),
        _ranged('needle_length_mm', 'FLOAT', 5, 150),
        ('twitch_count', 'INTEGER', [
            ('twitch_count', _within('twitch_count', 0, 200)),
            ('twitch_agrees',
             'twitch_count IS NULL OR twitch_response IS NULL OR (twitch_count > 0) = twitch_response'),
        ]),
        _ranged('retention_s', 'INTEGER', 0, 7200),
        ('manipulation', 'VARCHAR(24)', [
            ('manipulation', _one_of('manipulation', ('none', 'pistoning', 'rotation', 'pistoning_rotation'))),
        ]),
        _ranged('estim_hz', 'FLOAT', 0.1, 250),
        _ranged('estim_pulse_us', 'FLOAT', 10, 1000),
        _ranged('estim_ma', 'FLOAT', 0, 60),
        _ranged('estim_minutes', 'FLOAT', 1, 120),
        ('adjuncts', 'VARCHAR(128)', [('adjuncts', _adjuncts())]),
    ],
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, columns in COLUMNS.items():
        for column, sql_type, checks in columns:
            named = [(f'ck_{table}_{name}', condition) for name, condition in checks]
            if sqlite:
                constraints = ''.join(f' CONSTRAINT {name} CHECK ({condition})' for name, condition in named)
                op.execute(f'ALTER TABLE {table} ADD COLUMN {column} {sql_type}{constraints}')
            else:
                op.execute(f'ALTER TABLE {table} ADD COLUMN {column} {sql_type}')
                for name, condition in named:
                    op.execute(f'ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})')


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        for column, _, _ in reversed(columns):
            op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
