"""The app's pages timed through AppTest: every section of the technique page and the patient page, warm and cold.

    python -m bench.pages URL P0089 --runs 5 --cold-runs 3     # prints every figure as one line of JSON

Each cold measurement runs in a fresh app process, a child forked from this one (`in_fresh_process`). It logs in as
the benchmark's admin (who has every page) and lands on the first page, as a user does; the run that opens the page
is then timed. **Cold** is that first run in a fresh process: the page's own modules imported, every cache empty,
one process per section and run. **Warm** are the runs after it with nothing changed: the cached data drawn again,
all in this process itself (after the cold runs), which then opens every other page: its peak resident memory,
imports included, stands in for the server's. The
patient page is opened with the patient's id typed into its search, so every run includes the page's search.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.data import LOGIN
from bench.whole_process import ROOT, peak_memory_mb

APP = str(ROOT / "dashboard" / "app.py")
TECHNIQUE, PATIENT = "views/technique_outcomes.py", "views/patient_progress.py"
SECTION_KEY, SEARCH_KEY, PICKED_KEY = "section", "progress_patient_search", "progress_patient"
# The admin's other pages, opened once each after the timed ones: "every page opened" for the peak memory.
OTHER_PAGES = ("record_session", "off_track", "import_data", "patient_reported", "needling_record", "methods",
               "users", "audit_log", "deleted_sessions")
RUN_TIMEOUT_S = 600  # a cold run's process, from logging in to the page shown


FAULT = "Something went wrong on this page"  # how the app shows a page's unexpected fault (dashboard/faults.py)


def _check(at, what: str) -> None:
    """Raise if the run showed an exception, or the app's own line for an unexpected fault."""
    if at.exception:
        raise RuntimeError(f"{what}: the page raised {at.exception[0].message}")
    if any(FAULT in error.value for error in at.error):
        raise RuntimeError(f"{what}: the page showed the app's fault line; `python -m bench.pages URL PATIENT_ID` "
                           "on this database prints its traceback")


def _logged_in(url: str):
    """Return an AppTest of the app on `url`, logged in as the benchmark's admin."""
    from streamlit.testing.v1 import AppTest

    os.environ["DATABASE_URL"] = url
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.run()
    at.text_input(key="login_username").input(LOGIN[0])
    at.text_input(key="login_password").input(LOGIN[1])
    at.button(key="login_submit").click().run()
    _check(at, "logging in")
    if "actor" not in at.session_state:
        raise RuntimeError(f"logging in as {LOGIN[0]} failed: {[e.value for e in at.error]}")
    return at


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _open_technique(at, section: str) -> float:
    """Show `section` of the technique page and return the seconds the run took."""
    at.session_state[SECTION_KEY] = section
    seconds = _timed(at.switch_page(TECHNIQUE).run)
    _check(at, f"technique page, {section}")
    shown = at.button_group(key=SECTION_KEY).value
    if shown != section:
        raise RuntimeError(f"technique page: asked for section {section!r}, it shows {shown!r}")
    return seconds


def _open_patient(at, pseudonym: str) -> float:
    """Show the patient page with `pseudonym` typed into its search; return the seconds the run took."""
    at.session_state[SEARCH_KEY] = pseudonym
    seconds = _timed(at.switch_page(PATIENT).run)
    _check(at, "patient page")
    if at.session_state[PICKED_KEY] != pseudonym or not at.get("plotly_chart"):
        raise RuntimeError(f"patient page: the search for {pseudonym} did not show their progress")
    return seconds


def _analyses_ready(section: str) -> None:
    """Wait until the analyses a page computes on the app's worker thread are ready, so warm runs draw them
    (dashboard.resources.analyses_settled), never a note that they are being computed."""
    from dashboard import resources

    if not resources.analyses_settled(RUN_TIMEOUT_S):
        raise RuntimeError(f"{section}: its analyses still computing after {RUN_TIMEOUT_S} s")


def cold(url: str, page: str, which: str) -> float:
    """Return the seconds of the page's first run in this process (a technique section, or the patient `which`)."""
    at = _logged_in(url)
    return _open_technique(at, which) if page == "technique" else _open_patient(at, which)


def _sections(url: str) -> list[str]:
    """Return the technique page's sections, as its own section picker lists them."""
    at = _logged_in(url)
    _open_technique(at, "Overview")
    return list(at.button_group(key=SECTION_KEY).options)


