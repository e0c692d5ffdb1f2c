"""Tests that accounts are argon2id-hashed, logins are refused and slowed (never locked), passwords follow NIST
SP 800-63B, a password check never holds the write lock, and no password leaks."""

from __future__ import annotations

import io
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from db import accounts, passwords, seeding
from db.access import Actor
from db.accounts import LoginRefused, login
from db.cli import main
from db.engine import WRITE_LOCK_KEY, make_engine, write_session
from db.models import User
from tests.db.factories import ADMIN, record

PRODUCTION_HASHER = accounts.hasher  # as imported, before tests/conftest.py swaps in a cheap one
PRODUCTION_DUMMY_HASH = accounts._DUMMY_HASH
WRONG = "Wrong username or password."
PASSWORD = "correct horse battery"
T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_unknown_names(monkeypatch):
    """Each test starts with no unknown username seen (passwords are hashed cheaply: tests.support.passwords)."""
    monkeypatch.setattr(accounts, "_unknown_names", accounts._UnknownNames())


# For tests of logic that is the same on every backend: one database (SQLite) keeps the module fast. Whatever
# depends on the database (time zones of stored times, case of stored names, the files) runs on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def clock(at: datetime):
    """Return an injectable clock that always says `at`."""
    return lambda: at


def add(engine: Engine, username: str, role: str = "clinician", password: str | None = PASSWORD, **fields) -> None:
    with write_session(engine) as session:
        accounts.add_user(session, actor=ADMIN, username=username, role=role, password=password, **fields)


def stored_user(engine: Engine, username: str) -> User:
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        session.expunge(user)
        return user


def set_active(engine: Engine, username: str, active: bool) -> None:
    with write_session(engine) as session:
        accounts.set_active(session, actor=ADMIN, username=username, active=active)


def reset(engine: Engine, username: str, password: str) -> None:
    with write_session(engine) as session:
        accounts.reset_password(session, actor=ADMIN, username=username, password=password)


class Waits(list):
    """A stand-in for time.sleep that remembers each wait (in whole seconds) instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(round(seconds))


def refusal(engine: Engine, username: str, password: str, at: datetime = T0, waits: Waits | None = None) -> str:
    """Return the message of a refused login (failing the test if the login succeeds)."""
    with pytest.raises(LoginRefused) as refused:
        login(engine, username, password, now=clock(at), sleep=Waits() if waits is None else waits)
    return str(refused.value)


# -- hashing ----------------------------------------------------------------------------------------------------------


def test_the_production_hasher_is_argon2id_with_the_rfc_9106_low_memory_profile():
    assert PRODUCTION_HASHER.type is Type.ID
    assert (PRODUCTION_HASHER.time_cost, PRODUCTION_HASHER.memory_cost, PRODUCTION_HASHER.parallelism) == (3, 65536, 4)
    assert PRODUCTION_DUMMY_HASH.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_stored_password_hashes_are_argon2id_and_verify_only_the_password_set(engine):
    add(engine, "alice")
    first = stored_user(engine, "alice").password_hash
    assert first.startswith("$argon2id$v=19$")
    reset(engine, "alice", "another long password")
    second = stored_user(engine, "alice").password_hash
    assert second.startswith("$argon2id$v=19$") and second != first
    assert PasswordHasher().verify(second, "another long password")


@sqlite_only
def test_a_login_with_a_weaker_stored_hash_rehashes_it_with_the_current_profile(engine, monkeypatch):
    add(engine, "alice")
    monkeypatch.setattr(accounts, "hasher", PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    login(engine, "alice", PASSWORD, now=clock(T0))
    rehashed = stored_user(engine, "alice").password_hash
    assert rehashed.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    login(engine, "alice", PASSWORD, now=clock(T0))  # and the new hash verifies


# -- logging in -------------------------------------------------------------------------------------------------------


def test_a_correct_password_logs_in_as_the_accounts_role_and_patient_record(engine):
    record(engine, patient_id="P7")
    add(engine, "pat", role="patient", patient_pseudonym="P7")
    actor = login(engine, "pat", PASSWORD, now=clock(T0))
    user = stored_user(engine, "pat")
    assert actor == Actor(id=user.id, username="pat", role="patient", patient_id=user.patient_id)
    assert user.patient_id is not None
    assert user.last_login_at == T0


@sqlite_only
def test_a_username_is_found_whatever_its_case_and_surrounding_spaces(engine):
    add(engine, "alice")
    assert login(engine, "  Alice ", PASSWORD, now=clock(T0)).username == "alice"


@sqlite_only
def test_a_wrong_password_is_refused_with_a_generic_message_and_counted(engine):
    add(engine, "alice")
    assert refusal(engine, "alice", "not the password") == WRONG
    assert stored_user(engine, "alice").failed_logins == 1


class CountingHasher(PasswordHasher):
    """A cheap hasher that remembers which hashes it verified."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str, password: str) -> bool:  # noqa: A002 (argon2-cffi's parameter name)
        self.verified.append(hash)
        return super().verify(hash, password)


