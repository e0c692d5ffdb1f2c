"""The append-only audit trail, written in the same transaction as the change it records, and chained by hashes.

Tamper evidence: every row stores `row_hash`, the SHA-256 of the previous row's hash followed by its own content in
a canonical form (`canonical`), and `prev_hash`, the hash it was chained to; the first row follows `GENESIS`. Any
row changed, removed or slipped in between after it was written breaks the chain at that row, which
`verify_chain` (`python -m db audit verify`) finds. Writers are serialised while they extend the chain: SQLite's
write units of work begin with BEGIN IMMEDIATE, and on PostgreSQL `_chain_head` takes a transaction-scoped
advisory lock before it reads the last hash. Changing the canonical form needs a migration that re-chains the
rows written before it.

A chain without a secret cannot tell a forged row appended at the end from a real one, nor notice the newest rows
cut off; keep the head `python -m db audit verify` prints somewhere else (a ticket, the backup log) to check later
that the trail still reaches it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
from sqlalchemy import Select, insert, select, text
from sqlmodel import Session

from db import bulk
from db.access import Actor, require_role
from db.models import AuditEvent, Episode, Patient, SideEffect, TreatmentSession, User, utcnow

GENESIS = "0" * 64  # what the first row of the trail follows
CHAIN_LOCK_KEY = 4_207_312  # PostgreSQL advisory lock held while a transaction extends the chain
CHAINED = ("at", "actor_id", "actor", "action", "entity", "entity_id", "patient", "before", "after", "detail")
AUDIT = AuditEvent.__table__
SHOWN = ("id", "at", "actor", "action", "entity", "entity_id", "patient", "changes", "detail")

# Field names of audited values as the clinic says them ("pain before: 80 → 60").
FIELD_LABELS = {
    "patient_id": "patient", "session_number": "session number", "session_date": "date",
    "technique": "technique", "muscles": "muscles", "twitch_response": "twitch response",
    "pain_scale": "pain scale", "pain_before": "pain before", "pain_after": "pain after", "notes": "notes",
    "side_effects": "side effects", "clinician_id": "clinician", "condition": "condition",
    "body_region": "body region", "episode": "episode", "username": "username", "display_name": "name",
    "role": "role", "email": "e-mail", "is_active": "active", "reviewed": "reviewed", "code": "side effect",
    "severity": "severity",
}


# -- writing ----------------------------------------------------------------------------------------------------------


def _json(values: dict | None) -> str | None:
    """Return values as the audit trail's JSON (keys sorted, dates as ISO text); None stays None."""
    if values is None:
        return None
    return json.dumps(values, default=_iso, sort_keys=True, ensure_ascii=False)


def _iso(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot audit a {type(value).__name__}")


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None = None,
    *,
    before: dict | None = None,
    after: dict | None = None,
    detail: str = "",
    patient: str | None = None,
) -> None:
    """Add one chained audit row to the caller's transaction (it commits or rolls back with the change itself).

    A clinical row carries its patient's pseudonymous id, looked up from the entity unless given as `patient`.
    """
    session.flush()  # the change goes first: the entity the row names exists, and its patient can be found
    if patient is None:
        patient = _patients_of(session, entity, [entity_id])[0] if entity_id is not None else None
    prev_hash = _chain_head(session)
    row = {"at": utcnow(), "actor_id": actor.id, "actor": actor.username, "action": action, "entity": entity,
           "entity_id": entity_id, "patient": patient, "before": _json(before), "after": _json(after),
           "detail": detail[:500]}
    session.execute(insert(AUDIT).values(row | {"prev_hash": prev_hash, "row_hash": chain_hash(prev_hash, row)}))


def record_many(
    session: Session, actor: Actor, action: str, entity: str, entity_ids: list[int], after: dict[str, list], *,
    detail: str = "",
) -> None:
    """Add one chained audit row per entity id, its values after given as columns, in one bulk insert.

    Each row's `after` is the JSON that `record` would write for `{name: values[i] for name, values in after}`,
    and its patient is looked up from the entity as `record` does; all in the caller's transaction.
    """
    if not entity_ids:
        return
    entity_ids = list(entity_ids)
    session.flush()
    patients = _patients_of(session, entity, entity_ids)
    afters = _json_rows(after) if after else [None] * len(entity_ids)
    constant = {"at": utcnow(), "actor_id": actor.id, "actor": actor.username, "action": action, "entity": entity,
                "before": None, "detail": detail[:500]}
    varying = {"entity_id": entity_ids, "patient": patients, "after": afters}
    prev_hashes, row_hashes = _chain(_chain_head(session), constant | varying, len(entity_ids))
    bulk.insert_columns(session, AUDIT, constant | varying | {"prev_hash": prev_hashes, "row_hash": row_hashes})


