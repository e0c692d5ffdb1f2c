"""The benchmark's figures with issue 15's targets beside them, met or not: as progress lines and bench/RESULTS.md."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.measures import medians

NOTES_HEADING = "## Notes"  # RESULTS.md from this heading on is written by hand and kept by --write-results
HOW = """\
- **Data.** The sample-data generator (`sample_data/generate.py`, `NETWORK`) shaped like a clinic network: 60
  clinicians over 25 months, episodes of care of 2–8 sessions, about 1.15 episodes per patient, 10 conditions, every
  significant side effect left unreviewed (about one per 600 sessions). The file is cut at a patient boundary just
  past the size wanted. Each database is built as a clinic builds one: `python -m db init`, the file imported with
  `python -m db import`, the admin added with `python -m db users add`.
- **Pages** (`bench/pages.py`): AppTest run times, logged in as that admin. *Cold* is the first run of the page in a
  fresh app process: forked from one that has imported only Streamlit and the modules the app's entrypoint imports
  (a server has run those before anyone can open a page), it logs in and lands on the first page (not counted),
  then opens the page; median of the cold runs, one process each. *Warm* is a run with nothing changed after the
  page has been shown once: median of the warm runs. Every section of the technique page is measured on its own;
  the patient page is opened with the patient's id typed into its search, so its runs include the search.
- **Server peak RSS**: the peak resident memory (`VmHWM`) of the app process that ran every warm measurement and then
  opened every other page of the admin (PostgreSQL's own processes are not in it).
- **`db summary` against the naive script**: `python -m db summary` and `python -m bench.naive_summary` (the whole
  sessions table read with `pd.read_sql`, the same table computed with analytics/outcomes.py; both must print the
  same table), each run as a whole process from interpreter start to exit, runs alternating; medians.
- **Save**: `record_session` in one `write_session` (validate, write, audit, commit), a follow-up session for a
  random patient each time, on a copy of the database.
- **Import**: one `python -m db import` of the size's file (in parts of at most 200,000 rows, each its own
  transaction) into an empty database, as a whole process: rows per second
  of wall time, rows per CPU-second (user + system time of that process: what a loaded machine cannot hide; on
  PostgreSQL the server's own work is not in it), and peak resident memory.
  When the database is built in the run, that import is the build; a database kept with `--keep` is not rebuilt,
  and the file is imported into a scratch database instead.
"""


@dataclass(frozen=True)
class Target:
    """One of issue 15's targets: its words and the test a figure must pass."""

    words: str
    met: Callable[[float], bool]


def at_most(limit: float, unit: str) -> Target:
    """Return the target "at most `limit` `unit`"."""
    return Target(f"≤ {_number(limit, unit)}", lambda value: value <= limit)


def at_least(limit: float, unit: str) -> Target:
    """Return the target "at least `limit` `unit`"."""
    return Target(f"≥ {_number(limit, unit)}", lambda value: value >= limit)


def _number(value: float, unit: str, digits: int | None = None) -> str:
    """Return a value with its unit ("1.5×", "20,000 rows/s", "0.42 s"), to `digits` decimals or as few as needed."""
    shown = f"{value:,g}" if digits is None else f"{value:,.{digits}f}"
    return f"{shown}{'' if unit in ('×', '') else ' '}{unit}"


SECTION_COLD, SECTION_WARM = at_most(1, "s"), at_most(150, "ms")
PATIENT_WARM, PATIENT_GROWTH = at_most(150, "ms"), at_most(1.5, "×")
SUMMARY_SPEEDUP, SAVE_P95, SERVER_RSS = at_least(10, "×"), at_most(25, "ms"), at_most(400, "MB")
IMPORT_PER_CPU_S, IMPORT_RSS = at_least(20_000, ""), at_most(1024, "MB")


@dataclass(frozen=True)
class Figure:
    """One figure at one size: what it is, its value (None: not measured, or ran out of time), how it is shown."""

    label: str
    value: float | None
    unit: str  # "s", "ms", "MB", "×", "rows/s", …
    target: Target | None = None

    def shown(self) -> str:
        """Return the value with its unit, or why there is none."""
        if self.value is None:
            return "—"
        if math.isinf(self.value):
            return "ran out of time"
        return _number(self.value, self.unit, 2 if self.unit in ("s", "×") else 0)

    def verdict(self) -> str:
        """Return "met", "NOT MET", or "" when the figure has no target or no value."""
        if self.target is None or self.value is None:
            return ""
        return "met" if self.target.met(self.value) else "NOT MET"

    def line(self) -> str:
        """Return the figure as one line: label, value, and its target with the verdict."""
        target = f"  (target {self.target.words}: {self.verdict()})" if self.target and self.value is not None else ""
        return f"{self.label}: {self.shown()}{target}"


def _ms(seconds: list[float]) -> float:
    return 1000 * statistics.median(seconds)


def _cold_s(runs: list[float | None]) -> float | None:
    """Return the median cold time; a run that ran out of time counts as infinitely long."""
    return statistics.median(math.inf if run is None else run for run in runs) if runs else None


def figures(result: dict, baseline: dict) -> list[Figure]:
    """Return every figure of one size's result; `baseline` is the smallest size's (for the patient page's growth)."""
    pages, imported = result["pages"], result["import"]
    out = [Figure(f"technique page, {section}, cold", _cold_s(pages["cold"][section]), "s", SECTION_COLD)
           for section in pages["sections"]]
    out += [Figure(f"technique page, {section}, warm", _ms(times), "ms", SECTION_WARM)
            for section, times in pages["sections"].items()]
    patient_warm = _ms(pages["patient"])
    out += [
        Figure("patient page with its search, warm", patient_warm, "ms", PATIENT_WARM),
        Figure(f"patient page warm ÷ its time at {baseline['shape']['sessions']:,} sessions",
               patient_warm / _ms(baseline["pages"]["patient"]), "×", PATIENT_GROWTH),
        Figure("patient page with its search, cold", _cold_s(pages["cold"]["patient"]), "s"),
        Figure("server peak RSS, every page opened", pages["peak_mb"], "MB", SERVER_RSS),
    ]
    summary, naive = (medians(result["summary"][name], "seconds") for name in ("summary", "naive"))
    out += [
        Figure("`python -m db summary`, whole process", summary, "s"),
        Figure("naive whole-table pandas script, whole process", naive, "s"),
        Figure("`db summary` faster than the naive script", naive / summary, "×", SUMMARY_SPEEDUP),
        Figure("`python -m db summary`, CPU", medians(result["summary"]["summary"], "cpu_seconds"), "s"),
        Figure("save, median", _ms(result["saves"]), "ms"),
        Figure("save, p95", 1000 * float(np.percentile(result["saves"], 95)), "ms", SAVE_P95),
        Figure("import of the whole file (a row per session), rows per second", imported["rows_per_s"], ""),
        Figure("import of the whole file, rows per CPU-second", imported["rows_per_cpu_s"], "", IMPORT_PER_CPU_S),
        Figure("import of the whole file, peak RSS", imported["peak_mb"], "MB", IMPORT_RSS),
    ]
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
                     for row in lines) + "\n"


