"""Accounts: argon2id password hashes, login with lockout, and the admin's account management."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select
from sqlmodel import Session

from db import audit
from db.access import Actor, require_role
from db.engine import write_session
from db.models import ROLES, Patient, User

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(minutes=30)
MIN_PASSWORD_LENGTH = 10
USERNAME = re.compile(r"^[a-z0-9_.-]{2,64}$")

# argon2-cffi's defaults are Argon2id with RFC 9106's low-memory profile. Tests swap in a cheap hasher.
hasher = PasswordHasher()
UNKNOWN_USER = "(unknown user)"  # the audit's actor for a login with a username that has no account
# A hash of a password nobody has, checked when the username is unknown, so a login takes as long either way
# and its timing does not tell which usernames exist.
_DUMMY_HASH = hasher.hash("no such user, but the same amount of work")


class LoginRefused(Exception):
    """Raised when a login is refused; the message is safe to show (it never says whether the username exists)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def actor_for(user: User) -> Actor:
    """Return the Actor a logged-in user acts as."""
    return Actor(id=user.id, username=user.username, role=user.role, patient_id=user.patient_id)


def check_password_strength(password: str) -> None:
    """Raise ValueError naming the problem if a new password is too weak."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")


def login(engine: Engine, username: str, password: str, *, now: Callable[[], datetime] = _now) -> Actor:
    """Return the Actor for a correct username and password, or raise LoginRefused; every attempt is audited.

    After MAX_FAILED_LOGINS wrong passwords in a row the account is locked for LOCKOUT. This takes the engine, not
    a session, because a refused login must still commit its failure count and audit row before raising.
    """
    with write_session(engine) as session:
        outcome = _attempt(session, username, password, now())
    if isinstance(outcome, LoginRefused):
        raise outcome
    return outcome


def _attempt(session: Session, username: str, password: str, at: datetime) -> Actor | LoginRefused:
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    refused = LoginRefused("Wrong username or password.")
    if user is None or user.password_hash is None:
        with suppress(VerificationError):
            hasher.verify(_DUMMY_HASH, password)
        # The typed name is not kept: people type their password into the username field, and the trail is forever.
        audit.record(session, Actor(None, UNKNOWN_USER, "nobody"), "login_failed", "user", detail="unknown user")
        return refused
    actor = actor_for(user)
    locked_until = _aware(user.locked_until)
    if locked_until and locked_until > at:
        audit.record(session, actor, "login_failed", "user", user.id, detail="account locked")
        minutes = max(1, math.ceil((locked_until - at).total_seconds() / 60))
        return LoginRefused(f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        detail = "wrong password"
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = at + LOCKOUT, 0
            detail = f"wrong password; locked for {int(LOCKOUT.total_seconds() // 60)} minutes"
        audit.record(session, actor, "login_failed", "user", user.id, detail=detail)
        return refused
    if not user.is_active:  # said only to someone who knows the password
        audit.record(session, actor, "login_failed", "user", user.id, detail="account disabled")
        return LoginRefused("This account is disabled. Ask an administrator.")
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, at
    audit.record(session, actor, "login", "user", user.id)
    return actor


def is_active(session: Session, *, actor: Actor) -> bool:
    """Return whether the actor's account still exists and is enabled (a disabled account's sessions end)."""
    require_role(actor, ROLES, "use the app")
    return bool(session.scalars(select(User.is_active).where(User.id == actor.id)).first())


def actor_by_email(session: Session, email: str) -> Actor | None:
    """Return the Actor of the active account with this e-mail (OpenID Connect login), or None."""
    user = session.scalars(select(User).where(User.email == email.strip().lower(), User.is_active)).first()
    if user is None:
        return None
    user.last_login_at = _now()
    audit.record(session, actor_for(user), "login", "user", user.id, detail="OpenID Connect")
    return actor_for(user)


def add_user(
    session: Session,
    *,
    actor: Actor,
    username: str,
    role: str,
    password: str | None,
    display_name: str = "",
    email: str | None = None,
    patient_pseudonym: str | None = None,
) -> User:
    """Create an account (admins only); a patient account is linked to exactly one existing patient record."""
    require_role(actor, ("admin",), "manage accounts")
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise ValueError("username: 2–64 lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise ValueError(f"role: must be one of {', '.join(ROLES)}")
    if session.scalars(select(User).where(User.username == username)).first():
        raise ValueError(f"username: '{username}' is taken")
    if email and session.scalars(select(User.id).where(User.email == email.strip().lower())).first():
        raise ValueError(f"e-mail: '{email.strip().lower()}' is used by another account")
    patient_id = None
    if role == "patient":
        if not patient_pseudonym:
            raise ValueError("patient: a patient account needs the patient's id")
        patient = session.scalars(select(Patient).where(Patient.pseudonym == patient_pseudonym)).first()
        if patient is None:
            raise ValueError(f"patient: no patient '{patient_pseudonym}'")
        patient_id = patient.id
    elif patient_pseudonym:
        raise ValueError("patient: only a patient account is linked to a patient record")
    if password is not None:
        check_password_strength(password)
    user = User(
        username=username, role=role, display_name=display_name or username,
        email=email.strip().lower() if email else None, patient_id=patient_id,
        password_hash=hasher.hash(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user_add", "user", user.id, after=_public(user))
    return user


STAFF_ROLES = ("clinician", "manager", "admin")  # a patient account belongs to one patient record: no role change


def _keep_an_enabled_admin(session: Session, user: User, change: str) -> None:
    """Refuse `change` when `user` is the last enabled admin: nobody would be left to manage accounts."""
    # FOR UPDATE on PostgreSQL: two admins disabling each other at once cannot both see the other still enabled.
    admins = session.scalars(select(User.id).where(User.role == "admin", User.is_active).with_for_update()).all()
    if user.role == "admin" and user.is_active and set(admins) <= {user.id}:
        raise ValueError(f"{user.username} is the last enabled admin and cannot be {change}: enable or add another "
                         "admin first")


def set_active(session: Session, *, actor: Actor, username: str, active: bool) -> None:
    """Disable (or enable again) an account (admins only); nobody disables themselves or the last enabled admin."""
    require_role(actor, ("admin",), "manage accounts")
    user = _user(session, username)
    if not active:
        if user.id == actor.id:
            raise ValueError("you cannot disable your own account: ask another admin")
        _keep_an_enabled_admin(session, user, "disabled")
    before = _public(user)
    user.is_active = active
    # One action for both directions (the audit vocabulary is a CHECK constraint); before/after say which.
    audit.record(session, actor, "user_disable", "user", user.id, before=before, after=_public(user))


def set_role(session: Session, *, actor: Actor, username: str, role: str) -> None:
    """Change a staff account's role (admins only); the last enabled admin is never demoted."""
    require_role(actor, ("admin",), "manage accounts")
    user = _user(session, username)
    if role not in STAFF_ROLES or user.role not in STAFF_ROLES:
        raise ValueError("role: only clinician, manager and admin accounts change role; a patient account stays "
                         "linked to its patient")
    if role != "admin":
        _keep_an_enabled_admin(session, user, "demoted")
    before = _public(user)
    user.role = role
    audit.record(session, actor, "update", "user", user.id, before=before, after=_public(user))


def reset_password(session: Session, *, actor: Actor, username: str, password: str) -> None:
    """Set a new password and lift any lock (admins only); the password itself is never stored or audited."""
    require_role(actor, ("admin",), "manage accounts")
    check_password_strength(password)
    user = _user(session, username)
    user.password_hash, user.failed_logins, user.locked_until = hasher.hash(password), 0, None
    audit.record(session, actor, "user_password_reset", "user", user.id)


def users(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every account without its password hash (admins only)."""
    require_role(actor, ("admin",), "list accounts")
    rows = session.execute(
        select(User.username, User.role, User.display_name, User.email, Patient.pseudonym.label("patient_id"),
               User.is_active, User.locked_until, User.last_login_at)
        .outerjoin(Patient, Patient.id == User.patient_id)
        .order_by(User.role, User.username)
    )
    return pd.DataFrame(rows.all(), columns=list(rows.keys()))


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise ValueError(f"username: no account '{username}'")
    return user


def _public(user: User) -> dict:
    return {"username": user.username, "role": user.role, "email": user.email, "patient_id": user.patient_id,
            "is_active": user.is_active}