def _json_rows(columns: dict[str, list]) -> list[str]:
    """Return `_json` of each row of these columns, built from each column's values encoded once each."""
    parts = []
    for position, name in enumerate(sorted(columns)):  # sorted as `_json` sorts its keys
        prefix = ("{" if position == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": "
        parts.append(_json_column(prefix, columns[name]))
    return ["".join(row) + "}" for row in zip(*parts, strict=True)]


def _json_column(prefix: str, values: list) -> list[str]:
    """Return `prefix` + the JSON of each value, as `json.dumps` writes it."""
    kinds = {value.__class__ for value in values} - {type(None)}
    if kinds == {float}:
        # By the float's own text, as json.dumps writes finite floats: 0.0 and -0.0 are one key of a dict.
        return [prefix + ("null" if value is None else repr(value) if value - value == 0 else json.dumps(value))
                for value in values]
    if len(kinds) <= 1:  # one type: equal values are the same JSON
        encoded = {value: prefix + json.dumps(value, default=_iso, ensure_ascii=False) for value in set(values)}
        return [encoded[value] for value in values]
    encoded = {}  # 1, 1.0 and True are one key of a dict, not the same JSON
    out = []
    for value in values:
        key = (value.__class__, repr(value))
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = prefix + json.dumps(value, default=_iso, ensure_ascii=False)
        out.append(text)
    return out


# -- the patient of a clinical row ------------------------------------------------------------------------------------


def _patient_query(entity: str) -> tuple[Select, object] | None:
    """Return (SELECT entity id, patient pseudonym; the entity id column) for entities that belong to a patient."""
    if entity == "patient":
        return select(Patient.id, Patient.pseudonym), Patient.id
    if entity == "episode":
        return select(Episode.id, Patient.pseudonym).join(Patient, Patient.id == Episode.patient_id), Episode.id
    sessions = (Episode.__table__.join(Patient.__table__, Patient.id == Episode.patient_id)
                .join(TreatmentSession.__table__, TreatmentSession.episode_id == Episode.id))
    if entity == "session":
        return select(TreatmentSession.id, Patient.pseudonym).select_from(sessions), TreatmentSession.id
    if entity == "side_effect":
        effects = sessions.join(SideEffect.__table__, SideEffect.session_id == TreatmentSession.id)
        return select(SideEffect.id, Patient.pseudonym).select_from(effects), SideEffect.id
    return None


def _patients_of(session: Session, entity: str, entity_ids: list[int | None]) -> list[str | None]:
    """Return the pseudonymous id of each entity's patient (None for rows that belong to no patient)."""
    found = _patient_query(entity)
    wanted = [i for i in entity_ids if i is not None]
    if found is None or not wanted:
        return [None] * len(entity_ids)
    query, key = found
    low, high = min(wanted), max(wanted)
    if high - low < 2 * len(wanted):  # an import's new rows: one range, read in one statement
        pairs = dict(session.execute(query.where(key >= low, key <= high)).all())
    else:
        pairs = {}
        distinct = sorted(set(wanted))
        for start in range(0, len(distinct), 900):
            pairs.update(session.execute(query.where(key.in_(distinct[start:start + 900]))).all())
    return [pairs.get(i) for i in entity_ids]


# -- the hash chain ---------------------------------------------------------------------------------------------------


def _moment(value: datetime) -> str:
    """Return a time stamp as canonical UTC text, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (both backends keep microseconds)."""
    if value.utcoffset() is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _field(value) -> str:
    """Return one value in the canonical form: `-` for NULL, else `<length>:<text>` (no separator can be forged);
    a time stamp as `_moment` writes it."""
    if value is None:
        return "-"
    text = _moment(value) if isinstance(value, datetime) else str(value)
    return f"{len(text)}:{text}"


def canonical(values: Iterable) -> str:
    """Return the canonical text of an audit row's content: its CHAINED values in order, each as `_field` gives."""
    return "".join(map(_field, values))


def _hash(prev_hash: str, text: str) -> str:
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, row) -> str:
    """Return the SHA-256 (hex) of the previous row's hash followed by this row's canonical content."""
    return _hash(prev_hash, canonical(row[name] for name in CHAINED))


def _chain(head: str, values: dict, count: int) -> tuple[list[str], list[str]]:
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


def _chain_head(session: Session) -> str:
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


# -- reading ----------------------------------------------------------------------------------------------------------


