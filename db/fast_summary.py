"""`python -m db summary`'s default table, read and written without pandas or SQLModel (issue #15).

The table is defined once, in analytics/outcomes.py: `summary_table(technique_curve(technique_moments(...)))`, each
technique's mean pain, improvement in points and in percent, and the 95 % Student-t interval of the percent, per
session number, rounded to 2 decimals. Almost all of that command's time went to importing pandas, scipy.special,
SQLModel and the table models (about 1.3 of 1.75 s at a million sessions). This module is the same computation for
the command line alone: the roll-up's sums of the "all" rows read with one SQL statement through SQLAlchemy Core
(db.queries.technique_moments' statement), the means and intervals in the same floating-point operations, in the
same order, as the pandas code, and the CSV as `DataFrame.to_csv(index=False, lineterminator="\\n")` writes it
(floats in their shortest form, `0.0`, `-0.0`; an undefined interval empty). tests/db/test_fast_summary.py holds
its output byte for byte equal to the reference's.

The t quantile is scipy's `stdtrit`, the very ufunc analytics.outcomes calls; `student_t_quantile` loads it without
the rest of scipy.special.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import sys
import types

from sqlalchemy import NullPool, create_engine
from sqlalchemy.engine import make_url

from db.access import AGGREGATE_READERS, Actor, require_role
from db.urls import SQLITE_BUSY_TIMEOUT_MS

# analytics.outcomes.SUMMARY_COLUMNS (tests hold them equal), and summary_table's rounding.
COLUMNS = ["technique", "session_number", "patients", "mean_pain_before", "mean_improvement_points",
           "mean_improvement_pct", "ci95_low_pct", "ci95_high_pct"]
DECIMALS = 2
# db.queries.technique_moments without a filter: rollups.cells reads the roll-up's "all" rows (one per technique
# and session number; summed as there all the same).
MOMENTS_SQL = (
    "SELECT technique, session_number, SUM(curve_sessions), SUM(sum_pain), SUM(sum_improvement), SUM(sum_pct), "
    "SUM(sum_pct_squared) FROM outcome_rollup WHERE dimension = 'all' GROUP BY technique, session_number "
    "HAVING SUM(curve_sessions) > 0"
)
NAN = float("nan")


def student_t_quantile():
    """Return scipy.special.stdtrit, the t quantile analytics.outcomes uses, at the least import cost.

    `import scipy.special` (or of any module in it) runs the package's __init__, which loads scipy's array-API
    layer (0.3 s, numpy.f2py and numpy.testing among it); the ufunc itself lives in the compiled module
    scipy.special._ufuncs, which needs only its compiled neighbours. So that module is loaded under a stand-in for
    the package, which is then taken away: a later `import scipy.special` runs in full and finds the very same
    module (and ufunc) already loaded. Should that ever fail (another scipy), the package is imported as usual.
    """
    if "scipy.special" in sys.modules:
        return sys.modules["scipy.special"].stdtrit
    try:
        return _ufuncs_alone().stdtrit
    except Exception:  # any failure: the ordinary import below gives the same function
        from scipy.special import stdtrit

        return stdtrit


def _ufuncs_alone() -> types.ModuleType:
    import scipy  # the top package: numpy and scipy's small core (`scipy.special` is loaded lazily by it)

    spec = importlib.util.find_spec("scipy.special")
    stand_in = types.ModuleType("scipy.special")
    stand_in.__path__ = list(spec.submodule_search_locations)
    before = set(sys.modules)
    sys.modules["scipy.special"] = stand_in
    try:
        from scipy.special import _ufuncs
    except BaseException:
        for name in set(sys.modules) - before:  # nothing half-loaded stays for the ordinary import to find
            del sys.modules[name]
        raise
    finally:
        sys.modules.pop("scipy.special", None)
        if vars(scipy).get("special") is stand_in:
            delattr(scipy, "special")
    return _ufuncs


def read_moments(url: str, *, actor: Actor) -> list[tuple]:
    """Return the technique curve's sums (`MOMENT_COLUMNS` of clinic.outcomes) of every episode, as tuples."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")  # as db.queries.technique_moments
    sqlite = make_url(url).get_backend_name() == "sqlite"
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000} if sqlite else {}
    engine = create_engine(url, hide_parameters=True, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(MOMENTS_SQL)]
    finally:
        engine.dispose()


def summary_rows(moments: list[tuple]) -> list[list]:
    """Return the summary table's rows (`COLUMNS`, unrounded; NaN where undefined) from the sums, as
    analytics.outcomes.technique_curve computes them, operation for operation."""
    stdtrit = student_t_quantile() if any(row[2] > 1 for row in moments) else None
    rows = []
    for technique, session_number, count, sum_pain, sum_points, sum_pct, sumsq_pct in sorted(
            moments, key=lambda row: (row[0], row[1])):
        n = float(count)
        mean_pct = float(sum_pct) / n
        if n > 1:
            variance = (float(sumsq_pct) - n * (mean_pct * mean_pct)) / (n - 1)
            variance = variance if variance >= 0 or variance != variance else 0.0  # clip(lower=0) keeps -0.0, NaN
            half_width = float(stdtrit(n - 1, 0.975)) * math.sqrt(variance / n)
        else:
            half_width = NAN  # one patient: no interval
        rows.append([technique, int(session_number), int(count), float(sum_pain) / n, float(sum_points) / n,
                     mean_pct, mean_pct - half_width, mean_pct + half_width])
    return rows


def rounded(x: float) -> float:
    """Return `x` rounded as numpy (and so pandas' DataFrame.round) rounds to DECIMALS: rint(x·100) / 100."""
    if not math.isfinite(x):
        return x
    scaled = x * 10.0**DECIMALS
    return math.copysign(float(round(scaled)), scaled) / 10.0**DECIMALS  # round: half to even; rint keeps -0.0


def _cell(value) -> object:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(rounded(value))  # repr: numpy's and so pandas' shortest form
    return value


def summary_csv(rows: list[list]) -> str:
    """Return the rows as `summary_table(...).to_csv(index=False, lineterminator="\\n")` writes them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # pandas' dialect: comma, '"' doubled, minimal quoting
    writer.writerow(COLUMNS)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def technique_summary(url: str, *, actor: Actor) -> str:
    """Return `python -m db summary`'s default CSV table for the database at `url` (an engine URL)."""
    return summary_csv(summary_rows(read_moments(url, actor=actor)))