def backend_table(sizes: list[dict]) -> str:
    """Return one backend's figures as a Markdown table: one row per figure, one column per size, then the target."""
    by_size = [figures(result, sizes[0]) for result in sizes]
    labels = list(dict.fromkeys(f.label for figs in by_size for f in figs))
    targets = {f.label: f.target for figs in by_size for f in figs}
    header = ["figure", *[f"{r['shape']['sessions']:,} sessions" for r in sizes], "target"]
    rows = []
    for label in labels:
        cells = []
        for figs in by_size:
            found = next((f for f in figs if f.label == label), None)
            cells.append("" if found is None else f"{found.shown()} {found.verdict()}".strip())
        rows.append([label, *cells, targets[label].words if targets[label] else ""])
    return _table(header, rows)


def memory_table(sizes: list[dict]) -> str:
    """Return the server process's peak resident memory after each page it opened, as a Markdown table."""
    pages = list(dict.fromkeys(page for result in sizes for page in result["pages"]["memory_by_page"]))
    header = ["peak RSS after", *[f"{r['shape']['sessions']:,} sessions" for r in sizes]]
    return _table(header, [[page, *[_number(r["pages"]["memory_by_page"][page], "MB", 0)
                                    if page in r["pages"]["memory_by_page"] else "" for r in sizes]]
                           for page in pages])


def shape_table(sizes: list[dict]) -> str:
    """Return what each database holds, as a Markdown table."""
    keys = list(sizes[0]["shape"])
    return _table(["size", *keys], [[f"{r['size']:,}", *[f"{r['shape'][k]:,}" for k in keys]] for r in sizes])


def verdicts(results: dict) -> str:
    """Return, for each backend, how many targets its largest size met, and the figures of those it missed."""
    blocks = []
    for run in results["backends"].values():
        sizes = run["sizes"]
        targeted = [f for f in figures(sizes[-1], sizes[0]) if f.target is not None]
        missed = [f for f in targeted if f.verdict() == "NOT MET"]
        lines = [f"**{run['version']}, {sizes[-1]['shape']['sessions']:,} sessions: {len(targeted) - len(missed)} of "
                 f"{len(targeted)} targets met.**" + (" Not met:\n" if missed else "")]
        lines += [f"- {f.label}: {f.shown()} (target {f.target.words})" for f in missed if f.target]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def document(results: dict, notes: str) -> str:
    """Return bench/RESULTS.md for the results of one run, ending with the hand-written `notes`."""
    about = results["run"]
    parts = [
        "# Benchmark results (issue 15)\n",
        "Written by `python -m bench --write-results` from the run described below (raw figures:\n"
        "`bench/results.json`); only the Notes at the end are written by hand, and rewriting keeps them. Targets are\n"
        "issue 15's, set for 1,000,000 sessions; at smaller sizes their verdict is for information.\n",
        "## Run\n" + "".join(f"- {key}: {value}\n" for key, value in about.items()),
        "## Targets at the largest size\n" + verdicts(results),
        "## Data\n" + shape_table(next(iter(results["backends"].values()))["sizes"]),
    ]
    for run in results["backends"].values():
        parts.append(f"## {run['version']}\n" + backend_table(run["sizes"]))
        parts.append("Where the server's memory grows, page by page (the pages in the order they were opened):\n\n"
                     + memory_table(run["sizes"]))
    parts.append("## How each figure is measured\n" + HOW)
    parts.append(notes.strip() + "\n" if notes.strip() else f"{NOTES_HEADING}\n(none yet)\n")
    return "\n".join(parts)


def kept_notes(old: str) -> str:
    """Return the hand-written Notes section of an existing RESULTS.md ("" if it has none)."""
    start = old.find(f"\n{NOTES_HEADING}\n")
    return old[start + 1:] if start >= 0 else ""
