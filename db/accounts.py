"""Accounts: argon2id password hashes, login with back-off, and the admin's account management."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from clinic.vocabulary import NEEDLING_TRAINING_MAX
from db import audit
from db.access import Actor, require_role
from db.engine import write_session
from db.models import ROLES, Patient, User
from db.passwords import check_password_strength
from db.validation import InvalidInput, Problem, longer_than, range_problem, unstorable

# After this many wrong passwords in a row, an account's next password check waits FIRST_DELAY, doubling with each
# further failure up to MAX_DELAY. A wait, never a lock: the right password still logs in, so nobody can keep an
# account (say `admin`) shut by failing on purpose. docs/DEPLOYMENT.md, "Logins", says why.
MAX_FAILED_LOGINS = 5
FIRST_DELAY = timedelta(seconds=1)
MAX_DELAY = timedelta(seconds=30)
IDLE_TIMEOUT = timedelta(minutes=30)
USERNAME = re.compile(r"^[a-z0-9_.-]{2,64}$")
WRONG = "Wrong username or password."  # every refused guess, known or unknown username, slowed or not

# argon2-cffi's defaults are Argon2id with RFC 9106's low-memory profile. Tests swap in a cheap hasher.
hasher = PasswordHasher()
UNKNOWN_USER = "(unknown user)"  # the audit's actor for a login with a username that has no account
# A hash of a password nobody has, checked when the username is unknown, so a login takes as long either way
# and its timing does not tell which usernames exist.
_DUMMY_HASH = hasher.hash("no such user, but the same amount of work")
# Argon2id takes 64 MiB and most of a core per check: a burst of logins waits here rather than exhausting memory.
_PASSWORD_CHECKS = threading.BoundedSemaphore(4)
_sleep = time.sleep  # the wait of a slowed login; app tests replace it


class LoginRefused(Exception):
    """Raised when a login is refused; the message is safe to show (it never says whether the username exists)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def actor_for(user: User) -> Actor:
    """Return the Actor a logged-in user acts as."""
    return Actor(id=user.id, username=user.username, role=user.role, patient_id=user.patient_id)


