"""Shared fixtures: a migrated database per test, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from db.engine import make_engine, migrate
from tests.support.passwords import cheap_hashing

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """Hash passwords cheaply in the test processes (tests.support.passwords); test_accounts checks the real profile."""
    with cheap_hashing():
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """Return the path of a SQLite file migrated once, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_server():
    """Start a throwaway PostgreSQL cluster for the whole run and yield its admin URL."""
    from tests.support.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_server):
    """Return the name of a PostgreSQL database migrated once, used as the template of each test's database."""
    from tests.db.factories import new_postgres_database

    name = "needle_template"
    migrate(new_postgres_database(postgres_server, name))
    return name


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """Yield the URL of a fresh, migrated, empty database on each backend (the test id names the backend)."""
    from tests.db.factories import another_database

    with another_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url):
    """Yield an engine on the test's fresh database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def backend(database_url) -> str:
    """Return the name of the test's database backend."""
    return make_url(database_url).get_backend_name()
