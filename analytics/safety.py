"""Safety: side effects as events per 100 sessions and as the share of sessions with any, beside published rates.

A side effect belongs to the technique of the session it happened in. Two measures, each on its own basis:
- **events per 100 sessions** (`rate_table`): every recorded side effect counts (a session can have several), with
  the exact Poisson (Garwood) 95 % interval. This is the basis of Brady et al. 2014 and Boyce et al. 2020, who
  report events per 100 treatments, so only this one is set beside them.
- **share of sessions with any** (`share_table`): sessions with at least one side effect of a severity, with a
  Wilson interval. No publication in docs/REFERENCES.md reports this, so it stands alone.
A type is recorded at most once per session (at its highest severity), so for one type both measures agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analytics import outcomes
from clinic.outcomes import SafetyCounts
from clinic.vocabulary import ALERT_SEVERITIES, SEVERITIES

ANY = "any"  # the side_effect (every type) or severity (every class) of the pooled rows
ALL = "all"  # the technique of the rows that pool every technique
SIGNIFICANT_OR_SERIOUS = "significant or serious"
TABLE_COLUMNS = [
    "technique", "side_effect", "severity", "events", "sessions", "per_100_sessions", "ci95_low", "ci95_high",
]
SHARE_COLUMNS = ["technique", "severity", "sessions_with", "sessions", "share", "ci95_low", "ci95_high"]
EVENT_COLUMNS = ["session_id", "patient", "technique", "code", "severity"]
ALWAYS = ((ANY, ANY), (ANY, "significant"), (ANY, "serious"))  # rows shown even at 0 events

BRADY_2014 = "Brady et al. 2014, J Man Manip Ther 22(3):134–140 (7,629 treatments)"
BOYCE_2020 = "Boyce et al. 2020, Int J Sports Phys Ther 15(1):103–113 (20,464 treatments)"
BRADY_TREATMENTS, BOYCE_TREATMENTS = 7629, 20464
BOYCE_MAJOR_EVENTS = 20
# Published events per 100 treatments (docs/REFERENCES.md). Brady's "pain after treatment" (2.19) is left out: the
# taxonomy has no such code, and post-needling soreness is reported by trials as a share of patients (29–91 %),
# a different basis, so the clinic's soreness stands beside no published figure.
PUBLISHED_MILD = pd.DataFrame(
    [
        (BRADY_2014, ANY, 19.18),
        (BRADY_2014, "bruising", 7.55),
        (BRADY_2014, "bleeding", 4.65),
        (BRADY_2014, "pain_during", 3.01),
        (BRADY_2014, "aggravation", 0.88),
        (BRADY_2014, "drowsiness", 0.26),
        (BRADY_2014, "headache", 0.14),
        (BRADY_2014, "nausea", 0.13),
        (BRADY_2014, "fatigue", 0.04),
        (BRADY_2014, "emotional", 0.04),
        (BOYCE_2020, ANY, 36.7),
        (BOYCE_2020, "bleeding", 16.0),
        (BOYCE_2020, "bruising", 7.7),
        (BOYCE_2020, "pain_during", 5.9),
    ],
    columns=["source", "code", "per_100_treatments"],
)
SORENESS_TRIALS = "trials summarised in J Clin Med 2020 (PMC7602246, table 5): soreness in 29–91 % of patients"


def garwood_interval(events, exposure, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact Poisson (Garwood 1936) interval of a rate: events per unit of exposure, two-sided `level`.

    [χ²(α/2; 2k) / 2, χ²(1 − α/2; 2k + 2) / 2] / exposure; the lower limit is 0 when k = 0.
    """
    k = np.asarray(events, dtype=float)
    n = np.asarray(exposure, dtype=float)
    alpha = 1.0 - level
    low = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * np.maximum(k, 1)) / 2, 0.0)
    high = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return low / n, high / n


def poisson_upper_bound(events: int, exposure: float, level: float = 0.95) -> float:
    """Return the exact one-sided upper confidence bound of a Poisson rate (χ²(level; 2k + 2) / 2 / exposure).

    With no event it is −ln(1 − level) / exposure (3.0 / exposure at 95 %, "the rule of three").
    """
    return float(stats.chi2.ppf(level, 2 * events + 2) / 2 / exposure)


def rate_ratio_p_value(events: int, exposure: float, other_events: int, other_exposure: float) -> float:
    """Return the two-sided exact p-value that two Poisson rates are equal (conditional binomial test).

    Given k1 + k2 events, k1 is Binomial(k1 + k2, n1 / (n1 + n2)) when the rates are equal.
    """
    total = events + other_events
    if total == 0:
        return 1.0
    return float(stats.binomtest(events, total, exposure / (exposure + other_exposure)).pvalue)


