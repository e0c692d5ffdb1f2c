"""The audit trail's hash chain: tamper evidence for every row `db.audit` writes.

Every row stores `row_hash`, the SHA-256 of the previous row's hash followed by its own content in a canonical form
(`canonical`), and `prev_hash`, the hash it was chained to; the first row follows `GENESIS`. Any row changed,
removed or slipped in between after it was written breaks the chain at that row, which `verify_chain`
(`python -m db audit verify`) finds. Writers are serialised while they extend the chain: SQLite's write units of
work begin with BEGIN IMMEDIATE, and on PostgreSQL `chain_head` takes a transaction-scoped advisory lock before it
reads the last hash. Changing the canonical form needs a migration that re-chains the rows written before it.

A chain without a secret cannot tell a forged row appended at the end from a real one, nor notice the newest rows
cut off; keep the head `python -m db audit verify` prints somewhere else (a ticket, the backup log) to check later
that the trail still reaches it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlmodel import Session

from db.access import Actor, require_role
from db.models import AuditEvent

GENESIS = "0" * 64  # what the first row of the trail follows
CHAIN_LOCK_KEY = 4_207_312  # PostgreSQL advisory lock held while a transaction extends the chain
CHAINED = ("at", "actor_id", "actor", "action", "entity", "entity_id", "patient", "before", "after", "detail")
AUDIT = AuditEvent.__table__


def moment_text(value: datetime) -> str:
    """Return a time stamp as canonical UTC text, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (both backends keep microseconds)."""
    if value.utcoffset() is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _field(value) -> str:
    """Return one value in the canonical form: `-` for NULL, else `<length>:<text>` (no separator can be forged);
    a time stamp as `moment_text` writes it."""
    if value is None:
        return "-"
    text = moment_text(value) if isinstance(value, datetime) else str(value)
    return f"{len(text)}:{text}"


def canonical(values: Iterable) -> str:
    """Return the canonical text of an audit row's content: its CHAINED values in order, each as `_field` gives."""
    return "".join(map(_field, values))


def _hash(prev_hash: str, text: str) -> str:
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, row) -> str:
    """Return the SHA-256 (hex) of the previous row's hash followed by this row's canonical content."""
    return _hash(prev_hash, canonical(row[name] for name in CHAINED))


def hash_columns(head: str, values: dict, count: int) -> tuple[list[str], list[str]]:
    """Return the prev_hash and row_hash columns of `count` bulk rows; each CHAINED value is one for every row, or
    a list of one per row. Their `canonical` text is joined from fields encoded once each (a shared value once)."""
    fields = [[_field(v) for v in values[name]] if isinstance(values[name], list) else [_field(values[name])] * count
              for name in CHAINED]
    prev_hashes, row_hashes = [], []
    for parts in zip(*fields, strict=True):
        prev_hashes.append(head)
        head = _hash(head, "".join(parts))
        row_hashes.append(head)
    return prev_hashes, row_hashes


def chain_head(session: Session) -> str:
    """Return the hash the next row follows, once this transaction alone may extend the chain."""
    if session.get_bind().dialect.name == "postgresql":
        # Released at commit or rollback; write units of work already hold db.engine's write lock, but any other
        # transaction that audits must not read the same head. (SQLite: BEGIN IMMEDIATE, or a refused upgrade.)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    head = session.execute(select(AUDIT.c.row_hash).order_by(AUDIT.c.id.desc()).limit(1)).scalar()
    return head or GENESIS


@dataclass(frozen=True)
class ChainCheck:
    """The result of checking the audit trail's hash chain."""

    rows: int  # rows checked (all of them when intact; up to and including the broken one otherwise)
    head: str  # the last row's hash when intact
    broken_at: int | None = None  # id of the first row that breaks the chain
    reason: str = ""


def verify_chain(session: Session, *, actor: Actor, batch: int = 10_000) -> ChainCheck:
    """Return whether every audit row, in id order, follows the one before and matches its own hash (admins)."""
    require_role(actor, ("admin",), "verify the audit trail")
    columns = [AUDIT.c[name] for name in ("id", "prev_hash", "row_hash", *CHAINED)]
    expected, checked, previous_id = GENESIS, 0, None
    result = session.execute(select(*columns).order_by(AUDIT.c.id).execution_options(yield_per=batch))
    for row in result:
        row_id, prev_hash, row_hash = row[0], row[1], row[2]
        checked += 1
        if row_hash is None:
            return ChainCheck(checked, expected, row_id, f"row {row_id} has no hash (written outside the app)")
        if prev_hash != expected:
            after_what = f"row {previous_id}" if previous_id is not None else "the start of the trail"
            return ChainCheck(checked, expected, row_id,
                              f"row {row_id} does not follow {after_what} (a row was removed, inserted or "
                              "changed there)")
        if _hash(expected, canonical(row[3:])) != row_hash:
            return ChainCheck(checked, expected, row_id,
                              f"row {row_id} was changed after it was written (its content does not match its "
                              "hash)")
        expected, previous_id = row_hash, row_id
    return ChainCheck(checked, expected)