def _words(value: object) -> str:
    if value is None or value == "":
        return "(blank)"
    if value is True or value is False:
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def readable_changes(before: str | None, after: str | None, usernames: dict[int, str] | None = None) -> str:
    """Return an audit row's values as one line per field: `label: old → new`, or `label: value` for one side.

    A clinician's account id reads as the account's username when `usernames` knows it.
    """
    old, new = _values(before), _values(after)
    usernames = usernames or {}

    def words(name: str, value: object) -> str:
        if name == "clinician_id" and value in usernames:
            return usernames[value]
        return _words(value)

    lines = []
    for name in old.keys() | new.keys():
        label = FIELD_LABELS.get(name, name.replace("_", " "))
        if name in old and name in new:
            lines.append(f"{label}: {words(name, old[name])} → {words(name, new[name])}")
        else:
            lines.append(f"{label}: {words(name, new[name] if name in new else old[name])}")
    return "\n".join(sorted(lines))  # in the order of their labels


def _values(recorded: str | None) -> dict:
    values = json.loads(recorded) if recorded else {}
    return values if isinstance(values, dict) else {"value": values}


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page narrows the trail to; an empty field does not filter."""

    patient: str = ""  # pseudonymous id, exact
    user: str = ""  # username at the time, exact
    action: str = ""
    since: date | None = None  # first day (UTC), inclusive
    until: date | None = None  # last day (UTC), inclusive
    entity: str = ""
    entity_id: int | None = None

    def words(self) -> str:
        """Return the active filters in words, for the export's audit row ("everything" when none is set)."""
        parts = [f"{name} {value}" for name, value in (("patient", self.patient), ("user", self.user),
                                                        ("action", self.action), ("entity", self.entity))
                 if value]
        if self.entity_id is not None:
            parts.append(f"entity id {self.entity_id}")
        if self.since or self.until:
            parts.append(f"dates {self.since or '…'} to {self.until or '…'}")
        return ", ".join(parts) or "everything"


def _filtered(where: AuditFilter, limit: int) -> Select:
    stmt = select(*[AUDIT.c[name] for name in ("id", "at", "actor", "action", "entity", "entity_id", "patient",
                                               "before", "after", "detail")])
    if where.patient.strip():
        stmt = stmt.where(AUDIT.c.patient == where.patient.strip())
    if where.user.strip():
        stmt = stmt.where(AUDIT.c.actor == where.user.strip())
    if where.action:
        stmt = stmt.where(AUDIT.c.action == where.action)
    if where.entity:
        stmt = stmt.where(AUDIT.c.entity == where.entity)
    if where.entity_id is not None:
        stmt = stmt.where(AUDIT.c.entity_id == where.entity_id)
    if where.since:
        stmt = stmt.where(AUDIT.c.at >= datetime.combine(where.since, time(), UTC))
    if where.until:
        stmt = stmt.where(AUDIT.c.at < datetime.combine(where.until + timedelta(days=1), time(), UTC))
    return stmt.order_by(AUDIT.c.id.desc()).limit(limit)


def events(session: Session, *, actor: Actor, entity: str | None = None, entity_id: int | None = None,
           where: AuditFilter | None = None, limit: int = 500) -> pd.DataFrame:
    """Return audit rows, newest first (admins only), filtered in SQL, their values as readable changes."""
    require_role(actor, ("admin",), "read the audit trail")
    where = where or AuditFilter()
    if entity:
        where = AuditFilter(**(where.__dict__ | {"entity": entity}))
    if entity_id is not None:
        where = AuditFilter(**(where.__dict__ | {"entity_id": entity_id}))
    rows = session.execute(_filtered(where, limit)).mappings().all()
    clinicians = {value for row in rows for side in (row["before"], row["after"])
                  if side and '"clinician_id"' in side for value in [_values(side).get("clinician_id")]
                  if isinstance(value, int)}
    usernames = dict(session.execute(select(User.id, User.username).where(User.id.in_(clinicians))).all()) \
        if clinicians else {}
    frame = pd.DataFrame(
        [{**{k: row[k] for k in SHOWN if k != "changes"},
          "changes": readable_changes(row["before"], row["after"], usernames)} for row in rows],
        columns=list(SHOWN),
    )
    frame["entity_id"] = frame["entity_id"].astype("Int64")
    return frame


def _cell(value: object) -> object:
    """Return a CSV cell that a spreadsheet shows as text, never runs as a formula (OWASP CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(session: Session, *, actor: Actor, where: AuditFilter, limit: int) -> str:
    """Return the filtered audit rows as CSV (as the page lists them); the export itself is audited (admins)."""
    frame = events(session, actor=actor, where=where, limit=limit)
    frame["at"] = frame["at"].map(lambda moment: _moment(moment) if pd.notna(moment) else "")
    out = io.StringIO()
    frame.map(_cell).to_csv(out, index=False, lineterminator="\n")
    record(session, actor, "export", "audit_log", detail=f"audit trail CSV: {len(frame)} rows; {where.words()}")
    return out.getvalue()
