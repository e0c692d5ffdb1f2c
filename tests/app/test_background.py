"""dashboard.background: one result per key, computed again when the data version changes, the slow ones on a worker."""

from __future__ import annotations

import threading

import pytest

from dashboard import background
from dashboard.background import Analyses


class Computation:
    """A computation that counts its runs and, while `go` is clear, waits to finish (a slow fit held by the test)."""

    def __init__(self, fails: bool = False):
        self.runs, self.go, self.fails = 0, threading.Event(), fails
        self.go.set()

    def __call__(self) -> str:
        assert self.go.wait(timeout=60), "the test never let the computation finish"
        self.runs += 1
        if self.fails:
            raise RuntimeError("a fault in the model")
        return f"result {self.runs}"


@pytest.fixture
def analyses() -> Analyses:
    return Analyses()


def computed(analyses: Analyses, key: str, version: int, compute: Computation):
    """Return the analysis of `key` once the worker has computed what asking for it started."""
    analyses.get("fit", key, version, compute)
    assert analyses.settled(timeout=60)
    return analyses.get("fit", key, version, compute)


def test_a_slow_analysis_is_computed_on_the_worker_and_shown_once_ready(analyses):
    compute = Computation()
    compute.go.clear()
    first = analyses.get("fit", "key", 1, compute)
    assert first.value is None and first.running_for is not None and not first.current
    compute.go.set()
    assert analyses.settled(timeout=60)
    ready = analyses.get("fit", "key", 1, compute)
    assert (ready.value, ready.current, ready.running_for, compute.runs) == ("result 1", True, None, 1)
    assert ready.as_of is not None and ready.expected is not None


def test_a_newer_data_version_computes_again_while_the_older_result_is_shown(analyses):
    compute = Computation()
    computed(analyses, "key", 1, compute)
    compute.go.clear()
    meanwhile = analyses.get("fit", "key", 2, compute)
    assert (meanwhile.value, meanwhile.current) == ("result 1", False) and meanwhile.running_for is not None
    compute.go.set()
    assert analyses.settled(timeout=60)
    assert analyses.get("fit", "key", 2, compute).value == "result 2"
    assert analyses.get("fit", "key", 2, compute).current and compute.runs == 2


def test_each_key_has_its_own_result_and_the_same_version_is_never_computed_twice(analyses):
    one, other = Computation(), Computation()
    computed(analyses, "one", 1, one)
    computed(analyses, "other", 1, other)
    assert computed(analyses, "one", 1, one).value == "result 1"
    assert (one.runs, other.runs) == (1, 1)


def test_a_failed_background_analysis_gives_a_reference_and_is_not_retried_until_refreshed(analyses, caplog):
    compute = Computation(fails=True)
    analyses.get("fit", "key", 1, compute)
    assert analyses.settled(timeout=60)
    failed = analyses.get("fit", "key", 1, compute)
    assert failed.value is None and len(failed.fault) == 8 and compute.runs == 1
    assert failed.fault in caplog.text and "a fault in the model" in caplog.text  # the traceback in the log only
    failed.refresh()
    assert analyses.settled(timeout=60)
    assert compute.runs == 2


def test_refresh_computes_again_on_the_same_data(analyses):
    compute = Computation()
    computed(analyses, "key", 1, compute).refresh()
    assert analyses.settled(timeout=60)
    assert analyses.get("fit", "key", 1, compute).value == "result 2"


def test_a_page_waits_only_for_an_analysis_whose_last_computation_was_quick(analyses):
    compute = Computation()
    compute.go.clear()
    assert analyses.get("fit", "key", 1, compute, patience=60).value is None  # how long it takes is not known yet
    compute.go.set()
    assert analyses.settled(timeout=60)
    assert analyses.get("fit", "key", 2, compute, patience=60).value == "result 2"  # the last took under 60 s
    compute.go.clear()
    assert analyses.get("fit", "key", 3, compute, patience=0).value == "result 2"  # no patience: not awaited
    compute.go.set()


def test_the_least_recently_asked_for_results_are_forgotten_beyond_the_number_kept():
    analyses = Analyses(kept=2)
    compute = Computation()
    for key in ("a", "b", "c"):
        computed(analyses, key, 1, compute)
    computed(analyses, "a", 1, compute)  # forgotten: computed again
    computed(analyses, "c", 1, compute)  # kept
    assert compute.runs == 4


@pytest.mark.parametrize("fails", [False, True])
def test_the_worker_gives_back_what_each_computation_let_go_before_it_is_shown(analyses, monkeypatch, fails):
    compute = Computation(fails=fails)
    given_back = []
    monkeypatch.setattr(background.memory, "give_back", lambda: given_back.append(compute.runs))
    computed(analyses, "one", 1, compute)
    computed(analyses, "two", 1, compute)
    assert given_back == [1, 2]  # once after each computation, ended or failed, before the page could show it