@sqlite_only
def test_an_unknown_username_gets_the_same_message_after_the_same_work_as_a_wrong_password(engine, monkeypatch):
    add(engine, "alice")
    counting = CountingHasher()
    monkeypatch.setattr(accounts, "hasher", counting)
    assert refusal(engine, "nobody-here", PASSWORD) == refusal(engine, "alice", "not the password") == WRONG
    # The unknown username still costs an Argon2 verification (of a dummy hash), so timing does not tell.
    assert counting.verified == [accounts._DUMMY_HASH, stored_user(engine, "alice").password_hash]


@sqlite_only
def test_an_account_without_a_password_cannot_log_in_with_any(engine):
    add(engine, "oidc_only", password=None)
    assert refusal(engine, "oidc_only", "") == WRONG
    assert refusal(engine, "oidc_only", PASSWORD) == WRONG


def test_after_five_wrong_passwords_each_check_waits_longer_but_the_right_password_still_logs_in(engine):
    add(engine, "alice")
    waits = Waits()
    for attempt in range(5):
        assert refusal(engine, "alice", "guess", T0 + timedelta(seconds=attempt), waits) == WRONG
    assert waits == []  # the first five are answered at once
    fifth = T0 + timedelta(seconds=4)
    assert stored_user(engine, "alice").locked_until == fifth + timedelta(seconds=1)

    # Each further guess at once after the last waits 1, 2, 4, … seconds, then 30 at most; always the same answer.
    at = fifth
    for _ in range(8):
        assert refusal(engine, "alice", "guess", at, waits) == WRONG
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]

    # The right password is still checked (after the wait), so nobody can keep the account shut by failing on purpose.
    actor = login(engine, "alice", PASSWORD, now=clock(at), sleep=waits)
    assert actor.username == "alice" and waits[-1] == 30
    user = stored_user(engine, "alice")
    assert (user.failed_logins, user.locked_until) == (0, None)


@sqlite_only
def test_a_guess_made_after_the_wait_is_over_waits_no_more(engine):
    add(engine, "alice")
    for attempt in range(6):
        refusal(engine, "alice", "guess", T0 + timedelta(seconds=attempt))
    waits = Waits()
    assert refusal(engine, "alice", "guess", T0 + timedelta(minutes=5), waits) == WRONG
    assert login(engine, "alice", PASSWORD, now=clock(T0 + timedelta(minutes=10)), sleep=waits).username == "alice"
    assert waits == []


@sqlite_only
def test_an_unknown_username_is_slowed_and_answered_exactly_like_a_real_one(engine):
    add(engine, "alice")
    real, unknown = Waits(), Waits()
    answers = set()
    for _ in range(8):
        answers.add(refusal(engine, "alice", "guess", T0, real))
        answers.add(refusal(engine, "nobody_by_that_name", "guess", T0, unknown))
    assert answers == {WRONG}
    assert real == unknown == [1, 2, 4]  # a name's existence shows neither in the answer nor in its timing


@sqlite_only
def test_a_successful_login_resets_the_count_so_only_consecutive_failures_slow(engine):
    add(engine, "alice")
    waits = Waits()
    for attempt in range(4):
        refusal(engine, "alice", "guess", T0 + timedelta(seconds=attempt), waits)
    login(engine, "alice", PASSWORD, now=clock(T0 + timedelta(seconds=5)), sleep=waits)
    for attempt in range(4):
        refusal(engine, "alice", "guess", T0 + timedelta(seconds=10 + attempt), waits)
    assert login(engine, "alice", PASSWORD, now=clock(T0 + timedelta(seconds=20)), sleep=waits).username == "alice"
    assert waits == []


