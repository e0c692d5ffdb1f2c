"""rollups per dimension, patient search keys: reads of a bounded size at any scale

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 12:00:00

Issue #15. The roll-up was keyed by every filter at once (technique, condition, body region, first clinician, first
month, session technique, session number): with 60 clinicians over 25 months it held 0.27 rows per session, and
the technique page read hundreds of thousands of them. `outcome_rollup` now holds the sums per technique and session
number of all episodes (dimension 'all') and of each value of one filter (dimension 'condition', 'body_region',
'clinician_id' or 'first_month'; the other filters' columns '' or 0); it is made again and filled from the sessions,
with each measure as db/rollups.py defines it at this revision (copied, so that this migration stays what it is
when db/rollups.py changes). The session technique, which no figure read, is gone.

The patient search lower-cased every id on every search. Patients get `search_id` (the id lower-cased) and
`patient_name_keys` (the name case- and accent-folded from the start of each word), each compared by code point
("C" collation on PostgreSQL) so that an index answers a prefix; both are filled here as db/patient_search.py makes
them at this revision (copied).

The downgrade makes the roll-up of revision 0011 again and fills it as db/rollups.py did then.
"""
import re
import unicodedata
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: Union[str, None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KEY_LENGTH = 64
SEARCH_KEY = sa.String(length=KEY_LENGTH).with_variant(sa.String(length=KEY_LENGTH, collation='C'), 'postgresql')
DIMENSIONS = ('all', 'condition', 'body_region', 'clinician_id', 'first_month')
FILTERS = ('condition', 'body_region', 'clinician_id', 'first_month')
BLANK = {'condition': '', 'body_region': '', 'clinician_id': 0, 'first_month': 0}
MEASURES = ('sessions', 'curve_sessions', 'sum_pain', 'sum_improvement', 'sum_pct', 'sum_pct_squared',
            'baseline_zero', 'single_session')
OLD_CELL = ('technique', 'condition', 'body_region', 'clinician_id', 'first_month', 'session_technique')
CHUNK = 5000

# The tables this revision reads, as it reads them.
patients = sa.table('patients', sa.column('id', sa.Integer()), sa.column('pseudonym', sa.String()),
                    sa.column('name', sa.String()), sa.column('search_id', sa.String()))
name_keys = sa.table('patient_name_keys', sa.column('key', sa.String()), sa.column('patient_id', sa.Integer()))
sessions = sa.table(
    'sessions', sa.column('id', sa.Integer()), sa.column('episode_id', sa.Integer()),
    sa.column('session_number', sa.Integer()), sa.column('session_date', sa.Date()),
    sa.column('technique', sa.String()), sa.column('pain_scale', sa.String()), sa.column('pain_before', sa.Float()),
    sa.column('clinician_id', sa.Integer()), sa.column('deleted_at', sa.DateTime()),
)
episodes = sa.table('episodes', sa.column('id', sa.Integer()), sa.column('condition', sa.String()),
                    sa.column('body_region', sa.String()))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_id', SEARCH_KEY, nullable=True))
    op.create_table(
        'patient_name_keys',
        sa.Column('key', SEARCH_KEY, nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id']),
        sa.PrimaryKeyConstraint('key', 'patient_id'),
    )
    _fill_search_keys()
    with op.batch_alter_table('patients', recreate='always' if sqlite else 'never') as batch_op:
        batch_op.alter_column('search_id', existing_type=SEARCH_KEY, nullable=False)
        batch_op.create_index('ix_patients_search_id', ['search_id'], unique=False)
    op.drop_table('outcome_rollup')
    op.create_table(
        'outcome_rollup',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('dimension', sa.String(length=16), nullable=False),
        *_filter_columns(),
        sa.Column('technique', sa.String(length=16), nullable=False),
        sa.Column('session_number', sa.Integer(), nullable=False),
        *_measure_columns(),
        sa.CheckConstraint(' OR '.join(f"dimension = '{d}'" for d in DIMENSIONS), name='ck_outcome_rollup_dimension'),
        sa.UniqueConstraint('dimension', *FILTERS, 'technique', 'session_number', name='uq_outcome_rollup_cell'),
    )
    _fill(('technique', *FILTERS, 'session_number'), _per_dimension)


def downgrade() -> None:
    op.drop_table('outcome_rollup')
    op.create_table(
        'outcome_rollup',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('technique', sa.String(length=16), nullable=False),
        *_filter_columns(),
        sa.Column('session_technique', sa.String(length=16), nullable=False),
        sa.Column('session_number', sa.Integer(), nullable=False),
        *_measure_columns(),
        sa.UniqueConstraint(*OLD_CELL, 'session_number', name='uq_outcome_rollup_cell'),
    )
    _fill((*OLD_CELL, 'session_number'), lambda fine: fine)
    op.drop_table('patient_name_keys')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index('ix_patients_search_id')
        batch_op.drop_column('search_id')


def _filter_columns() -> list[sa.Column]:
    return [
        sa.Column('condition', sa.String(length=64), nullable=False),
        sa.Column('body_region', sa.String(length=64), nullable=False),
        sa.Column('clinician_id', sa.Integer(), nullable=False),
        sa.Column('first_month', sa.Integer(), nullable=False),
    ]


def _measure_columns() -> list[sa.Column]:
    return [sa.Column(m, sa.Float() if m.startswith('sum_') else sa.Integer(), nullable=False) for m in MEASURES]


def _folded(text: str) -> str:
    """Return text case- and accent-folded, its words joined by single spaces (db.patient_search.folded)."""
    decomposed = unicodedata.normalize('NFKD', text.casefold())
    return ' '.join(re.findall(r'\w+', ''.join(c for c in decomposed if not unicodedata.combining(c))))


def _fill_search_keys() -> None:
    """Set every patient's search_id and name keys (db.patient_search.search_id and name_keys)."""
    connection = op.get_bind()
    rows = connection.execute(sa.select(patients.c.id, patients.c.pseudonym, patients.c.name)).all()
    by_id = sa.update(patients).where(patients.c.id == sa.bindparam('b_id')).values(search_id=sa.bindparam('key'))
    keys = []
    for patient_id, pseudonym, name in rows:
        words = _folded(name or '').split()
        keys += [{'key': key, 'patient_id': patient_id}
                 for key in dict.fromkeys(' '.join(words[i:])[:KEY_LENGTH] for i in range(len(words)))]
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        connection.execute(by_id, [{'b_id': i, 'key': pseudonym.lower()[:KEY_LENGTH]} for i, pseudonym, _ in chunk])
    for start in range(0, len(keys), CHUNK):
        connection.execute(name_keys.insert(), keys[start:start + CHUNK])


def _points(scale, pain):
    """Return pain on the 0–100 scale (NRS × 10)."""
    return sa.case((scale == 'nrs_10', pain * 10.0), else_=sa.cast(pain, sa.Float))


def _flag(condition):
    return sa.case((condition, 1), else_=0)


def _fill(key: Sequence[str], regroup) -> None:
    """Fill outcome_rollup: each fine cell's sums of the per-session measures, regrouped into the table's rows."""
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
        .cte('episode_facts').prefix_with('MATERIALIZED')
    )
    pain = _points(s.c.pain_scale, s.c.pain_before)
    counted = e.c.baseline > 0
    pct = sa.case((counted, 100.0 * (e.c.baseline - pain) / e.c.baseline), else_=0.0)
    per_session = (
        sa.select(
            e.c.technique, *(e.c[name] for name in FILTERS), s.c.technique.label('session_technique'),
            s.c.session_number, sa.literal(1).label('sessions'), _flag(counted).label('curve_sessions'),
            sa.case((counted, pain), else_=0.0).label('sum_pain'),
            sa.case((counted, e.c.baseline - pain), else_=0.0).label('sum_improvement'),
            pct.label('sum_pct'), (pct * pct).label('sum_pct_squared'),
            _flag(sa.and_(s.c.session_number == 1, e.c.baseline <= 0)).label('baseline_zero'),
            _flag(sa.and_(s.c.session_number == 1, counted, e.c.last <= 1)).label('single_session'),
        )
        .join(e, e.c.episode_id == s.c.episode_id)
        .where(s.c.deleted_at.is_(None))
        .subquery('detail')
    )
    fine = sa.select(*(per_session.c[k] for k in key), *(sa.func.sum(per_session.c[m]).label(m) for m in MEASURES)
                     ).group_by(*(per_session.c[k] for k in key))
    rows = regroup(fine)
    target = sa.table('outcome_rollup', *(sa.column(c) for c in rows.selected_columns.keys()))
    op.get_bind().execute(target.insert().from_select(list(rows.selected_columns.keys()), rows))


def _per_dimension(fine):
    """Return the rows of every dimension from the fine cells: one filter's column kept, the others blank."""
    f = fine.cte('fine_cells')
    sums = [sa.func.sum(f.c[m]).label(m) for m in MEASURES]
    parts = []
    for dimension in DIMENSIONS:
        own = [f.c[dimension]] if dimension in FILTERS else []
        kept = [f.c[name] if name == dimension else sa.literal(BLANK[name]).label(name) for name in FILTERS]
        parts.append(sa.select(sa.literal(dimension).label('dimension'), *kept, f.c.technique, f.c.session_number,
                               *sums).group_by(*own, f.c.technique, f.c.session_number))
    return sa.union_all(*parts)
