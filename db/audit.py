"""The append-only audit trail, written in the same transaction as the change it records."""

from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from db import bulk
from db.access import Actor, require_role
from db.models import AuditEvent, utcnow


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
) -> None:
    """Add one audit row to the caller's transaction (it commits or rolls back with the change itself)."""
    session.add(
        AuditEvent(
            actor_id=actor.id, actor=actor.username, action=action, entity=entity, entity_id=entity_id,
            before=_json(before), after=_json(after), detail=detail[:500],
        )
    )


def record_many(
    session: Session, actor: Actor, action: str, entity: str, entity_ids: list[int], after: dict[str, list], *,
    detail: str = "",
) -> None:
    """Add one audit row per entity id, its values after given as columns, in one bulk insert (caller's transaction).

    Each row's `after` is the JSON that `record` would write for `{name: values[i] for name, values in after}`.
    """
    if not entity_ids:
        return
    bulk.insert_columns(session, AuditEvent.__table__, {
        "at": utcnow(), "actor_id": actor.id, "actor": actor.username, "action": action, "entity": entity,
        "entity_id": list(entity_ids), "before": None, "after": _json_rows(after) if after else None,
        "detail": detail[:500],
    })


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


def events(session: Session, *, actor: Actor, entity: str | None = None, entity_id: int | None = None,
           limit: int = 500) -> pd.DataFrame:
    """Return audit rows, newest first (admins only), optionally for one record."""
    require_role(actor, ("admin",), "read the audit trail")
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if entity:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    rows = [e.model_dump() for e in session.scalars(stmt)]
    return pd.DataFrame(rows, columns=list(AuditEvent.model_fields))