def login_delay(failures: int, *, free: int = MAX_FAILED_LOGINS) -> timedelta:
    """Return how long the next check waits after `failures` wrong passwords in a row (none for the first `free`)."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - free, 32), MAX_DELAY)


@dataclass(frozen=True)
class _Account:
    """What a login reads before checking the password, outside any write transaction."""

    id: int
    password_hash: str | None
    waits_until: datetime | None


def login(
    engine: Engine, username: str, password: str, *, now: Callable[[], datetime] = _now,
    sleep: Callable[[float], None] | None = None,
) -> Actor:
    """Return the Actor for a correct username and password, or raise LoginRefused; every attempt is audited.

    After MAX_FAILED_LOGINS wrong passwords in a row, each check of the account's password first waits (see
    login_delay); the answer to a wrong guess is the same whoever it is for. The slow part, Argon2, runs outside
    any write transaction, so failing logins never hold up a clinician's save. This takes the engine, not a
    session, because a refused login must still commit its failure count and audit row before raising.
    """
    name = username.strip().lower()
    with Session(engine) as session:  # a read: no write lock is taken, and it ends before the wait and the check
        account = session.execute(
            select(User.id, User.password_hash, User.locked_until).where(User.username == name)
        ).first()
    account = _Account(account.id, account.password_hash, _aware(account.locked_until)) if account else None
    waits_until = account.waits_until if account else _unknown_names.waits_until(name)
    waited = _wait(waits_until, now, _sleep if sleep is None else sleep)
    correct = _password_matches(account.password_hash if account else None, password)
    new_hash = hasher.hash(password) if correct and hasher.check_needs_rehash(account.password_hash) else None
    with write_session(engine) as session:
        outcome = _record_attempt(session, name, account, correct, new_hash, now(), waited)
    if isinstance(outcome, LoginRefused):
        raise outcome
    return outcome


def _wait(until: datetime | None, now: Callable[[], datetime], sleep: Callable[[float], None]) -> int:
    """Sleep until `until` (at most MAX_DELAY, whatever another replica's clock said); return the seconds waited."""
    if until is None:
        return 0
    seconds = min((until - now()).total_seconds(), MAX_DELAY.total_seconds())
    if seconds <= 0:
        return 0
    sleep(seconds)
    return round(seconds)


def _password_matches(password_hash: str | None, password: str) -> bool:
    """Return whether the password matches; an account without one, or no account, costs the same check."""
    with _PASSWORD_CHECKS:
        try:
            return hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False


def _record_attempt(
    session: Session, name: str, account: _Account | None, correct: bool, new_hash: str | None, at: datetime,
    waited: int,
) -> Actor | LoginRefused:
    """Write the attempt's outcome (counts from the row as it is now, under the write lock) and its audit row."""
    after_wait = f" after a {waited} s back-off" if waited else ""
    user = session.get(User, account.id) if account else None
    if user is None:
        _unknown_names.failed(name, at)
        # The typed name is not kept: people type their password into the username field, and the trail is forever.
        audit.record(session, Actor(None, UNKNOWN_USER, "nobody"), "login_failed", "user",
                     detail=f"unknown user{after_wait}")
        return LoginRefused(WRONG)
    actor = actor_for(user)
    # A password reset while this one was being checked: the check was against the old password.
    if not correct or user.password_hash != account.password_hash:
        user.failed_logins += 1
        delay = login_delay(user.failed_logins)
        user.locked_until = at + delay if delay else None
        detail = f"wrong password{after_wait}" + (f"; next check waits {delay.seconds} s" if delay else "")
        audit.record(session, actor, "login_failed", "user", user.id, detail=detail)
        return LoginRefused(WRONG)
    if not user.is_active:  # said only to someone who knows the password
        audit.record(session, actor, "login_failed", "user", user.id, detail=f"account disabled{after_wait}")
        return LoginRefused("This account is disabled. Ask an administrator.")
    if new_hash is not None:
        user.password_hash = new_hash
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, at
    audit.record(session, actor, "login", "user", user.id, detail=after_wait.strip())
    return actor


class _UnknownNames:
    """Failures per unknown username, in this process only, so that a guessed name is slowed like a real one.

    Names are kept as keyed hashes (a password typed into the username field is not kept); the oldest are
    forgotten beyond LIMIT.
    """

    LIMIT = 10_000

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._failures: OrderedDict[bytes, tuple[int, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, name: str) -> bytes:
        return hmac.new(self._key, name.encode(), hashlib.sha256).digest()

    def waits_until(self, name: str) -> datetime | None:
        with self._lock:
            failures, until = self._failures.get(self._digest(name), (0, None))
        return until if login_delay(failures) else None

    def failed(self, name: str, at: datetime) -> None:
        with self._lock:
            digest = self._digest(name)
            failures = self._failures.pop(digest, (0, None))[0] + 1
            self._failures[digest] = (failures, at + login_delay(failures))
            while len(self._failures) > self.LIMIT:
                self._failures.popitem(last=False)


_unknown_names = _UnknownNames()


def session_ended(session: Session, *, actor: Actor, logged_in_at: datetime) -> str | None:
    """Return why a session of the actor that logged in at `logged_in_at` is over, or None while it is not.

    "disabled": the account is disabled (or gone); "ended": a logout, password reset or role change since.
    """
    require_role(actor, ROLES, "use the app")
    row = session.execute(select(User.is_active, User.sessions_valid_after).where(User.id == actor.id)).first()
    if row is None or not row.is_active:
        return "disabled"
    valid_after = _aware(row.sessions_valid_after)
    return "ended" if valid_after is not None and logged_in_at <= valid_after else None


def log_out(session: Session, *, actor: Actor) -> None:
    """End every session of the actor's account, in every browser, and audit the logout."""
    require_role(actor, ROLES, "use the app")
    user = session.get(User, actor.id)
    if user is not None:
        user.sessions_valid_after = _now()
    audit.record(session, actor, "logout", "user", actor.id, detail="every session")


def _end_sessions(user: User) -> None:
    """End the account's open sessions at their next click (they act with what the account was)."""
    user.sessions_valid_after = _now()


def email_address(text: str) -> str:
    """Return an e-mail address as stored: the domain in lower case (it has no case), the local part as typed."""
    local, at, domain = text.strip().rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else text.strip()


def actor_by_email(session: Session, email: str, *, email_verified: bool) -> Actor | None:
    """Return the Actor of the active account with this e-mail (OpenID Connect login), or None.

    Only an address the identity provider has verified logs in, and only exactly as stored (the local part of an
    address may be case-sensitive, RFC 5321: `Alice@` and `alice@` can be two people's).
    """
    if email_verified is not True:
        return None
    user = session.scalars(select(User).where(User.email == email_address(email), User.is_active)).first()
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
    # Two accounts whose addresses differ only in case would be one mailbox at most providers: refused too.
    if email and session.scalars(select(User.id).where(func.lower(User.email) == email.strip().lower())).first():
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
        check_password_strength(password, username=username)
    user = User(
        username=username, role=role, display_name=display_name or username,
        email=email_address(email) if email else None, patient_id=patient_id,
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
    if not active:
        _end_sessions(user)
    # One action for both directions (the audit vocabulary is a CHECK constraint); before/after say which.
    _audit_change(session, actor, "user_disable", user, before, _public(user))


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
    _end_sessions(user)
    _audit_change(session, actor, "update", user, before, _public(user))


def reset_password(session: Session, *, actor: Actor, username: str, password: str) -> None:
    """Set a new password and lift any lock (admins only); the password itself is never stored or audited."""
    require_role(actor, ("admin",), "manage accounts")
    user = _user(session, username)
    check_password_strength(password, username=user.username)
    user.password_hash, user.failed_logins, user.locked_until = hasher.hash(password), 0, None
    _end_sessions(user)  # whoever knew the old password is logged out too
    audit.record(session, actor, "user_password_reset", "user", user.id)


def set_needling_background(session: Session, *, actor: Actor, username: str, training: str | None,
                            years: float | None) -> None:
    """Record a clinician's needling training (free text) and years of needling practice (0–60), STRICTA item 5;
    None or blank clears one. An admin for any staff account, a clinician for their own; audited when it changes."""
    user = _user(session, username)
    if not (actor is not None and actor.role == "clinician" and actor.id == user.id):
        require_role(actor, ("admin",), "record another account's needling background")
    if user.role == "patient":
        raise ValueError("needling_training: a patient account has no needling background")
    training = (training or "").strip() or None
    problem = training and (unstorable(training) or longer_than(training, NEEDLING_TRAINING_MAX))
    if problem:
        raise InvalidInput([Problem("needling_training", problem)])
    if problem := range_problem("years_practice", years):
        raise InvalidInput([Problem("years_practice", problem)])
    before = {"needling_training": user.needling_training, "years_practice": user.years_practice}
    after = {"needling_training": training, "years_practice": None if years is None else int(years)}
    if before != after:
        user.needling_training, user.years_practice = after["needling_training"], after["years_practice"]
        session.flush()
        _audit_change(session, actor, "update", user, before, after, detail="needling background")


def users(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every account without its password hash, with a clinician's needling background (admins only)."""
    require_role(actor, ("admin",), "list accounts")
    rows = session.execute(
        select(User.username, User.role, User.display_name, User.email, Patient.pseudonym.label("patient_id"),
               User.is_active, User.locked_until, User.last_login_at, User.needling_training, User.years_practice)
        .outerjoin(Patient, Patient.id == User.patient_id)
        .order_by(User.role, User.username)
    )
    return pd.DataFrame(rows.all(), columns=list(rows.keys()))


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise ValueError(f"username: no account '{username}'")
    return user


def _audit_change(session: Session, actor: Actor, action: str, user: User, before: dict, after: dict,
                  detail: str = "") -> None:
    """Audit a change to an account with only the fields it changed, as a session's correction is: the trail says
    what changed, not every field of the account. An action that changed none is audited too, and says so."""
    changed = [name for name in after if before.get(name) != after[name]]
    audit.record(session, actor, action, "user", user.id, before={n: before.get(n) for n in changed} or None,
                 after={n: after[n] for n in changed} or None, detail=detail if changed else "no field changed")


def _public(user: User) -> dict:
    return {"username": user.username, "role": user.role, "email": user.email, "patient_id": user.patient_id,
            "is_active": user.is_active}
