"""`python -m bench` (`make bench`): issue 15's figures at network scale on SQLite and PostgreSQL, targets beside them.

    .venv/bin/python -m bench                                   # 10k, 100k and 1M sessions, SQLite and PostgreSQL
    .venv/bin/python -m bench --sizes 10000,100000 --backends sqlite      # smaller, for development
    .venv/bin/python -m bench --keep /tmp/needle-bench          # keep the files and SQLite databases; reuse them
    .venv/bin/python -m bench --write-results                   # also rewrite bench/RESULTS.md and results.json
    .venv/bin/python -m bench --from bench/results.json         # only print (or write) a saved run's report

Each figure is printed as soon as it is measured, with its target and whether it is met; the report follows at the
end. How each figure is measured: `bench.report.HOW` (and bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from bench import data, measures, report
from bench.whole_process import ROOT, BenchFailed, run_module

SIZES = (10_000, 100_000, 1_000_000)
BACKENDS = ("sqlite", "postgresql")
RESULTS_MD, RESULTS_JSON = ROOT / "bench" / "RESULTS.md", ROOT / "bench" / "results.json"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_size(backend: data.Backend, size: int, directory: Path, args: argparse.Namespace) -> dict:
    """Return every measurement of the database of `size` sessions, building it first unless it is kept."""
    def say(message: str) -> None:
        _say(f"[{backend.name} {size:>9,}] {message}")

    @contextmanager
    def step(what: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        say(f"{what} in {time.perf_counter() - started:.0f} s")

    with step("interchange file ready"):
        path = data.interchange_file(directory, size)
        with path.open() as lines:
            rows = sum(1 for _ in lines) - 1
    started = time.perf_counter()
    url, imported = data.build_database(backend, size, path)
    result: dict = {"size": size, "built_s": None if imported is None else time.perf_counter() - started}
    if imported is None:
        with step("database kept from an earlier run; its file imported into a scratch database"):
            imported = data.import_into_scratch(backend, size, path)
    else:
        say(f"database built in {result['built_s']:.0f} s: {url}")
    result["import"] = measures.import_figures(rows, imported)
    result["shape"] = data.data_shape(url)
    say("data: " + ", ".join(f"{value:,} {key}" for key, value in result["shape"].items()))
    patient = data.patient_to_show(url)
    with step("pages measured"):
        pages = run_module("bench.pages", [url, patient, "--runs", str(args.runs),
                                           "--cold-runs", str(args.cold_runs)])
    result["pages"] = json.loads(pages.stdout.strip().splitlines()[-1]) | {"patient_id": patient}
    with step("`db summary` and the naive script measured"):
        result["summary"] = measures.summary_against_naive(url, args.summary_runs)
    scratch = f"{data.database_name(size)}_saves"
    with step("saves measured"):
        try:
            result["saves"] = measures.save_latencies(backend.copy(data.database_name(size), scratch), args.saves)
        finally:
            backend.drop(scratch)
    return result


def about_run(args: argparse.Namespace) -> dict[str, str]:
    """Return what the run was: commit, options, machine and its load."""
    def git(*words: str) -> str:
        return subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))
    return {
        "commit": commit, "started": datetime.now().isoformat(timespec="minutes"),
        "command": " ".join(["python -m bench", *args.argv]),
        "runs": f"{args.cold_runs} cold runs (a fresh process each) and {args.runs} warm runs per page or section; "
                f"{args.summary_runs} runs of each summary process; {args.saves} saves",
        "machine": f"{os.cpu_count()} × {cpu}, {memory_kb / 1024 / 1024:.1f} GB RAM, {platform.platform()}, "
                   f"Python {platform.python_version()}",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m bench`."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:8]))
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="numbers of sessions, comma-separated")
    p.add_argument("--backends", default=",".join(BACKENDS), help="sqlite, postgresql or both, comma-separated")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep the interchange files and SQLite databases in DIR and reuse them (PostgreSQL's "
                        "throwaway server is rebuilt every run)")
    p.add_argument("--runs", type=int, default=5, help="warm runs per page or section (median reported)")
    p.add_argument("--cold-runs", type=int, default=3, help="cold runs per page or section, a fresh process each")
    p.add_argument("--summary-runs", type=int, default=3, help="runs of `db summary` and of the naive script")
    p.add_argument("--saves", type=int, default=200, help="single-session saves timed")
    p.add_argument("--json", type=Path, help="also write the raw figures to this file")
    p.add_argument("--write-results", action="store_true",
                   help="rewrite bench/RESULTS.md (keeping its Notes) and bench/results.json from this run")
    p.add_argument("--from", dest="saved", type=Path, metavar="JSON", help="report a saved run instead of running")
    return p


def _arguments(argv: list[str]) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    args.argv = argv
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        p.error(f"--sizes: numbers of sessions separated by commas, not {args.sizes!r}")
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if unknown := set(args.backends) - set(BACKENDS):
        p.error(f"--backends: {', '.join(sorted(unknown))} is not one of {', '.join(BACKENDS)}")
    if not args.sizes or min(args.sizes) < 100 or not args.backends:
        p.error("--sizes and --backends: at least one size of 100 sessions or more, and one backend")
    if min(args.runs, args.cold_runs, args.summary_runs, args.saves) < 1:
        p.error("--runs, --cold-runs, --summary-runs and --saves: at least 1 each")
    return args


def measure(args: argparse.Namespace) -> dict:
    """Run every backend at every size; return the results with a description of the run.

    Each size's figures are printed as soon as they are measured, and the results so far are saved after each size
    (to --json, or with --write-results to bench/results.json): a run that fails late keeps what it measured.
    """
    results: dict = {"run": about_run(args), "backends": {}}
    checkpoint = args.json or (RESULTS_JSON if args.write_results else None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="needle-bench-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        for name in args.backends:
            backend = data.Backend(name, directory)
            try:
                sizes = []
                results["backends"][name] = {"version": backend.version(), "sizes": sizes}
                for size in args.sizes:
                    sizes.append(run_size(backend, size, directory, args))
                    for figure in report.figures(sizes[-1], sizes[0]):
                        _say(f"[{name} {size:>9,}] {figure.line()}")
                    if checkpoint:
                        checkpoint.write_text(json.dumps(results, indent=1))
            finally:
                backend.close()
    results["run"]["minutes"] = f"{(time.perf_counter() - started) / 60:.1f}"
    results["run"]["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or report a saved run); print the report; return 0, or 1 with the reason on stderr."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    try:
        results = json.loads(args.saved.read_text()) if args.saved else measure(args)
    except Exception as error:  # one line saying why, never a traceback
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _say(f"error: {reason}" if isinstance(error, BenchFailed) else f"error: {type(error).__name__}: {reason}")
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    raw = json.dumps(results, indent=1)
    if args.json:
        args.json.write_text(raw)
    notes = report.kept_notes(RESULTS_MD.read_text()) if RESULTS_MD.exists() else ""
    text = report.document(results, notes)
    if args.write_results:
        RESULTS_MD.write_text(text)
        RESULTS_JSON.write_text(raw)
        _say(f"wrote {RESULTS_MD} and {RESULTS_JSON}")
    print(text)
    return 0
