"""AppTest fixtures: the app run in-process on a copy of a database seeded with the sample data, on each backend."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.components.v2 import manifest_scanner
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.testing.v1 import AppTest, app_test

from dashboard import resources
from db import queries
from db.cli import DEMO_ACCOUNTS, main
from db.engine import make_engine
from tests.conftest import BACKENDS
from tests.db.factories import ADMIN, new_postgres_database, postgres_copy

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SETTLE_SECONDS = 120  # the sample data's expected-recovery fit takes about a second
PASSWORDS = {username: password for username, _, password, _ in DEMO_ACCOUNTS}


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    """Return a SQLite file holding the sample data and the demo accounts, built once per run by `db seed`."""
    path = tmp_path_factory.mktemp("seeded") / "seeded.db"
    assert main(["--url", f"sqlite:///{path}", "seed"]) == 0
    return path


@pytest.fixture(scope="session")
def seeded_postgres_template(postgres_server) -> str:
    """Return the name of a PostgreSQL database holding the sample data and demo accounts, each test's template."""
    name = "needle_seeded"
    assert main(["--url", new_postgres_database(postgres_server, name), "seed"]) == 0
    return name


# The pages run on PostgreSQL too where their own figures, reads or writes go through SQL that a page assembles (the
# technique page's sections, the needling counts, expected recovery, the import, reading only what a role may), and
# every role's landing page with a save and a busy database (test_pages). The other pages' SQL is that of `db`, which
# tests/db runs on both backends; their AppTests run on SQLite only, which halves their time.
ON_BOTH_BACKENDS = {"test_technique_outcomes", "test_page_data", "test_needling_record_counts", "test_recovery",
                    "test_import_page", "test_security", "test_pages"}


def pytest_generate_tests(metafunc):
    """Run each AppTest on SQLite, and on PostgreSQL too in the modules of ON_BOTH_BACKENDS."""
    if "seeded_url" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        metafunc.parametrize("seeded_url", BACKENDS if module in ON_BOTH_BACKENDS else ["sqlite"], indirect=True)


@pytest.fixture
def seeded_url(request, tmp_path, monkeypatch) -> Iterator[str]:
    """Point DATABASE_URL at a fresh copy of the seeded database, on the test's backend, and yield its URL.

    The database goes only once no analysis reads it: a background fit the test started runs on (the worker is the
    process's, shared by the tests). A PostgreSQL database dropped under it cut its streamed read's connection,
    which leaves psycopg's server-side cursor marked open; collected later, it warned during another test.
    """
    with _seeded_copy(request, tmp_path) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
        assert resources.analyses_settled(timeout=SETTLE_SECONDS)


@contextmanager
def _seeded_copy(request, tmp_path) -> Iterator[str]:
    """Yield the URL of a copy of the seeded database on the test's backend, a PostgreSQL one dropped afterwards."""
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        shutil.copy(request.getfixturevalue("seeded_template"), path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("postgres_server")
    with postgres_copy(server, request.getfixturevalue("seeded_postgres_template")) as url:
        yield url


@pytest.fixture
def anonymous(seeded_url) -> AppTest:
    """Return the app as someone who has not logged in yet."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def log_in(at: AppTest, username: str, password: str | None = None) -> AppTest:
    """Fill in and submit the login form."""
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password if password is not None else PASSWORDS[username])
    at.button(key="login_submit").click().run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def app(anonymous) -> AppTest:
    """Return the app logged in as the demo clinician."""
    return log_in(anonymous, "clin_ahmed")


@pytest.fixture
def as_role(anonymous):
    """Return a function that logs the app in as the demo account of a role."""
    usernames = {role: username for username, role, _, _ in DEMO_ACCOUNTS}
    return lambda role: log_in(anonymous, usernames[role])


def session_count(url: str) -> int:
    """Return the number of live sessions in the database at `url`."""
    engine = make_engine(url)
    with Session(engine) as session:
        count = queries.count_sessions(session, actor=ADMIN)
    engine.dispose()
    return count


class RecordedMediaManager(MediaFileManager):
    """AppTest's media manager, remembered so a test can read what a download button would give."""

    instances: list[MediaFileManager] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        RecordedMediaManager.instances.append(self)


@pytest.fixture(scope="session", autouse=True)
def components_scanned_once():
    """Scan the installed packages for Streamlit components once per run: each AppTest's first run scanned them all
    again (the metadata of every installed distribution), 0.3 CPU-s a test, a sixth of the AppTests' time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests",
                      functools.cache(manifest_scanner.scan_component_manifests))
        yield


@pytest.fixture(autouse=True)
def no_exception_after_any_run(request, monkeypatch) -> None:
    """Fail a test at the first run of the app that shows an exception, whatever the test goes on to check.

    A test that means to show one is marked `allow_app_exception`.
    """
    if request.node.get_closest_marker("allow_app_exception"):
        return
    original = AppTest._run

    def run_and_check(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        assert not self.exception, [e.value for e in self.exception]
        return result

    monkeypatch.setattr(AppTest, "_run", run_and_check)


@pytest.fixture(autouse=True)
def recorded_media(monkeypatch) -> None:
    """Make each AppTest run keep its media manager where download_content finds it (one test's runs only)."""
    monkeypatch.setattr(app_test, "MediaFileManager", RecordedMediaManager)
    monkeypatch.setattr(RecordedMediaManager, "instances", [])


def save_button(at: AppTest):
    """Return the session form's Save button (its key changes after every save)."""
    return next(b for b in at.button if b.label == "Save session")


def download_content(at: AppTest, key: str) -> str:
    """Return the text a download button on the page would give; a file built on click is built, as a click would."""
    return downloaded(at, key).decode("utf-8")


def downloaded(at: AppTest, key: str) -> bytes:
    """Return the file a download button on the page would give; a file built on click is built, as a click would."""
    button = next(b for b in at.get("download_button") if b.proto.id.endswith(key) or key in b.proto.id)
    for manager in reversed(RecordedMediaManager.instances):  # the latest run first
        try:
            url = manager.execute_deferred(button.proto.deferred_file_id) if button.proto.deferred_file_id \
                else button.proto.url
            stored = manager.read_file(url.rsplit("/", 1)[-1].split(".")[0])
        except MediaFileStorageError:  # an earlier run's manager: not this file
            continue
        if stored is not None:
            return stored.content
    raise AssertionError(f"no stored file for download button {key!r}")