@sqlite_only
def test_resetting_the_password_lifts_the_wait_and_retires_the_old_password(engine):
    add(engine, "alice")
    for attempt in range(7):
        refusal(engine, "alice", "guess", T0 + timedelta(seconds=attempt))
    reset(engine, "alice", "a brand new password")
    waits = Waits()
    assert login(engine, "alice", "a brand new password", now=clock(T0 + timedelta(seconds=8)),
                 sleep=waits).username == "alice"
    assert waits == []
    assert refusal(engine, "alice", PASSWORD, T0 + timedelta(minutes=2)) == WRONG


def test_concurrent_wrong_passwords_are_each_counted_once(engine):
    add(engine, "alice")
    threads = [threading.Thread(target=refusal, args=(engine, "alice", f"guess {i}")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stored_user(engine, "alice").failed_logins == 8


class HeldHasher(PasswordHasher):
    """A cheap hasher whose check waits, mid-check, until the test lets it go."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.checking, self.release = threading.Event(), threading.Event()

    def verify(self, hash: str, password: str) -> bool:  # noqa: A002 (argon2-cffi's parameter name)
        self.checking.set()
        assert self.release.wait(30), "the test never let the check finish"
        return super().verify(hash, password)


def another_writer_gets_the_write_lock(database_url: str) -> bool:
    """Return whether another connection can take the write lock at once (not waiting for anyone)."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(database_url).database, timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:  # "database is locked": a write transaction is open elsewhere
            return False
        finally:
            connection.close()
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            return connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY}).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("password", [PASSWORD, "a wrong guess"], ids=["right password", "wrong password"])
def test_checking_a_password_never_holds_the_write_lock_so_a_clinicians_save_goes_ahead(
    engine, database_url, monkeypatch, password
):
    add(engine, "alice")
    held = HeldHasher()
    monkeypatch.setattr(accounts, "hasher", held)
    outcome: list = []

    def log_in() -> None:
        try:
            outcome.append(login(engine, "alice", password, now=clock(T0)))
        except LoginRefused as refused:
            outcome.append(refused)

    thread = threading.Thread(target=log_in)
    thread.start()
    try:
        assert held.checking.wait(30), "the login never checked the password"
        assert another_writer_gets_the_write_lock(database_url), "the password check holds the write lock"
    finally:
        held.release.set()
        thread.join()
    assert isinstance(outcome[0], Actor if password == PASSWORD else LoginRefused)


def test_a_disabled_account_is_refused_and_says_so_only_to_someone_who_knows_the_password(engine):
    add(engine, "alice")
    set_active(engine, "alice", False)
    assert refusal(engine, "alice", PASSWORD) == "This account is disabled. Ask an administrator."
    assert refusal(engine, "alice", "not the password") == WRONG
    set_active(engine, "alice", True)
    assert login(engine, "alice", PASSWORD, now=clock(T0)).username == "alice"


def test_an_organisation_login_maps_an_active_accounts_verified_email_and_nothing_else(engine):
    add(engine, "alice", email="alice@Clinic.example", password=None)
    add(engine, "bob", email="bob@clinic.example", password=None)
    set_active(engine, "bob", False)
    with write_session(engine) as session:
        assert accounts.actor_by_email(session, " alice@clinic.EXAMPLE ", email_verified=True).username == "alice"
        assert accounts.actor_by_email(session, "bob@clinic.example", email_verified=True) is None
        assert accounts.actor_by_email(session, "eve@clinic.example", email_verified=True) is None


@pytest.mark.parametrize("verified", [False, None, "true", 1], ids=["false", "missing", "text", "one"])
def test_an_organisation_login_whose_email_the_provider_has_not_verified_logs_in_as_nobody(engine, verified):
    add(engine, "alice", email="alice@clinic.example", password=None)
    with write_session(engine) as session:
        assert accounts.actor_by_email(session, "alice@clinic.example", email_verified=verified) is None
    assert stored_user(engine, "alice").last_login_at is None


@sqlite_only
def test_an_organisation_login_with_the_email_in_another_case_logs_in_as_nobody(engine):
    add(engine, "alice", email="alice@clinic.example", password=None)
    add(engine, "bob", email="Bob.Smith@Clinic.example", password=None)  # kept as typed, but for the domain
    assert stored_user(engine, "bob").email == "Bob.Smith@clinic.example"
    with write_session(engine) as session:
        assert accounts.actor_by_email(session, "ALICE@clinic.example", email_verified=True) is None
        assert accounts.actor_by_email(session, "Alice@clinic.example", email_verified=True) is None
        assert accounts.actor_by_email(session, "bob.smith@clinic.example", email_verified=True) is None
        assert accounts.actor_by_email(session, "alice@CLINIC.EXAMPLE", email_verified=True).username == "alice"
        assert accounts.actor_by_email(session, "Bob.Smith@clinic.example", email_verified=True).username == "bob"


