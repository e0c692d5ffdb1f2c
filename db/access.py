"""Who is acting, and what each role may read and write. Every query and write in db/ checks it."""

from __future__ import annotations

import getpass
from dataclasses import dataclass


class AccessDenied(PermissionError):
    """Raised when the acting user's role does not allow the read or write asked for; no data is returned."""


@dataclass(frozen=True)
class Actor:
    """The person (or command line) on whose behalf data is read or written."""

    id: int | None
    username: str
    role: str  # clinician, manager, patient or admin
    patient_id: int | None = None  # a patient account's one patient record

    @classmethod
    def command_line(cls) -> Actor:
        """Return the actor for `python -m db`: whoever can run it owns the database file, so an admin."""
        return cls(id=None, username=f"cli:{getpass.getuser()}", role="admin")


CLINICAL_WRITERS = ("clinician", "admin")  # only they record, correct or delete clinical data
IDENTIFIED_READERS = ("clinician", "admin")  # names and notes of any patient
AGGREGATE_READERS = ("manager", "clinician", "admin")  # clinic-wide figures and pseudonymous ids


def require_role(actor: Actor, roles: tuple[str, ...], what: str) -> None:
    """Raise AccessDenied unless the actor has one of `roles`."""
    if actor is None or actor.role not in roles:
        role = actor.role if actor else "nobody"
        raise AccessDenied(f"a {role} may not {what}")


def require_patient(actor: Actor, patient_id: int) -> None:
    """Raise AccessDenied unless the actor may read this patient's identified record (a patient: only their own)."""
    if actor is not None and actor.role == "patient" and actor.patient_id == patient_id is not None:
        return
    require_role(actor, IDENTIFIED_READERS, "read another patient's record")
