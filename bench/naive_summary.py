"""`python -m bench.naive_summary URL`: what `python -m db summary` prints, the naive way, as a yardstick.

The whole sessions table is read into pandas (`SELECT *`), as a script written without the database's help would,
and the per-technique table is computed from it with the outcome definitions of analytics/outcomes.py, so both
print the same table (the benchmark checks that they do).
"""

from __future__ import annotations

import sys

import pandas as pd
from sqlalchemy import create_engine

from analytics import outcomes


def summary_csv(url: str) -> str:
    """Return the per-technique outcome table as CSV, computed from the whole sessions table."""
    sessions = pd.read_sql("SELECT * FROM sessions", create_engine(url))
    sessions = sessions[sessions["deleted_at"].isna()]
    curve = outcomes.technique_curve(outcomes.curve_moments(outcomes.cumulative_improvement(sessions)))
    return outcomes.summary_table(curve).to_csv(index=False, lineterminator="\n")


if __name__ == "__main__":
    sys.stdout.write(summary_csv(sys.argv[1]))