# -- managing accounts ------------------------------------------------------------------------------------------------

BAD_ACCOUNTS = [
    ("short password", dict(username="alice", role="clinician", password="too short"), "at least 10 characters"),
    ("bad username", dict(username="Alice Smith", role="clinician", password=PASSWORD), "username"),
    ("unknown role", dict(username="alice", role="superuser", password=PASSWORD), "role: must be one of"),
    ("patient without record", dict(username="pat", role="patient", password=PASSWORD), "needs the patient's id"),
    ("unknown patient", dict(username="pat", role="patient", password=PASSWORD, patient_pseudonym="P404"),
     "no patient 'P404'"),
    ("clinician linked to a patient", dict(username="alice", role="clinician", password=PASSWORD,
                                           patient_pseudonym="P7"), "only a patient account"),
    ("taken username", dict(username="taken", role="clinician", password=PASSWORD), "'taken' is taken"),
]


@sqlite_only
@pytest.mark.parametrize(("case", "fields", "message"), BAD_ACCOUNTS, ids=[c[0] for c in BAD_ACCOUNTS])
def test_add_user_refuses_a_bad_account_and_stores_nothing(engine, case, fields, message):
    record(engine, patient_id="P7")
    add(engine, "taken")
    with Session(engine) as session:
        users_before = session.execute(text("SELECT count(*) FROM users")).scalar_one()
    with pytest.raises(ValueError, match=message), write_session(engine) as session:
        accounts.add_user(session, actor=ADMIN, **fields)
    with Session(engine) as session:
        assert session.execute(text("SELECT count(*) FROM users")).scalar_one() == users_before


WEAK_PASSWORDS = [
    ("ten spaces", " " * 10, "password: must not be blank"),
    ("blank with tabs and newlines", " \t\n" * 4, "password: must not be blank"),
    ("nine characters", "nine char", "password: must be at least 10 characters"),
    ("a common password", "password123", "password: is one of the most common passwords"),
    ("a common password in capitals", "QWERTYUIOP", "password: is one of the most common passwords"),
    ("a common password with a separator", "1q2w3e-4r5t", "password: is one of the most common passwords"),
    ("the username", "Alice.Smith", "password: must not be the username"),
    ("the service's name", "Needle Outcomes", "password: must not be the name of this service"),
    ("one character repeated", "aaaaaaaaaaaa", "password: too easy to guess"),
    ("a sequence", "0123456789", "password: too easy to guess"),
    ("a word twice", "passwordpassword", "password: too easy to guess"),
    ("the username and digits", "alice.smith2025", "password: too easy to guess"),
    ("a capitalised word, a year and a symbol", "Password2024!", "password: too easy to guess"),
    ("longer than 256", "".join(sha256(str(i).encode()).hexdigest() for i in range(5)),
     "password: must be at most 256 characters"),
]


