"""The append-only audit trail: written in the same transaction as the change it records, read by the audit page.

Every row is chained to the one before by hashes (`db.audit_chain`), so a row changed, removed or slipped in after
it was written is found.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
from sqlalchemy import Select, func, insert, select
from sqlmodel import Session

from db import bulk
from db.access import Actor, require_role
from db.audit_chain import AUDIT, chain_hash, chain_head, hash_columns, moment_text
from db.csv_format import neutralised
from db.models import AuditEvent, Episode, Patient, SideEffect, TreatmentSession, User, utcnow
from db.patient_search import search_id

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
    prev_hash = chain_head(session)
    row = {"at": utcnow(), "actor_id": actor.id, "actor": actor.username, "action": action, "entity": entity,
           "entity_id": entity_id, "patient": patient, "before": _json(before), "after": _json(after),
           "detail": detail[:500]}
    session.execute(insert(AUDIT).values(row | {"prev_hash": prev_hash, "row_hash": chain_hash(prev_hash, row)}))


def record_many(
    session: Session, actor: Actor, action: str, entity: str, entity_ids: list[int], after: dict[str, list], *,
    detail: str = "", patients: list[str | None] | None = None,
) -> None:
    """Add one chained audit row per entity id, its values after given as columns, in bulk inserts.

    Each row's `after` is the JSON that `record` would write for `{name: values[i] for name, values in after}`,
    and its patient is looked up from the entity as `record` does unless given (`patients`, one per id); all in the
    caller's transaction. The rows are built and inserted RECORD_MANY_CHUNK at a time, in order, so that an import's
    200,000 rows never hold all their JSON and canonical text at once.
    """
    if not entity_ids:
        return
    entity_ids = list(entity_ids)
    session.flush()
    if patients is None:
        patients = _patients_of(session, entity, entity_ids)
    constant = {"at": utcnow(), "actor_id": actor.id, "actor": actor.username, "action": action, "entity": entity,
                "before": None, "detail": detail[:500]}
    head = chain_head(session)
    for start in range(0, len(entity_ids), RECORD_MANY_CHUNK):
        stop = start + RECORD_MANY_CHUNK
        ids = entity_ids[start:stop]
        afters = (_json_rows({name: values[start:stop] for name, values in after.items()}) if after
                  else [None] * len(ids))
        varying = {"entity_id": ids, "patient": patients[start:stop], "after": afters}
        prev_hashes, row_hashes = hash_columns(head, constant | varying, len(ids))
        bulk.insert_columns(session, AUDIT, constant | varying | {"prev_hash": prev_hashes, "row_hash": row_hashes})
        head = row_hashes[-1]


RECORD_MANY_CHUNK = 20_000  # audit rows built and inserted at once by record_many


def _json_rows(columns: dict[str, list]) -> list[str]:
    """Return `_json` of each row of these columns, built from each column's values encoded once each."""
    names = sorted(columns)  # sorted as `_json` sorts its keys
    parts = [_json_column(("{" if position == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": ",
                          columns[name], "}" if position == len(names) - 1 else "")
             for position, name in enumerate(names)]
    return list(map("".join, zip(*parts, strict=True)))


def _json_column(prefix: str, values: list, suffix: str = "") -> list[str]:
    """Return `prefix` + the JSON of each value + `suffix`, the value as `json.dumps` writes it."""
    kinds = {value.__class__ for value in values} - {type(None)}
    if kinds == {float}:  # equal floats are the same JSON, but for 0.0 and -0.0, one key of a dict
        encoded = {value: prefix + ("null" if value is None else repr(value) if value - value == 0
                                    else json.dumps(value)) + suffix for value in set(values)}
        if 0.0 not in encoded:
            return list(map(encoded.__getitem__, values))
        zero, minus_zero = prefix + "0.0" + suffix, prefix + "-0.0" + suffix
        return [encoded[value] if value or value is None or value != value
                else minus_zero if math.copysign(1.0, value) < 0 else zero for value in values]
    if len(kinds) <= 1:  # one type: equal values are the same JSON
        encoded = {value: prefix + json.dumps(value, default=_iso, ensure_ascii=False) + suffix
                   for value in set(values)}
        return list(map(encoded.__getitem__, values))
    encoded = {}  # 1, 1.0 and True are one key of a dict, not the same JSON
    out = []
    for value in values:
        key = (value.__class__, repr(value))
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = prefix + json.dumps(value, default=_iso, ensure_ascii=False) + suffix
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


def _as_stored(session: Session, where: AuditFilter) -> AuditFilter:
    """Return the filter with its patient and user as the trail stores them, so that "p0002" finds P0002's rows and
    "Admin" the admin's: a patient id typed in another case reads as the one stored patient it names, a username in
    lower case (as every account's is). Compared exactly after that, on the trail's indexes."""
    typed, stored = where.patient.strip(), []
    if typed:
        found = session.scalars(select(Patient.pseudonym).where(Patient.search_id == search_id(typed)))
        stored = [pseudonym for pseudonym in found if pseudonym.lower() == typed.lower()]
    return replace(where, patient=stored[0] if len(stored) == 1 else typed, user=where.user.strip().lower())


def events(session: Session, *, actor: Actor, entity: str | None = None, entity_id: int | None = None,
           where: AuditFilter | None = None, limit: int = 500) -> pd.DataFrame:
    """Return audit rows, newest first (admins only), filtered in SQL, their values as readable changes."""
    require_role(actor, ("admin",), "read the audit trail")
    where = where or AuditFilter()
    if entity:
        where = AuditFilter(**(where.__dict__ | {"entity": entity}))
    if entity_id is not None:
        where = AuditFilter(**(where.__dict__ | {"entity_id": entity_id}))
    rows = session.execute(_filtered(_as_stored(session, where), limit)).mappings().all()
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


def export_csv(session: Session, *, actor: Actor, where: AuditFilter, limit: int) -> str:
    """Return the filtered audit rows as CSV (as the page lists them); the export itself is audited (admins)."""
    frame = events(session, actor=actor, where=where, limit=limit)
    frame["at"] = frame["at"].map(lambda moment: moment_text(moment) if pd.notna(moment) else "")
    out = io.StringIO()
    frame.map(lambda cell: neutralised(cell) if isinstance(cell, str) else cell).to_csv(out, index=False,
                                                                                      lineterminator="\n")
    record(session, actor, "export", "audit_log", detail=f"audit trail CSV: {len(frame)} rows; {where.words()}")
    return out.getvalue()


# Audited actions that change no figure: a clinic signing in all morning leaves every analysis current.
QUIET_ACTIONS = ("login", "login_failed", "logout", "export")


def newest_id(session: Session) -> int:
    """Return the id of the newest audit row (0 with none): rows are appended in id order under the chain's lock."""
    return bulk.highest_id(session, AuditEvent.__table__)


def newest_change_after(session: Session, seen: int) -> int | None:
    """Return the id of the newest audit row after `seen` that records a change (not in QUIET_ACTIONS), if any:
    a range of the primary key, so reading what was added since costs as little as what was added."""
    return session.execute(select(func.max(AuditEvent.id)).where(
        AuditEvent.id > seen, AuditEvent.action.not_in(QUIET_ACTIONS))).scalar()