def side_effect_events(sessions: pd.DataFrame, side_effects: pd.DataFrame) -> pd.DataFrame:
    """Return one row per side effect of `sessions`: the session's id, patient, technique, code and severity.

    `sessions` has one row per session with `session_id`, `technique` (of that session) and `patient_id` (or
    `episode_id`); `side_effects` one row per side effect, `session_id, code, severity` (as `db.queries` returns
    them). A type recorded twice in one session counts once, at its highest severity, as the database stores it.
    """
    patient = "patient_id" if "patient_id" in sessions else "episode_id"
    context = sessions[["session_id", "technique", patient]].rename(columns={patient: "patient"})
    events = side_effects[["session_id", "code", "severity"]].merge(context, on="session_id")
    events["patient"] = events["patient"].astype(str)
    rank = events["severity"].map({s: i for i, s in enumerate(SEVERITIES)}).fillna(-1)
    events = events.assign(rank=rank).sort_values("rank", kind="stable")
    events = events.drop_duplicates(["session_id", "code"], keep="last").sort_index()
    return events[EVENT_COLUMNS].reset_index(drop=True)


def count_side_effects(
    sessions: pd.DataFrame, side_effects: pd.DataFrame, techniques: tuple[str, ...] = ()
) -> SafetyCounts:
    """Return the safety counts of per-session rows and their side effects, by the technique of each session.

    With `techniques`, only the sessions of those techniques count, whatever technique their episode began with
    (the technique filter of the safety figures applies to sessions).
    """
    if techniques:
        sessions = sessions[sessions["technique"].isin(techniques)]
    events = side_effect_events(sessions, side_effects)
    per_technique = sessions.groupby("technique").size().rename("sessions").reset_index()
    counts = events.groupby(["technique", "code", "severity"]).size().rename("events").reset_index()
    by_severity = events.drop_duplicates(["session_id", "severity"]).groupby(["technique", "severity"]).size()
    any_severity = events.drop_duplicates("session_id").groupby("technique").size()
    with_any = pd.concat([
        by_severity.rename("sessions_with").reset_index(),
        any_severity.rename("sessions_with").reset_index().assign(severity=ANY),
    ], ignore_index=True)
    return SafetyCounts(
        events=counts[["technique", "code", "severity", "events"]].astype({"events": int}),
        sessions=per_technique.astype({"sessions": int}),
        sessions_with=with_any[["technique", "severity", "sessions_with"]].astype({"sessions_with": int}),
    )


