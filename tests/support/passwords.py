"""A cheap Argon2id hasher for the tests.

The production profile (argon2-cffi's RFC 9106 low-memory one: 64 MiB, three passes; tests/db/test_accounts.py checks
it) costs 0.2 CPU-seconds for each hash and each login, and the AppTests log in hundreds of times. The real-browser
tests keep it: their app runs as a server, on a database seeded by `python -m db seed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from argon2 import PasswordHasher

from db import accounts

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # still Argon2id, just cheap


@contextmanager
def cheap_hashing() -> Iterator[None]:
    """Hash and check passwords with CHEAP_HASHER, the unknown-user check included, while inside."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "hasher", CHEAP_HASHER)
        patch.setattr(accounts, "_DUMMY_HASH", CHEAP_HASHER.hash("no such user"))
        yield
