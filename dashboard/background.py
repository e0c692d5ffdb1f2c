"""Analyses kept for every user of the server process, each with the version of the data it was computed on.

A page asks for an analysis by its key (what it is of: the database, the filters, the rule) and the data version
now. The latest result for the key comes back at once. When there is none yet, or it was computed on older data,
the analysis is computed again on a worker thread; the page waits a moment for it (`patience`), then shows the
older result or a note, and draws the new one on a later run. The results are kept as they are, never copied: a
page must not change them. Nothing here calls Streamlit: the worker serves no session, so it draws nothing and
reads no session state.

After each computation the worker gives back to the system what it let go (`db.memory.give_back`): a fit's
short-lived frames otherwise stay with the allocators for the life of the server, about 45 MB over the technique
page and the worklists at a million sessions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard.faults import new_reference
from db import memory

log = logging.getLogger(__name__)

KEPT = 256  # keys whose latest result is kept; the least recently asked for is forgotten first
# One worker: two fits at once would each take twice as long on a server's few cores, and hold two samples in memory.
WORKERS = 1


@dataclass(frozen=True)
class Analysis:
    """What a page shows of one analysis: its latest result, and whether a newer one is being computed."""

    value: Any  # the latest result, None until the first is ready
    as_of: datetime | None  # when the computation of `value` began: it rests on the data stored then
    current: bool  # `value` was computed on the data as they are now
    running_for: float | None  # seconds the computation under way has run; None when none runs
    expected: float | None  # seconds the last computation of this kind of analysis took, if one ran
    fault: str  # the reference of the fault that stopped the latest computation (logged with its traceback), or ""
    refresh: Callable[[], None]  # compute it again now, on the worker


@dataclass
class _Slot:
    """One key's latest result and the computation under way, if any."""

    value: Any = None
    version: Hashable = None  # the data version `value` was computed on
    as_of: datetime | None = None
    fault: str = ""
    failed_version: Hashable = None  # a failed computation is not retried by itself on the same data
    running: Future | None = None
    running_version: Hashable = None
    started: float = 0.0  # time.monotonic() when the computation under way began


class Analyses:
    """The process's analyses: the latest result per key, and the worker that computes them."""

    def __init__(self, kept: int = KEPT, workers: int = WORKERS):
        self._lock = threading.Lock()
        self._slots: OrderedDict[Hashable, _Slot] = OrderedDict()
        self._took: dict[str, float] = {}  # seconds the last computation of each kind took
        self._kept = kept
        self._worker = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analysis")

    def get(self, kind: str, key: Hashable, version: Hashable, compute: Callable[[], Any], *,
            patience: float = 0.0) -> Analysis:
        """Return the analysis of `key`, starting its computation on the worker when it is missing or older than
        `version`. A computation under way is awaited when the last of its kind took `patience` seconds or less:
        a quick one is then shown at once, and a page never waits for one that will not be ready in time."""
        with self._lock:
            slot = self._slot(key)
            done = slot.version == version or slot.failed_version == version
            if not done and not (slot.running is not None and slot.running_version == version):
                self._start(slot, kind, version, compute)
            future = slot.running
        if future is not None and self._took.get(kind, float("inf")) <= patience:
            wait([future], timeout=patience)
        return self._analysis(kind, key, version, compute)

    def settled(self, timeout: float) -> bool:
        """Return True once no computation runs, False if one still does after `timeout` seconds."""
        with self._lock:
            running = [slot.running for slot in self._slots.values() if slot.running is not None]
        return not wait(running, timeout=timeout).not_done

    def _slot(self, key: Hashable) -> _Slot:
        slot = self._slots.setdefault(key, _Slot())
        self._slots.move_to_end(key)
        idle = [k for k, s in self._slots.items() if s.running is None and k != key]
        for old in idle[: max(len(self._slots) - self._kept, 0)]:
            del self._slots[old]
        return slot

    def _start(self, slot: _Slot, kind: str, version: Hashable, compute: Callable[[], Any]) -> None:
        """Mark a computation of `slot` on `version` as under way and give it to the worker (the lock is held)."""
        future: Future = Future()
        slot.running, slot.running_version, slot.started = future, version, time.monotonic()
        self._worker.submit(self._run, slot, kind, version, compute, future)

    def _run(self, slot: _Slot, kind: str, version: Hashable, compute: Callable[[], Any], future: Future) -> None:
        """Compute; keep the result unless a newer one is kept already, or else the reference of the fault (its
        traceback logged); give back what the computation let go (`db.memory.give_back`); then settle `future`."""
        as_of, started = datetime.now().astimezone(), time.monotonic()
        try:
            value, reference = compute(), ""
        except Exception as fault:
            value, reference = None, new_reference()
            log.error("reference %s: the %s analysis failed", reference, kind, exc_info=fault)
        memory.give_back()
        with self._lock:
            if slot.running is future:
                slot.running = None
            if reference:
                slot.fault, slot.failed_version = reference, version
            else:
                if slot.as_of is None or as_of >= slot.as_of:
                    slot.value, slot.version, slot.as_of, slot.fault, slot.failed_version = (
                        value, version, as_of, "", None)
                self._took[kind] = time.monotonic() - started
        future.set_result(value)

    def _analysis(self, kind: str, key: Hashable, version: Hashable, compute: Callable[[], Any]) -> Analysis:
        with self._lock:
            slot = self._slot(key)
            running = slot.running is not None

            def refresh() -> None:
                with self._lock:
                    if slot.running is None:
                        self._start(slot, kind, version, compute)

            return Analysis(
                value=slot.value, as_of=slot.as_of, current=slot.version == version,
                running_for=time.monotonic() - slot.started if running else None,
                expected=self._took.get(kind), fault=slot.fault if slot.failed_version == version else "",
                refresh=refresh,
            )
