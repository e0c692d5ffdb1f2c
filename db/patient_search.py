"""The patient list and the patient picker's search, labelled by what the reader may see of each patient.

The search reads keys kept on write, never the ids and names themselves (issue #15: lower-casing every id took 51 ms
at a million sessions): a patient's id lower-cased (`Patient.search_id`), and their name case- and accent-folded from
the start of each of its words (`PatientNameKey`), both made by `add_patient`, the one place a patient is made from
a name (an import, which has no names, sets `search_id` itself). A prefix is a range of keys that an index answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

import pandas as pd
from sqlalchemy import and_, func, select, true
from sqlmodel import Session

from db.access import AGGREGATE_READERS, IDENTIFIED_READERS, Actor, require_role
from db.frames import read_frame
from db.models import LIVE_SESSIONS, Episode, Patient, PatientNameKey, TreatmentSession

PICKER_LIMIT = 500  # patients offered at once by find_patients; more than a clinic's list, far fewer than a network's
KEY_LENGTH = PatientNameKey.__table__.c.key.type.length  # a longer key or search is compared by its start only
WORD = re.compile(r"\w+")


def search_id(pseudonym: str) -> str:
    """Return the form of a patient id that the search compares: lower-cased."""
    return pseudonym.lower()[:KEY_LENGTH]


def in_any_capitals(session: Session, pseudonyms: Collection[str]) -> list[tuple[str, int]]:
    """Return (id as stored, row id) of each stored patient whose id is one of `pseudonyms` in any capitals ("P0002"
    for "p0002"), read through the indexed `search_id`: one id in two capitals is one patient's (docs/DESIGN.md)."""
    wanted = {p.lower() for p in pseudonyms}
    found = session.execute(select(Patient.pseudonym, Patient.id)
                            .where(Patient.search_id.in_({search_id(p) for p in pseudonyms})))
    return [(pseudonym, patient_id) for pseudonym, patient_id in found if pseudonym.lower() in wanted]


def folded(text: str) -> str:
    """Return text case- and accent-folded, its words (letters, digits, '_') joined by single spaces.

    "José-María  Núñez" -> "jose maria nunez".
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join(WORD.findall("".join(c for c in decomposed if not unicodedata.combining(c))))


def name_keys(name: str | None) -> list[str]:
    """Return the keys a name is found by: its folded form from the start of each word to its end."""
    words = folded(name or "").split()
    return list(dict.fromkeys(" ".join(words[i:])[:KEY_LENGTH] for i in range(len(words))))


def add_patient(session: Session, pseudonym: str, name: str | None = None) -> Patient:
    """Insert a patient with the search keys of their id and name, and return them (flushed: their id is set)."""
    patient = Patient(pseudonym=pseudonym, name=name, search_id=search_id(pseudonym))
    session.add(patient)
    session.flush()
    session.add_all(PatientNameKey(key=key, patient_id=patient.id) for key in name_keys(name))
    return patient


def _starts_with(column, prefix: str):
    """Return the condition that `column` (a search key) starts with `prefix`: a range of code points."""
    prefix = prefix[:KEY_LENGTH]
    following = ord(prefix[-1]) + 1
    following += 0x800 if following == 0xD800 else 0  # past the surrogates, which are no characters
    below = column < prefix[:-1] + chr(following) if following <= 0x10FFFF else true()
    return and_(column >= prefix, below)


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
    """Return up to `limit` patients to pick from, in pseudonymous-id order case aside: id, patient_id, name, label.

    With `search`, only patients whose id starts with it, or (for clinicians and admins) one of whose name's words
    does (a name is found by its start from any word: "tur" and "alan tur" find Alan Turing), case and accents
    aside; the patients whose ids are in `include` (the one already picked) are always there too. Nothing is counted,
    and the ids are read in the order of their search key: listing, or finding by id, reads `limit` rows of its
    index whatever the number of patients (a name search reads every patient it finds).
    """
    require_role(actor, AGGREGATE_READERS, "list patients")
    stmt = select(Patient.id, Patient.pseudonym, Patient.name, Patient.search_id)
    text = search.strip()
    parts = [stmt]
    if text:
        parts = [stmt.where(_starts_with(Patient.search_id, search_id(text)))]
        name = folded(text)
        if name and actor.role in IDENTIFIED_READERS:  # a manager may not find a patient by a name they cannot see
            named = select(PatientNameKey.patient_id).where(_starts_with(PatientNameKey.key, name))
            parts.append(stmt.where(Patient.id.in_(named)))
    connection = session.connection()
    # The first `limit` of each part, then of them all: the first of the whole are among those.
    found = {row.id: row for part in parts
             for row in connection.execute(part.order_by(Patient.search_id, Patient.id).limit(limit))}
    chosen = sorted(found.values(), key=_in_order)[:limit]
    missing = set(include) - {row.pseudonym for row in chosen}
    if missing:
        chosen = sorted([*chosen, *connection.execute(stmt.where(Patient.pseudonym.in_(sorted(missing))))],
                        key=_in_order)
    columns = {"id": 0, "patient_id": 1, "name": 2}
    frame = pd.DataFrame({column: [row[i] for row in chosen] for column, i in columns.items()}, columns=list(columns))
    return _labelled(frame, actor)


def _in_order(row) -> tuple:
    """Return the key of the list's order: the search key of the id (the id case aside), then entry order."""
    return row.search_id, row.id
