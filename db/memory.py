"""Hand the memory a big step let go back to the system (`give_back`).

Freed blocks stay with the allocators that held them, glibc's malloc (numpy's arrays, SQLite's page cache, Python's
larger objects) and Arrow's pool (pandas' texts), and keep the process's resident size at its peak. After one file of
an import of several, or one step of the expected-recovery fit, that is hundreds of megabytes the next step may not
reuse: a 200,000-row file left 570 MB resident, and the next file's peak went 150 MB past the first's.
"""

from __future__ import annotations

import ctypes
import sys

try:  # glibc's malloc_trim; another C library (macOS, musl) keeps its own ways, and nothing is trimmed
    _LIBC = ctypes.CDLL("libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 - present only in glibc
except (OSError, AttributeError):
    _LIBC = None


M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
MMAP_THRESHOLD = 64 * 1024


def hold_less() -> None:
    """Keep a long-lived process's memory near what it holds. glibc serves a block of 128 KiB or more that the heap
    has no room for with pages of its own, given back when it is freed, but raises that threshold to the largest
    such block freed (up to 32 MB): after that, a step's arrays grow the heap among blocks that outlive them, and
    stay. Here the threshold is fixed at MMAP_THRESHOLD. And pandas' texts are allocated by malloc, not by Arrow's
    mimalloc pool, which keeps what it frees for later. On the app at a million sessions (bench.pages' sequence,
    one process) the expected-recovery fit's peak went from 472 to 442 MB with these alone. Idempotent: the app
    calls it on every run."""
    import pyarrow

    if pyarrow.default_memory_pool().backend_name != "system":
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    if _LIBC is not None:
        _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def give_back() -> None:
    """Return the free pages of malloc's heap, and of Arrow's pool when pyarrow is loaded, to the system."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
