"""Fixtures shared by the command line's summary tests."""

from __future__ import annotations

import pytest

from db.cli import main
from tests.db.factories import SAMPLE_FILE, another_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sample_url(request, tmp_path_factory):
    """Return the URL of a database holding the sample data, imported through the command line, on each backend."""
    with another_database(request, request.param, tmp_path_factory.mktemp("sample")) as url:
        assert main(["--url", url, "import", str(SAMPLE_FILE)]) == 0
        yield url
