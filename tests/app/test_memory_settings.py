"""How the app's process keeps its memory (db.memory.hold_less, issue #15): the entrypoint sets it on every run,
and with it a block of 64 KiB or more freed goes back to the system at once, as a fresh process shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP

ROOT = Path(APP).parents[1]

# A fresh process frees a 4 MB block, then allocates 2 MB and prints how much more malloc holds in blocks of their own
# (mmapped: given back to the system when freed). As started, glibc raises its threshold for those to the largest
# block freed, so the 2 MB land in the heap, where they may stay after they are freed.
MMAPPED = """
import ctypes, sys
import numpy as np
from db import memory
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
if sys.argv[1] == "hold less":
    memory.hold_less()
np.ones(4_000_000, dtype=np.uint8)
before = libc.mallinfo2().hblkhd
block = np.ones(2_000_000, dtype=np.uint8)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.fixture
def arrows_own_pool():
    """Arrow's default pool as a process starts with it, before the app's first run."""
    pyarrow.set_memory_pool(pyarrow.mimalloc_memory_pool())
    yield
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def test_the_apps_first_run_has_pandas_texts_allocated_by_malloc(arrows_own_pool, seeded_url):
    assert pyarrow.default_memory_pool().backend_name == "mimalloc"
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception and [b.key for b in at.button] == ["login_submit"]
    assert pyarrow.default_memory_pool().backend_name == "system"


@pytest.mark.parametrize("setting, own_pages", [("as started", False), ("hold less", True)])
def test_a_block_after_a_larger_one_freed_gets_pages_of_its_own_only_once_the_process_holds_less(setting, own_pages):
    printed = subprocess.run([sys.executable, "-c", MMAPPED, setting], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    assert (int(printed) >= 2_000_000) is own_pages
