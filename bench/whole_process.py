"""Run a Python module as a whole process and measure it: wall time, CPU time and peak resident memory.

    run_module("db", ["--url", url, "summary"])      # in the benchmark
    python -m bench.whole_process OUT.json db --url URL summary      # what that runs

The child runs the module as `python -m MODULE` would (`runpy`), then writes its CPU time and peak memory to OUT.json
as it exits. The parent times the whole command, from before the interpreter starts to after it ends.
"""

from __future__ import annotations

import json
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BenchFailed(RuntimeError):
    """A measured command failed; the message names it and ends with its last lines of error output."""


@dataclass(frozen=True)
class Measured:
    """What one whole process took, and what it printed."""

    seconds: float  # wall time, interpreter start to exit
    cpu_seconds: float  # user + system time of the process
    peak_mb: float  # peak resident memory (VmHWM)
    stdout: str


def peak_memory_mb() -> float:
    """Return this process's peak resident memory in MB.

    Linux's `ru_maxrss` keeps, across the exec that starts a child, the resident size of the parent it was forked
    from: a child of a benchmark holding a million generated rows would report the benchmark's gigabyte. `VmHWM`
    (the high-water mark of this process image) does not, so it is read first.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def cpu_seconds() -> float:
    """Return the user and system CPU time this process has used since it started."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_module(module: str, args: list[str], *, timeout: float | None = None) -> Measured:
    """Run `python -m MODULE ARGS` from the repository root and return what it took; raise BenchFailed if it fails."""
    with tempfile.TemporaryDirectory(prefix="needle-bench-") as directory:
        figures = Path(directory) / "figures.json"
        command = [sys.executable, "-m", "bench.whole_process", str(figures), module, *args]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no error output"])[-1]
            raise BenchFailed(f"python -m {module} {' '.join(args)} failed (exit status {result.returncode}): {last}")
        measured = json.loads(figures.read_text())
    return Measured(seconds=seconds, cpu_seconds=measured["cpu_seconds"], peak_mb=measured["peak_mb"],
                    stdout=result.stdout)


def main(argv: list[str]) -> None:
    """Run `python -m MODULE ARGS` in this process; write its CPU time and peak memory to OUT as it exits."""
    out, module, *args = argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)  # its exit status passes through
    finally:
        Path(out).write_text(json.dumps({"cpu_seconds": cpu_seconds(), "peak_mb": peak_memory_mb()}))


if __name__ == "__main__":
    main(sys.argv[1:])