@sqlite_only
@pytest.mark.parametrize(("case", "password", "message"), WEAK_PASSWORDS, ids=[c[0] for c in WEAK_PASSWORDS])
def test_a_weak_password_is_refused_with_the_reason_and_nothing_is_stored(engine, case, password, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        add(engine, "alice.smith", password=password)
    add(engine, "alice.smith")
    with pytest.raises(ValueError, match=f"^{message}"):
        reset(engine, "alice.smith", password)
    assert login(engine, "alice.smith", PASSWORD, now=clock(T0)).username == "alice.smith"


@pytest.mark.parametrize("password", [
    "correct horse battery", "demo-clinician-password", "plum kettle orbit lantern",
    "".join(sha256(str(i).encode()).hexdigest() for i in range(4)),  # 256 characters: long is fine
    "Ünïcödé pässwörd ✓", "  spaces around are kept  ",
], ids=["words", "demo", "passphrase", "256 characters", "unicode", "spaces"])
def test_a_good_password_of_any_characters_up_to_256_is_accepted_and_logs_in_as_typed(password):
    passwords.check_password_strength(password, username="alice")


def test_a_password_zxcvbn_scores_below_3_is_refused_in_one_line_with_its_feedback():
    # zxcvbn scores "Password2024!" 2 (about 10^7 guesses): too few for an account that opens health records.
    with pytest.raises(ValueError) as refused:
        passwords.check_password_strength("Password2024!", username="alice")
    message = str(refused.value)
    assert message.startswith("password: too easy to guess") and "\n" not in message
    assert "similar to a commonly used password" in message and "Add another word or two" in message


def test_every_demo_account_password_passes_the_check():
    for username, _, password, _ in seeding.DEMO_ACCOUNTS:
        passwords.check_password_strength(password, username=username)


@sqlite_only
def test_a_password_is_kept_exactly_as_typed_surrounding_spaces_included(engine):
    add(engine, "alice", password="  spaces around are kept  ")
    assert login(engine, "alice", "  spaces around are kept  ", now=clock(T0)).username == "alice"
    assert refusal(engine, "alice", "spaces around are kept") == WRONG


def test_the_blocklist_is_a_maintained_packages_list_of_common_passwords():
    common = passwords._common_passwords()
    assert len(common) >= 30_000 and {"password", "123456", "qwertyuiop", "iloveyou"} <= common


@sqlite_only
def test_reset_password_refuses_a_short_password_and_keeps_the_old_one(engine):
    add(engine, "alice")
    with pytest.raises(ValueError, match="at least 10 characters"), write_session(engine) as session:
        accounts.reset_password(session, actor=ADMIN, username="alice", password="short")
    assert login(engine, "alice", PASSWORD, now=clock(T0)).username == "alice"


def test_the_account_list_never_carries_a_password_hash(engine):
    add(engine, "alice")
    with Session(engine) as session:
        table = accounts.users(session, actor=ADMIN)
    assert list(table["username"]) == ["alice"]
    assert not any("hash" in column or "password" in column for column in table.columns)
    assert "$argon2" not in table.to_csv()


# -- no password anywhere ---------------------------------------------------------------------------------------------

SECRETS = {
    "first": "Quartz-Zebra-4471-first",
    "wrong guess": "Quartz-Zebra-4471-guess",
    "typed for an unknown user": "Quartz-Zebra-4471-unknown",
    "typed as a username": "Quartz-Zebra-4471-in-the-username-field",
    "reset": "Quartz-Zebra-4471-reset",
    "cli add": "Quartz-Zebra-4471-cli-add",
    "cli reset": "Quartz-Zebra-4471-cli-reset",
}


def database_text(engine: Engine) -> str:
    """Return every row of every table as text."""
    with engine.connect() as connection:
        tables = sorted(inspect(connection).get_table_names())
        return "\n".join(repr(connection.execute(text(f"SELECT * FROM {t}")).all()) for t in tables)


def cli(monkeypatch, url: str, *args: str, stdin: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin + "\n"))
    return main(["--url", url, "users", *args, "--password-stdin"])


def test_no_password_appears_in_the_database_its_files_the_audit_trail_or_any_log(
    engine, database_url, monkeypatch, caplog, capsys, request
):
    caplog.set_level(logging.DEBUG)  # every logger on,
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy's statements and parameters included
    add(engine, "alice", password=SECRETS["first"])
    login(engine, "alice", SECRETS["first"], now=clock(T0))
    refusal(engine, "alice", SECRETS["wrong guess"])
    refusal(engine, "no_such_user", SECRETS["typed for an unknown user"])
    refusal(engine, SECRETS["typed as a username"], "alice")  # a slip: the password in the username field
    reset(engine, "alice", SECRETS["reset"])
    login(engine, "alice", SECRETS["reset"], now=clock(T0))
    assert cli(monkeypatch, database_url, "add", "bob", "--role", "manager", stdin=SECRETS["cli add"]) == 0
    assert login(engine, "bob", SECRETS["cli add"], now=clock(T0)).role == "manager"
    assert cli(monkeypatch, database_url, "reset-password", "bob", stdin=SECRETS["cli reset"]) == 0
    assert login(engine, "bob", SECRETS["cli reset"], now=clock(T0)).username == "bob"
    assert main(["--url", database_url, "users", "list"]) == 0

    stored = database_text(engine)
    with engine.connect() as connection:
        audit_trail = repr(connection.execute(text("SELECT * FROM audit_log")).all())
    captured = capsys.readouterr()
    places = {
        "tables": stored, "audit trail": audit_trail, "logs": caplog.text, "stdout": captured.out,
        "stderr": captured.err,
    }
    backend = make_url(database_url).get_backend_name()
    if backend == "sqlite":
        path = Path(make_url(database_url).database)
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert path.with_name(path.name + "-wal") in files
        places |= {p.name: p.read_bytes().decode("latin-1") for p in files}
    else:
        places["server log"] = request.getfixturevalue("postgres_server").log_file.read_text(errors="replace")

    assert "INSERT INTO users" in caplog.text  # the statements were logged, so the check below means something
    assert stored.count("$argon2id$") == 2 and audit_trail.count("login_failed") == 3
    for name, secret in SECRETS.items():
        for place, content in places.items():
            assert secret.lower() not in content.lower(), f"the {name} password is in the {place}"  # as typed or folded


