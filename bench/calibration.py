"""Expected recovery's figures (issue #18): held-out calibration and how long the fits take.

`python -m bench.calibration` prints the coverage of the 50 % and 80 % bands on the held-out newest fifth of the
episodes, on the sample data and on a generated data set of 100,000 sessions, then the time of each fit at 20,000
episodes of a clinic network's shape (sample_data's NETWORK): one fit on the latest 5,000 earlier episodes (what
the pages use), one on every episode (what that cap saves), the calibration, and every episode's bands (one fit
per calendar quarter). Pure analytics on generated frames: no database is involved.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import expected_recovery, outcomes, recovery_calibration
from sample_data.generate import NETWORK, generate

SAMPLE_FILE = Path(__file__).resolve().parent.parent / "sample_data" / "sessions.csv"
GENERATED_PATIENTS = 20_600  # in sample_data's default shape: 100,470 sessions


def improvement_of(rows: pd.DataFrame) -> pd.DataFrame:
    """Return cumulative_improvement of interchange rows: episodes by patient and condition, sessions in date order
    (entry order on one date), as the import numbers them when no session is 90 days after the one before."""
    rows = rows.drop(columns=["pain_after"]).assign(pain_before=pd.to_numeric(rows["pain_before"]),
                                                    entry_order=np.arange(len(rows)))
    rows = rows.sort_values(["patient_id", "condition", "session_date", "entry_order"], kind="stable")
    rows["episode_id"] = rows.groupby(["patient_id", "condition"], sort=False).ngroup()
    rows["session_number"] = rows.groupby("episode_id").cumcount() + 1
    return outcomes.cumulative_improvement(rows.reset_index(drop=True))


def coverage_line(name: str, table: pd.DataFrame) -> str:
    """Return one line of a `calibration_table`: the held-out episodes and sessions and the share inside each band."""
    row = table.set_index(["condition", "technique"]).loc[("all", "all")]
    return (f"{name}: {row['episodes']:.0f} held-out episodes, {row['observations']:.0f} sessions; inside the "
            f"50 % band {row['coverage_50']:.1%}, inside the 80 % band {row['coverage_80']:.1%}")


def timed(name: str, work: Callable[[], object]) -> str:
    """Return one line: how long `work` took, in seconds of the clock and of this process's CPU."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return f"{name}: {time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} s CPU)"


def main(argv: list[str] | None = None) -> int:
    """Print the calibration figures and the fit times; return 0."""
    p = argparse.ArgumentParser(prog="python -m bench.calibration", description=__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=GENERATED_PATIENTS,
                   help="patients of the generated calibration data set (default: 100,470 sessions)")
    p.add_argument("--episodes", type=int, default=20_000, help="episodes of the network whose fits are timed")
    args = p.parse_args(argv)
    sample = improvement_of(pd.read_csv(SAMPLE_FILE, dtype=str, keep_default_na=False))
    print(coverage_line("sample data", recovery_calibration.calibration_table(sample)))
    rows = generate(patients=args.patients)
    generated = recovery_calibration.calibration_table(improvement_of(rows))
    print(coverage_line(f"{len(rows):,} generated sessions", generated))

    network = improvement_of(generate(patients=round(args.episodes / NETWORK["episodes_per_patient"]), **NETWORK))
    episodes = expected_recovery.episode_table(network)
    latest = pd.Timestamp(network["session_date"].max())
    print(f"network: {len(episodes):,} episodes with a baseline above 0, {len(network):,} sessions, "
          f"{episodes['first_date'].min():%Y-%m} to {latest:%Y-%m}")
    print(timed("one fit, latest 5,000 episodes", lambda: expected_recovery.fit_recovery(network, episodes=episodes)))
    print(timed("one fit, every episode", lambda: expected_recovery.fit_recovery(
        network, episodes=episodes, most=len(episodes))))
    print(timed("calibration table", lambda: recovery_calibration.calibration_table(network)))
    print(timed("bands of every episode", lambda: expected_recovery.expected_bands(network)))
    print(timed("bands of the episodes seen in the last 30 days",
                lambda: expected_recovery.expected_bands(network, since=latest - pd.Timedelta(days=30))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
