"""The PostgreSQL role the app runs as may append to the audit trail but never alter, empty or disable it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from db import backup
from db.cli import main
from db.engine import migrate, write_session
from db.writes import record_session
from tests.db.factories import ADMIN, engine_on, import_frame, interchange_rows, session_input

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def app_role(database_url, postgres_server) -> Iterator[str]:
    """Yield a new login role (no privileges yet) on the test server; its grants and the role go afterwards."""
    role = f"app_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
    try:
        yield role
    finally:
        with engine_on(database_url) as owner, owner.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
        with admin.connect() as connection:
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role).render_as_string(hide_password=False)


@pytest.fixture
def app_url(capsys, database_url, app_role) -> str:
    """Return the URL the app uses once `python -m db app-role` has granted its role (run by the owner)."""
    assert main(["--url", database_url, "app-role", app_role]) == 0
    assert f"role {app_role} may run the app" in capsys.readouterr().err
    return as_role(database_url, app_role)


def test_the_app_role_records_imports_and_audits_as_the_app_does(app_url, capsys):
    migrate(app_url)  # the app's start: a no-op at the current schema, which the role may read
    with engine_on(app_url) as engine:
        with write_session(engine) as session:
            record_session(session, actor=ADMIN, entry=session_input(patient_id="R1"))
        import_frame(engine, interchange_rows(dict(patient_id="R2", session_date="2025-01-02", technique="deep",
                                                   pain_before="50")))
    assert main(["--url", app_url, "audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("audit trail intact: 3 rows checked")


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET detail = 'rewritten'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "DROP TRIGGER audit_log_append_only ON audit_log",
    "DROP TABLE audit_log",
    "CREATE TRIGGER sneak BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "UPDATE alembic_version SET version_num = '0001'",
])
def test_the_app_role_is_refused_any_change_to_the_audit_trail(app_url, database_url, statement):
    with engine_on(database_url) as owner, write_session(owner) as session:
        record_session(session, actor=ADMIN, entry=session_input(patient_id="R1"))
    with engine_on(app_url) as engine:
        with pytest.raises(DBAPIError, match="permission denied|must be owner"), engine.begin() as connection:
            connection.execute(text(statement))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 1


def test_app_role_refuses_a_superuser_a_missing_role_and_a_member_of_the_owner(capsys, database_url, app_role):
    def refusal(role: str) -> str:
        assert main(["--url", database_url, "app-role", role]) == 1
        [line] = capsys.readouterr().err.strip().splitlines()
        return line

    assert "role postgres is a superuser" in refusal("postgres")
    assert "role no_such_role does not exist" in refusal("no_such_role")
    with engine_on(database_url) as owner, owner.begin() as connection:
        connection.execute(text(f"GRANT postgres TO {app_role}"))
    try:
        assert f"role {app_role} owns the tables (or may act as postgres" in refusal(app_role)
    finally:
        with engine_on(database_url) as owner, owner.begin() as connection:
            connection.execute(text(f"REVOKE postgres FROM {app_role}"))


def test_a_restore_gives_the_app_role_its_privileges_again(app_url, database_url, tmp_path):
    path = tmp_path / "clinic.backup"
    backup.backup(database_url, path, actor=ADMIN)
    backup.restore(database_url, path, actor=ADMIN)  # drops and recreates every table, grants included
    with engine_on(app_url) as engine, write_session(engine) as session:
        record_session(session, actor=ADMIN, entry=session_input(patient_id="AFTER"))
    with engine_on(app_url) as engine, pytest.raises(DBAPIError, match="permission denied"), \
            engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log"))
