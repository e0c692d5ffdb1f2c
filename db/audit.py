"""The append-only audit trail, written in the same transaction as the change it records."""

from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd
from sqlalchemy import insert, select
from sqlmodel import Session

from db.access import Actor, require_role
from db.models import AuditEvent, utcnow


def _json(values: dict | None) -> str | None:
    if values is None:
        return None

    def default(value):
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        raise TypeError(f"cannot audit a {type(value).__name__}")

    return json.dumps(values, default=default, sort_keys=True, ensure_ascii=False)


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
    session: Session, actor: Actor, action: str, entity: str, rows: list[tuple[int, dict]], *, detail: str = ""
) -> None:
    """Add one audit row per (entity id, values after) in a single bulk insert, in the caller's transaction."""
    if rows:
        session.execute(insert(AuditEvent), [
            {"at": utcnow(), "actor_id": actor.id, "actor": actor.username, "action": action, "entity": entity,
             "entity_id": entity_id, "before": None, "after": _json(after), "detail": detail[:500]}
            for entity_id, after in rows
        ])


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
