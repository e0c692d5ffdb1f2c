"""The patient list and the patient picker's search, labelled by what the reader may see of each patient."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import and_, func, select
from sqlmodel import Session

from db.access import AGGREGATE_READERS, IDENTIFIED_READERS, Actor, require_role
from db.models import LIVE_SESSIONS, Episode, Patient, TreatmentSession
from db.queries import read_frame

PICKER_LIMIT = 500  # patients offered at once by find_patients; more than a clinic's list, far fewer than a network's


def _labelled(frame: pd.DataFrame, actor: Actor) -> pd.DataFrame:
    """Return patients with a label to pick by: `id — name` for clinicians and admins, the id alone for others."""
    if actor.role not in IDENTIFIED_READERS:
        frame["name"] = None
    frame["label"] = [
        f"{p} — {n}" if isinstance(n, str) and n else p for p, n in zip(frame["patient_id"], frame["name"], strict=True)
    ]
    return frame


def patients(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return one row per patient: id, pseudonymous id, a label to pick by, sessions and last session date.

    Clinicians and admins see the patient's name in the label; a manager sees the pseudonymous id only.
    """
    require_role(actor, AGGREGATE_READERS, "list patients")
    sessions = TreatmentSession
    stmt = (
        select(
            Patient.id,
            Patient.pseudonym.label("patient_id"),
            Patient.name,
            func.count(sessions.id).label("sessions"),
            func.max(sessions.session_date).label("last_session"),
        )
        .outerjoin(Episode, Episode.patient_id == Patient.id)
        .outerjoin(sessions, and_(sessions.episode_id == Episode.id, LIVE_SESSIONS))
        .group_by(Patient.id, Patient.pseudonym, Patient.name)
        .order_by(Patient.pseudonym)
    )
    return _labelled(read_frame(session, stmt), actor)


def find_patients(
    session: Session, *, actor: Actor, search: str = "", limit: int = PICKER_LIMIT, include: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Return up to `limit` patients to pick from, in pseudonymous-id order: id, patient_id, name and label.

    With `search`, only patients whose id starts with it, or (for clinicians and admins) whose name contains it,
    case aside; the patients whose ids are in `include` (the one already picked) are always there too. Unlike
    `patients`, nothing is counted, so the cost does not grow with the number of sessions, and without a search it
    reads `limit` rows of the pseudonym index whatever the number of patients.
    """
    require_role(actor, AGGREGATE_READERS, "list patients")
    stmt = select(Patient.id, Patient.pseudonym.label("patient_id"), Patient.name)
    text = search.strip()
    listed = stmt
    if text:
        matches = Patient.pseudonym.istartswith(text, autoescape=True)
        if actor.role in IDENTIFIED_READERS:  # a manager may not find a patient by a name they are not allowed to see
            matches = matches | Patient.name.icontains(text, autoescape=True)
        listed = stmt.where(matches)
    frame = read_frame(session, listed.order_by(Patient.pseudonym).limit(limit))
    missing = sorted(set(include) - set(frame["patient_id"]))
    if missing:
        frame = pd.concat([frame, read_frame(session, stmt.where(Patient.pseudonym.in_(missing)))], ignore_index=True)
        frame = frame.sort_values("patient_id", ignore_index=True)
    return _labelled(frame, actor)