def warm(url: str, pseudonym: str, runs: int) -> dict:
    """Return warm run times of every technique section and of the patient page, and the peak memory as pages open."""
    at = _logged_in(url)
    _open_technique(at, "Overview")
    sections = at.button_group(key=SECTION_KEY).options
    times: dict[str, list[float]] = {}
    memory = {"logged in, technique page opened": peak_memory_mb()}
    for section in sections:
        _open_technique(at, section)  # the first run fills the caches
        _analyses_ready(f"technique page, {section}")  # and starts the analyses the app computes on its worker thread
        times[section] = [_open_technique(at, section) for _ in range(runs)]
        memory[f"technique page, {section}"] = peak_memory_mb()
    _open_patient(at, pseudonym)
    patient = [_open_patient(at, pseudonym) for _ in range(runs)]
    memory["patient page"] = peak_memory_mb()
    for page in OTHER_PAGES:
        at.switch_page(f"views/{page}.py").run()
        _check(at, page)
        _analyses_ready(page)  # a page's analyses on the worker (Needling record, Off track…) count in its memory
        at.run()
        memory[page] = peak_memory_mb()
    return {"sections": times, "patient": patient, "memory_by_page": memory, "peak_mb": peak_memory_mb()}


def in_fresh_process(work: Callable[[], object], timeout_s: int = RUN_TIMEOUT_S) -> object:
    """Return what `work` returns, run in a forked child of this process: None if it ran out of time.

    The child starts with what `measure` imported before any page ran: Streamlit and the modules the app's entrypoint
    imports, which a server process has run before anyone can open a page. So each child is a fresh app process
    without the seconds of starting Python and importing those; the timed run imports whatever else the page needs.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, answer through the pipe, leave without running the parent's cleanup
        os.close(read)
        signal.alarm(timeout_s)  # a run that hangs ends the child; the parent reads no answer
        try:
            answer = {"result": work()}
        except BaseException as error:  # every failure reaches the parent
            answer = {"error": f"{type(error).__name__}: {error}"}
        with os.fdopen(write, "w") as pipe:
            pipe.write(json.dumps(answer))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
        return None
    if not text:
        raise RuntimeError(f"the measuring process ended without an answer (wait status {status})")
    answer = json.loads(text)
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


def entrypoint_imports() -> list[str]:
    """Return the modules the app's entrypoint imports: a server has run them before anyone can open a page."""
    tree = ast.parse(Path(APP).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{alias.name}" if node.level == 0 else node.module for alias in node.names]
    return names


def _import_entrypoint_modules() -> None:
    sys.path.insert(0, str(ROOT))
    for name in entrypoint_imports():
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:  # `from package import function`: the package is imported, which is enough
            importlib.import_module(name.rpartition(".")[0])


def measure(url: str, pseudonym: str, runs: int, cold_runs: int) -> dict:
    """Return every page figure: each cold run in a fresh process forked from this one, then the warm runs and the
    peak memory in this process itself.

    The warm runs are not forked: a forked child's resident size leaves out the pages of the libraries its parent
    loaded until the child touches them again (about 75 MB of a server's imports), so its peak would understate a
    server's, which imported them itself."""
    import streamlit.testing.v1  # noqa: F401 - what a server process has imported before the app's first run

    _import_entrypoint_modules()
    sections = in_fresh_process(lambda: _sections(url))  # the page's own list: a new section is timed too
    cold_times: dict[str, list] = {section: [] for section in sections} | {"patient": []}
    for _ in range(cold_runs):  # runs interleaved, so a busy spell on the machine does not fall on one section
        for section in sections:
            cold_times[section].append(in_fresh_process(lambda s=section: cold(url, "technique", s)))
        cold_times["patient"].append(in_fresh_process(lambda: cold(url, "patient", pseudonym)))
    return warm(url, pseudonym, runs) | {"cold": cold_times}


def main(argv: list[str] | None = None) -> int:
    """Measure every page of the database at URL and print the figures as one line of JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("patient", help="the id of the patient the patient page shows")
    parser.add_argument("--runs", type=int, default=5, help="warm runs of each (median reported)")
    parser.add_argument("--cold-runs", type=int, default=3, help="first runs in a fresh process of each")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.url, args.patient, args.runs, args.cold_runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