# -- keeping someone who can manage accounts --------------------------------------------------------------------------


def set_role(engine: Engine, username: str, role: str) -> None:
    with write_session(engine) as session:
        accounts.set_role(session, actor=ADMIN, username=username, role=role)


def actor_of(engine: Engine, username: str) -> Actor:
    return accounts.actor_for(stored_user(engine, username))


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(engine):
    add(engine, "root", role="admin")
    add(engine, "ann")
    with pytest.raises(ValueError, match="root is the last enabled admin and cannot be disabled"):
        set_active(engine, "root", False)
    with pytest.raises(ValueError, match="root is the last enabled admin and cannot be demoted"):
        set_role(engine, "root", "manager")
    assert stored_user(engine, "root").is_active and stored_user(engine, "root").role == "admin"

    add(engine, "second", role="admin")  # with another enabled admin, either change is allowed
    set_role(engine, "root", "manager")
    assert stored_user(engine, "root").role == "manager"
    with pytest.raises(ValueError, match="second is the last enabled admin"):
        set_active(engine, "second", False)


def test_nobody_disables_their_own_account(engine):
    add(engine, "root", role="admin")
    add(engine, "other", role="admin")
    with pytest.raises(ValueError, match="you cannot disable your own account"), write_session(engine) as session:
        accounts.set_active(session, actor=actor_of(engine, "root"), username="root", active=False)
    assert stored_user(engine, "root").is_active


def test_a_role_change_is_audited_and_patient_accounts_keep_their_role(engine):
    add(engine, "ann")
    set_role(engine, "ann", "manager")
    assert stored_user(engine, "ann").role == "manager"
    with pytest.raises(ValueError, match="only clinician, manager and admin accounts change role"):
        set_role(engine, "ann", "patient")


def test_an_e_mail_already_used_is_refused_by_name_not_by_a_failing_insert(engine):
    add(engine, "ann", email="ann@clinic.example")
    with pytest.raises(ValueError, match="e-mail: 'ann@clinic.example' is used by another account"):
        add(engine, "bob", email="Ann@Clinic.example")


# -- ending sessions everywhere ---------------------------------------------------------------------------------------


def session_ended(engine: Engine, username: str, logged_in_at: datetime) -> str | None:
    with Session(engine) as session:
        return accounts.session_ended(session, actor=actor_of(engine, username), logged_in_at=logged_in_at)


def test_logging_out_ends_every_session_of_the_account_that_began_before_it_and_no_later_one(engine):
    add(engine, "alice")
    add(engine, "bob")
    first_browser = datetime.now(UTC)
    assert session_ended(engine, "alice", first_browser) is None
    with write_session(engine) as session:
        accounts.log_out(session, actor=actor_of(engine, "alice"))
    assert session_ended(engine, "alice", first_browser) == "ended"
    assert session_ended(engine, "alice", datetime.now(UTC)) is None  # logged in again since
    assert session_ended(engine, "bob", first_browser) is None  # another account's sessions go on


@pytest.mark.parametrize("change", ["password reset", "role change", "disabled"])
def test_a_password_reset_role_change_or_disabling_ends_the_accounts_open_sessions(engine, change):
    add(engine, "alice")
    open_since = datetime.now(UTC)
    if change == "password reset":
        reset(engine, "alice", "a brand new password")
    elif change == "role change":
        set_role(engine, "alice", "manager")
    else:
        set_active(engine, "alice", False)
    assert session_ended(engine, "alice", open_since) == ("disabled" if change == "disabled" else "ended")
