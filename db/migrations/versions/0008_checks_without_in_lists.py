"""checks without IN lists: the vocabulary CHECKs as `col = 'a' OR col = 'b' …`, which SQLite checks cheaply

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:30:00

SQLite evaluates `col IN ('a', 'b', 'c', …)` by building a temporary index of the list for every row it checks;
on a 100,000-row import the CHECKs of sessions, side effects and audit rows cost more than a second. The OR form
admits the same values. On SQLite a CHECK is changed by rebuilding its table (Alembic's batch mode, with foreign
keys off as `db.engine.migrate` runs it); the audit trail's append-only triggers go with the old table and are
made again. On PostgreSQL the constraints are dropped and added in place.
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0008'
down_revision: Union[str, None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# (table, constraint, column, the values it admits): the vocabularies as of this revision
CHECKS = [
    ('users', 'ck_users_role', 'role', ('clinician', 'manager', 'patient', 'admin')),
    ('sessions', 'ck_sessions_technique', 'technique', ('superficial', 'deep', 'electrical')),
    ('sessions', 'ck_sessions_pain_scale', 'pain_scale', ('vas_100', 'nrs_10')),
    ('side_effects', 'ck_side_effects_code', 'code', (
        'bleeding', 'bruising', 'pain_during', 'soreness', 'aggravation', 'drowsiness', 'fatigue', 'headache',
        'nausea', 'faintness', 'syncope', 'sweating', 'emotional', 'itching', 'numbness', 'nerve_irritation',
        'infection', 'pneumothorax', 'needle_breakage', 'other',
    )),
    ('side_effects', 'ck_side_effects_severity', 'severity', ('mild', 'significant', 'serious')),
    ('audit_log', 'ck_audit_action', 'action', (
        'create', 'update', 'delete', 'restore', 'login', 'login_failed', 'logout', 'export', 'import', 'user_add',
        'user_disable', 'user_password_reset',
    )),
]
APPEND_ONLY_EVENTS = ('UPDATE', 'DELETE')  # SQLite's audit_log triggers, as migration 0002 made them


def _or_chain(column: str, values) -> str:
    return " OR ".join(f"{column} = '{value}'" for value in values)


def _in_list(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _replace_checks(render) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for event in APPEND_ONLY_EVENTS:
            op.execute(f"DROP TRIGGER audit_log_no_{event.lower()}")
    for table in dict.fromkeys(table for table, *_ in CHECKS):
        with op.batch_alter_table(table, recreate="always" if sqlite else "never") as batch_op:
            for _, name, column, values in (check for check in CHECKS if check[0] == table):
                batch_op.drop_constraint(name, type_='check')
                batch_op.create_check_constraint(name, render(column, values))
    if sqlite:
        for event in APPEND_ONLY_EVENTS:
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def upgrade() -> None:
    _replace_checks(_or_chain)


def downgrade() -> None:
    _replace_checks(_in_list)
