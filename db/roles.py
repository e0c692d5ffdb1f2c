"""The PostgreSQL role the app runs as: it reads and writes clinical data, and may only append to the audit trail.

The role that owns the tables (which runs `python -m db init`, `backup` and `restore`) could alter the audit
trail, disable its triggers or drop it. The app itself needs none of that, so in production it connects as another
role, granted here: SELECT, INSERT, UPDATE and DELETE on the other tables; SELECT and INSERT on `audit_log`; SELECT
on `alembic_version` (the app checks the schema when it starts); the sequences that number new rows. Only a
table's owner may ALTER it or disable its triggers, and nothing grants UPDATE, DELETE, TRUNCATE or TRIGGER on the
audit trail, so that role is refused all of them. docs/DEPLOYMENT.md section 1 shows the set-up.

A migration that adds tables grants them again to every role that holds these privileges (db.engine.migrate);
`python -m db restore` does the same after replacing the schema.
"""

from __future__ import annotations

from sqlalchemy import Connection, text


class RoleRefused(ValueError):
    """The role cannot be made the app's restricted role; the message says why. Nothing was granted."""


def _quoted(connection: Connection, role: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(role)


def _has_audit_trail(connection: Connection) -> bool:
    """Return whether the schema has its audit trail yet (a database migrated only to an early revision has not)."""
    return connection.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'audit_log' "
        "AND schemaname = ANY (current_schemas(false)))"
    )).scalar()


def _schema(connection: Connection) -> tuple[str, str]:
    """Return (schema, owner) of the app's tables, found by the audit trail's table."""
    found = connection.execute(text(
        "SELECT schemaname, tableowner FROM pg_tables WHERE tablename = 'audit_log' "
        "AND schemaname = ANY (current_schemas(false)) ORDER BY array_position(current_schemas(false), schemaname) "
        "LIMIT 1"
    )).first()
    if found is None:
        raise RoleRefused("this database holds no Needle Outcomes schema: run `python -m db init` first")
    return found[0], found[1]


def grant_app_role(connection: Connection, role: str) -> None:
    """Grant `role` what the app needs and no more (run as the tables' owner); refuse a role that could do more."""
    if connection.dialect.name != "postgresql":
        raise RoleRefused("database roles are PostgreSQL's; a SQLite database is guarded by its file's permissions")
    schema, owner = _schema(connection)
    found = connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :role"), {"role": role}).first()
    if found is None:
        raise RoleRefused(f"role {role} does not exist: a database administrator creates it first "
                          f"(CREATE ROLE {role} LOGIN PASSWORD '…')")
    if found[0]:
        raise RoleRefused(f"role {role} is a superuser, which may alter anything whatever is granted; the app's role "
                          "must not be")
    if connection.execute(text("SELECT pg_has_role(:role, :owner, 'MEMBER')"), {"role": role, "owner": owner}).scalar():
        raise RoleRefused(f"role {role} owns the tables (or may act as {owner}, their owner), so it could alter the "
                          "audit trail; the app's role must be another one")
    _grant(connection, role, schema)


def _grant(connection: Connection, role: str, schema: str) -> None:
    name, where = _quoted(connection, role), _quoted(connection, schema)
    database = _quoted(connection, connection.execute(text("SELECT current_database()")).scalar())
    for statement in (
        f"GRANT CONNECT ON DATABASE {database} TO {name}",
        f"GRANT USAGE ON SCHEMA {where} TO {name}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {name}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {where} TO {name}",
        f"REVOKE UPDATE, DELETE ON {where}.audit_log, {where}.alembic_version FROM {name}",
        f"REVOKE INSERT ON {where}.alembic_version FROM {name}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {name}",
    ):
        connection.execute(text(statement))


def app_roles(connection: Connection) -> list[str]:
    """Return the roles other than the owner that may append to the audit trail: the app's restricted roles."""
    if connection.dialect.name != "postgresql":
        return []
    return list(connection.execute(text(
        "SELECT DISTINCT g.grantee FROM information_schema.role_table_grants g "
        "JOIN pg_tables t ON t.tablename = g.table_name AND t.schemaname = g.table_schema "
        "WHERE g.table_name = 'audit_log' AND g.privilege_type = 'INSERT' AND g.grantee <> t.tableowner "
        "AND g.table_schema = ANY (current_schemas(false)) ORDER BY 1"
    )).scalars())


def grant_again(connection: Connection, roles: list[str] | None = None) -> list[str]:
    """Grant the app's roles (those found, or `roles`) the same privileges on today's tables; return them."""
    roles = app_roles(connection) if roles is None else roles
    if roles and connection.dialect.name == "postgresql" and _has_audit_trail(connection):
        schema, _ = _schema(connection)
        for role in roles:
            _grant(connection, role, schema)
    return roles
