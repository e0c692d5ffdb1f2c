"""AppTest fixtures: the app run in-process against a copy of a database seeded with the sample data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from db import interchange
from db.cli import SAMPLE_FILE
from db.engine import make_engine, migrate, write_session

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    """Return a SQLite file holding the sample data, built once per run."""
    path = tmp_path_factory.mktemp("seeded") / "seeded.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    with write_session(engine) as session:
        interchange.import_sessions(session, interchange.validate_rows(interchange.read_table(SAMPLE_FILE)))
    engine.dispose()
    return path


@pytest.fixture
def seeded_url(seeded_template, tmp_path, monkeypatch) -> str:
    """Point DATABASE_URL at a fresh copy of the seeded database and return its URL."""
    path = tmp_path / "app.db"
    shutil.copy(seeded_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture
def app(seeded_url) -> AppTest:
    """Return the app, run once, as the default demo viewer (a clinician)."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def view_as(at: AppTest, role: str) -> AppTest:
    """Switch the demo viewer to `role` and rerun."""
    at.sidebar.selectbox(key="demo_role").select(role).run()
    assert not at.exception, at.exception
    return at


def session_count(url: str) -> int:
    """Return the number of sessions in the database at `url`."""
    from db import queries

    engine = make_engine(url)
    with Session(engine) as session:
        count = queries.count_sessions(session)
    engine.dispose()
    return count
