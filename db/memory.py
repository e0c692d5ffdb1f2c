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


def give_back() -> None:
    """Return the free pages of malloc's heap, and of Arrow's pool when pyarrow is loaded, to the system."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