def _with_all(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Return `frame` with rows pooling every technique (technique "all") added."""
    pooled = frame.groupby(keys, as_index=False)[value].sum().assign(technique=ALL) if keys else pd.DataFrame(
        {"technique": [ALL], value: [frame[value].sum()]})
    return pd.concat([frame, pooled], ignore_index=True)


def rate_table(events: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """Return side effects per 100 sessions with exact Poisson (Garwood) 95 % intervals, per technique (and all).

    Rows: every side effect (each code and "any") and severity (each class and "any") with events, and always
    (any, any), (any, significant) and (any, serious), also at 0. Techniques with no session have no rows. Sorted by
    technique, side effect and severity; not rounded (`db summary --safety` rounds to 2 decimals).
    """
    sessions = sessions[sessions["sessions"] > 0]
    if sessions.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    events = events.rename(columns={"code": "side_effect"})[["technique", "side_effect", "severity", "events"]]
    pooled = pd.concat([
        events,
        events.assign(severity=ANY),
        events.assign(side_effect=ANY),
        events.assign(side_effect=ANY, severity=ANY),
    ], ignore_index=True)
    keys = ["technique", "side_effect", "severity"]
    counts = pooled.groupby(keys, as_index=False)["events"].sum()
    counts = _with_all(counts, ["side_effect", "severity"], "events")
    exposure = _with_all(sessions[["technique", "sessions"]], [], "sessions")
    always = pd.DataFrame(
        [(t, code, severity) for t in exposure["technique"] for code, severity in ALWAYS], columns=keys
    )
    table = always.merge(counts, on=keys, how="outer").fillna({"events": 0})
    table = table.merge(exposure, on="technique", how="inner")
    table = table[(table["events"] > 0) | table.set_index(keys).index.isin(always.set_index(keys).index)]
    table = table.astype({"events": int, "sessions": int})
    low, high = garwood_interval(table["events"], table["sessions"])
    table["per_100_sessions"] = 100.0 * table["events"] / table["sessions"]
    table["ci95_low"], table["ci95_high"] = 100.0 * low, 100.0 * high
    return table[TABLE_COLUMNS].sort_values(keys, ignore_index=True)


def summary_table(counts: SafetyCounts) -> pd.DataFrame:
    """Return the `python -m db summary --safety` table: `rate_table` with rates and intervals to 2 decimals."""
    return rate_table(counts.events, counts.sessions).round({"per_100_sessions": 2, "ci95_low": 2, "ci95_high": 2})


def share_table(sessions_with: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """Return the share of sessions with at least one side effect, per technique (and all) and severity (and any).

    Wilson 95 % intervals, as fractions 0–1; every severity has a row, also at 0.
    """
    sessions = sessions[sessions["sessions"] > 0]
    if sessions.empty:
        return pd.DataFrame(columns=SHARE_COLUMNS)
    exposure = _with_all(sessions[["technique", "sessions"]], [], "sessions")
    counts = _with_all(sessions_with, ["severity"], "sessions_with")
    grid = pd.DataFrame(
        [(t, severity) for t in exposure["technique"] for severity in (ANY, *SEVERITIES)],
        columns=["technique", "severity"],
    )
    table = grid.merge(counts, on=["technique", "severity"], how="left").fillna({"sessions_with": 0})
    table = table.merge(exposure, on="technique").astype({"sessions_with": int, "sessions": int})
    table["share"] = table["sessions_with"] / table["sessions"]
    table["ci95_low"], table["ci95_high"] = outcomes.wilson_interval(table["sessions_with"], table["sessions"])
    return table[SHARE_COLUMNS].sort_values(["technique", "severity"], ignore_index=True)


def safety_vs_published(table: pd.DataFrame) -> pd.DataFrame:
    """Return the clinic's mild events per 100 sessions per type beside the published events per 100 treatments.

    `table` is `rate_table`'s. Columns: code, source (a technique, "all", or the publication), per_100, ci95_low,
    ci95_high (Garwood; NaN for published figures), `published`. Only the types a publication reports are kept,
    so the chart compares like with like; soreness has no published figure on this basis and is not among them.
    """
    mild = table[(table["severity"] == "mild") & table["side_effect"].isin(PUBLISHED_MILD["code"])]
    clinic = pd.DataFrame(
        {
            "code": mild["side_effect"],
            "source": mild["technique"],
            "per_100": mild["per_100_sessions"],
            "ci95_low": mild["ci95_low"],
            "ci95_high": mild["ci95_high"],
            "published": False,
        }
    )
    literature = pd.DataFrame(
        {
            "code": PUBLISHED_MILD["code"],
            "source": PUBLISHED_MILD["source"],
            "per_100": PUBLISHED_MILD["per_100_treatments"],
            "ci95_low": float("nan"),
            "ci95_high": float("nan"),
            "published": True,
        }
    )
    return pd.concat([clinic, literature], ignore_index=True)


SERIOUS_COLUMNS = ["source", "severity", "events", "sessions", "per_100", "ci95_low", "ci95_high", "bound",
                   "p_value"]


def serious_vs_published(table: pd.DataFrame) -> pd.DataFrame:
    """Return significant and serious events per 100 sessions per technique (and all) beside Brady and Boyce.

    `table` is `rate_table`'s. Clinic rows per technique for "significant", "serious" and their sum ("significant or
    serious"), with Garwood intervals. Published rows (per 100 treatments): Brady et al. saw no significant or
    serious event in 7,629 treatments, so only an upper bound exists: `bound` is True and per_100 is the exact
    one-sided 95 % upper bound (ci95 NaN); Boyce et al. saw 20 major events in 20,464, with its Garwood interval.
    `p_value` (on the clinic's "all" significant-or-serious row, against each publication) is the exact test that
    the two rates are equal, in the order Brady, Boyce: see `serious_sentence`.
    """
    wanted = table[(table["side_effect"] == ANY) & table["severity"].isin(ALERT_SEVERITIES)]
    both = wanted.groupby("technique", as_index=False).agg(events=("events", "sum"), sessions=("sessions", "first"))
    rows = pd.concat([wanted.rename(columns={"technique": "source"}),
                      both.rename(columns={"technique": "source"}).assign(severity=SIGNIFICANT_OR_SERIOUS)],
                     ignore_index=True)
    low, high = garwood_interval(rows["events"], rows["sessions"])
    clinic = pd.DataFrame(
        {
            "source": rows["source"], "severity": rows["severity"], "events": rows["events"].astype(int),
            "sessions": rows["sessions"].astype(int), "per_100": 100.0 * rows["events"] / rows["sessions"],
            "ci95_low": 100.0 * low, "ci95_high": 100.0 * high, "bound": False, "p_value": np.nan,
        }
    )
    boyce_low, boyce_high = garwood_interval(BOYCE_MAJOR_EVENTS, BOYCE_TREATMENTS)
    published = pd.DataFrame(
        {
            "source": [BRADY_2014, BOYCE_2020], "severity": SIGNIFICANT_OR_SERIOUS,
            "events": [0, BOYCE_MAJOR_EVENTS], "sessions": [BRADY_TREATMENTS, BOYCE_TREATMENTS],
            "per_100": [100.0 * poisson_upper_bound(0, BRADY_TREATMENTS),
                        100.0 * BOYCE_MAJOR_EVENTS / BOYCE_TREATMENTS],
            "ci95_low": [np.nan, 100.0 * float(boyce_low)], "ci95_high": [np.nan, 100.0 * float(boyce_high)],
            "bound": [True, False],
        }
    )
    everyone = clinic[(clinic["source"] == ALL) & (clinic["severity"] == SIGNIFICANT_OR_SERIOUS)]
    if not everyone.empty:
        k, n = int(everyone["events"].iloc[0]), int(everyone["sessions"].iloc[0])
        published["p_value"] = [rate_ratio_p_value(k, n, e, t)
                                for e, t in zip(published["events"], published["sessions"], strict=True)]
    else:
        published["p_value"] = np.nan
    order = {s: i for i, s in enumerate((*ALERT_SEVERITIES, SIGNIFICANT_OR_SERIOUS))}
    clinic = clinic.sort_values(["source", "severity"], key=lambda c: c.map(order) if c.name == "severity" else c)
    return pd.concat([clinic, published], ignore_index=True)[SERIOUS_COLUMNS]


def _per_100(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 or value == 0 else f"{value:.3f}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def serious_sentence(comparison: pd.DataFrame) -> str:
    """Return in words the clinic's significant-or-serious rate beside Brady's bound and Boyce's rate.

    A rate is called higher or lower only when the exact test says so at the 5 % level; otherwise the sentence
    says the difference may be chance.
    """
    clinic = comparison[(comparison["source"] == ALL) & (comparison["severity"] == SIGNIFICANT_OR_SERIOUS)]
    if clinic.empty:
        return "No sessions in these filters: no safety figures."
    c = clinic.iloc[0]
    brady, boyce = (comparison[comparison["source"] == s].iloc[0] for s in (BRADY_2014, BOYCE_2020))
    sentence = (
        f"Significant or serious side effects: {c.events} in {c.sessions:,} sessions, {_per_100(c.per_100)} per 100 "
        f"sessions (95 % CI {_per_100(c.ci95_low)} to {_per_100(c.ci95_high)})."
    )

    def verdict(row) -> str:
        if row.p_value < 0.05:
            return f"the clinic's rate is {'higher' if c.per_100 > row.events / row.sessions * 100 else 'lower'} " \
                   f"({_p(row.p_value)}, exact test)"
        return f"the difference may be chance ({_p(row.p_value)}, exact test)"

    sentence += (
        f" Brady et al. saw none in {BRADY_TREATMENTS:,} treatments: not a rate of 0 but at most "
        f"{_per_100(brady.per_100)} per 100 (exact one-sided 95 % upper bound); {verdict(brady)}."
        f" Boyce et al. saw {BOYCE_MAJOR_EVENTS} major events in {BOYCE_TREATMENTS:,} treatments, "
        f"{_per_100(boyce.per_100)} per 100 (95 % CI {_per_100(boyce.ci95_low)} to {_per_100(boyce.ci95_high)}); "
        f"{verdict(boyce)}."
    )
    return sentence


def alert_events(sessions: pd.DataFrame, side_effects: pd.DataFrame) -> pd.DataFrame:
    """Return every significant or serious side effect with the session's date, technique, clinician and patient."""
    events = side_effect_events(sessions, side_effects)
    events = events[events["severity"].isin(ALERT_SEVERITIES)]
    rows = sessions.set_index("session_id").loc[events["session_id"]]
    out = pd.DataFrame(
        {
            "session_date": rows["session_date"].to_numpy() if "session_date" in rows else None,
            "technique": events["technique"].to_numpy(),
            "code": events["code"].to_numpy(),
            "severity": events["severity"].to_numpy(),
            "clinician": rows["clinician"].to_numpy() if "clinician" in rows else None,
            "patient_id": events["patient"].to_numpy(),
        }
    )
    return out.sort_values("session_date", ascending=False, kind="stable").reset_index(drop=True)
