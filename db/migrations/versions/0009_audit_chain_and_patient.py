"""audit chain and patient: every audit row hash-chained and, when clinical, naming its patient

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 10:00:00

- `patient`: the pseudonymous id of the patient a clinical row concerns, filled here for the rows whose session,
  side effect, episode or patient still exists (a side effect replaced by a correction no longer does).
- `prev_hash`, `row_hash`: the hash chain of `db.audit_chain` (its hash copied below); the rows written before this
  migration are chained here, in id order, so `python -m db audit verify` covers the whole trail.
- ix_audit_patient, ix_audit_actor, ix_audit_at: the audit page's filters, in SQL at millions of rows.
- SQLite: `REPLACE INTO audit_log` deleted the row it replaced without firing the DELETE trigger (SQLite fires it
  only with recursive triggers on); a BEFORE INSERT trigger now refuses an id that is already taken. PostgreSQL has
  no REPLACE, and `INSERT … ON CONFLICT DO UPDATE` fires the UPDATE trigger.

The append-only triggers are off only while this migration fills the new columns, inside its transaction.
"""
import hashlib
from datetime import UTC, datetime
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0009'
down_revision: Union[str, None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APPEND_ONLY_EVENTS = ('UPDATE', 'DELETE')  # SQLite's audit_log triggers, as migrations 0002 and 0008 made them
INDEXES = [
    ('ix_audit_patient', ['patient', 'id']),
    ('ix_audit_actor', ['actor', 'id']),
    ('ix_audit_at', ['at']),
]
BATCH = 5_000
# The hash chain as db.audit_chain defines it (copied, so that this migration stays what it is; its canonical form
# never changes without a migration that chains the rows again).
GENESIS = "0" * 64
CHAINED = ("at", "actor_id", "actor", "action", "entity", "entity_id", "patient", "before", "after", "detail")


def _field(value) -> str:
    """Return one value in the canonical form: `-` for NULL, else `<length>:<text>`, a time as UTC with a Z."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        if value.utcoffset() is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.isoformat(timespec="microseconds") + "Z"
    else:
        text = str(value)
    return f"{len(text)}:{text}"


def chain_hash(prev_hash: str, row) -> str:
    """Return the SHA-256 (hex) of the previous row's hash followed by this row's canonical content."""
    return hashlib.sha256((prev_hash + "".join(_field(row[name]) for name in CHAINED)).encode("utf-8")).hexdigest()

# The patient of each kind of clinical row, by the row's entity id.
PATIENT_OF = {
    'session': "SELECT p.pseudonym FROM sessions s JOIN episodes e ON e.id = s.episode_id "
               "JOIN patients p ON p.id = e.patient_id WHERE s.id = audit_log.entity_id",
    'side_effect': "SELECT p.pseudonym FROM side_effects x JOIN sessions s ON s.id = x.session_id "
                   "JOIN episodes e ON e.id = s.episode_id JOIN patients p ON p.id = e.patient_id "
                   "WHERE x.id = audit_log.entity_id",
    'episode': "SELECT p.pseudonym FROM episodes e JOIN patients p ON p.id = e.patient_id "
               "WHERE e.id = audit_log.entity_id",
    'patient': "SELECT p.pseudonym FROM patients p WHERE p.id = audit_log.entity_id",
}

# The audit table as this revision leaves it, for reading the rows with the app's own column types.
audit_log = sa.table(
    'audit_log',
    sa.column('id', sa.Integer()),
    sa.column('at', sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column('actor_id', sa.Integer()),
    sa.column('actor', sa.String()),
    sa.column('action', sa.String()),
    sa.column('entity', sa.String()),
    sa.column('entity_id', sa.Integer()),
    sa.column('patient', sa.String()),
    sa.column('before', sa.Text()),
    sa.column('after', sa.Text()),
    sa.column('detail', sa.String()),
    sa.column('prev_hash', sa.String()),
    sa.column('row_hash', sa.String()),
)


def _append_only(on: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in APPEND_ONLY_EVENTS:
            if on:
                op.execute(
                    f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                )
            else:
                op.execute(f"DROP TRIGGER audit_log_no_{event.lower()}")
    else:
        op.execute(f"ALTER TABLE audit_log {'ENABLE' if on else 'DISABLE'} TRIGGER audit_log_append_only")


def _chain_existing_rows() -> None:
    """Chain the rows already there, oldest first, as db.audit_chain chains new ones."""
    connection = op.get_bind()
    columns = [audit_log.c.id, *[audit_log.c[name] for name in CHAINED]]
    prev, last_id = GENESIS, None
    while True:
        stmt = sa.select(*columns).order_by(audit_log.c.id).limit(BATCH)
        if last_id is not None:
            stmt = stmt.where(audit_log.c.id > last_id)
        rows = connection.execute(stmt).mappings().all()
        if not rows:
            return
        updates = []
        for row in rows:
            row_hash = chain_hash(prev, row)
            updates.append({"b_id": row["id"], "b_prev": prev, "b_hash": row_hash})
            prev = row_hash
        connection.execute(
            audit_log.update().where(audit_log.c.id == sa.bindparam("b_id"))
            .values(prev_hash=sa.bindparam("b_prev"), row_hash=sa.bindparam("b_hash")),
            updates,
        )
        last_id = rows[-1]["id"]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Plain ADD COLUMN on both backends: on SQLite no rebuild of the table, so its triggers stay.
    op.add_column('audit_log', sa.Column('patient', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column('audit_log', sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column('audit_log', sa.Column('row_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    for name, columns in INDEXES:
        op.create_index(name, 'audit_log', columns, unique=False)

    _append_only(False)
    for entity, query in PATIENT_OF.items():
        op.execute(f"UPDATE audit_log SET patient = ({query}) WHERE entity = '{entity}' AND entity_id IS NOT NULL")
    _chain_existing_rows()
    _append_only(True)
    if sqlite:
        # A row given no id reads NEW.id as -1 here, and the app's ids are positive: such a row skips the lookup
        # (a third of the trigger's cost on a 100,000-row import).
        op.execute(
            "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
            "WHEN NEW.id > 0 AND EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER audit_log_no_replace")
    for name, _ in INDEXES:
        op.drop_index(name, table_name='audit_log')
    if sqlite:
        # Dropping columns rebuilds the table on SQLite; its triggers go with the old one and are made again.
        _append_only(False)
    with op.batch_alter_table('audit_log', recreate="always" if sqlite else "never") as batch_op:
        batch_op.drop_column('row_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('patient')
    if sqlite:
        _append_only(True)
