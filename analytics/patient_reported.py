"""What patients report, summarised for managers (issue #17): soreness by window, time until it resolves, side
effects as patients report them beside clinicians', PGIC and PSFS. Pure pandas/scipy; docs/METHODS.md
("Patient-reported outcomes") gives the definitions and sources.

Inputs are the frames of db.report_queries (`diary_soreness`, `reported_effects`, `pgic_answers`, `psfs_ratings`);
`by` is "technique" (of the session, or of an episode's first session) or "adjunct" (each adjunct code of that
session; a session with two counts under each; `none` holds the sessions recorded as having no adjunct, the
comparison group, and a session whose adjuncts were not recorded counts under `not_recorded`, apart from it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from clinic.patient_reports import (
    CLINICIAN_CODES_OF,
    DIARY_WINDOWS,
    PATIENT_EFFECT_CODES,
    PGIC_IMPROVED,
    PSFS_MID_SHOWN,
    RESOLVED_AT_OR_BELOW,
    SORENESS_MAX,
    SORENESS_MIN,
)
from clinic.vocabulary import ALERT_SEVERITIES

NOT_RECORDED = "not_recorded"  # the adjunct group of sessions whose adjuncts were not recorded
ALL = "all"
ANY = "any"
SIGNIFICANT_OR_SERIOUS = "significant_or_serious"
SORENESS_COLUMNS = ["technique", "adjunct", "sessions", "diaries", "soreness_24h", "soreness_48h", "soreness_72h"]
SHOWN_WINDOWS = (24, 48, 72)  # the manager's page and `summary --soreness`; the 6 h entry is the diary's first


def with_adjunct(frame: pd.DataFrame) -> pd.DataFrame:
    """Return `frame` with one row per code of its `adjuncts` cell in a column `adjunct`: each adjunct, `none`
    (recorded: no adjunct), or `not_recorded` for an empty cell. A clinician who did not record adjuncts has not said
    there were none, so those sessions are kept out of `none`, the group the adjuncts are compared with."""
    codes = frame["adjuncts"].map(lambda cell: [code for code in cell.split(";") if code] if isinstance(cell, str)
                                  else [])
    codes = codes.map(lambda found: found or [NOT_RECORDED])
    return frame.assign(adjunct=codes).explode("adjunct", ignore_index=True)


def _grouped(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    if by == "adjunct":
        return with_adjunct(frame)
    if by != "technique":
        raise ValueError(f"by: 'technique' or 'adjunct', not {by!r}")
    return frame


def soreness_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the `python -m db summary --soreness` table (docs/DESIGN.md §5) from db.report_queries.diary_soreness:
    per technique and adjunct, the sessions with any entry, the entries, and the mean soreness of the 24, 48 and
    72 h entries, 2 decimals (NaN, an empty cell, when none); sorted by technique and adjunct."""
    if frame.empty:
        return pd.DataFrame(columns=SORENESS_COLUMNS)
    rows = with_adjunct(frame)
    keys = ["technique", "adjunct"]
    table = rows.groupby(keys).agg(sessions=("session_id", "nunique"), diaries=("entry_id", "size"))
    for window in SHOWN_WINDOWS:
        table[f"soreness_{window}h"] = rows[rows["window_h"] == window].groupby(keys)["soreness"].mean()
    table = table.reset_index().sort_values(keys, ignore_index=True)
    return table[SORENESS_COLUMNS].round(2)


def _t_interval(values: pd.Series) -> pd.Series:
    """Return n, mean and the 95 % Student-t interval of the values (NaN interval for fewer than 2)."""
    n = int(values.count())
    mean = values.mean() if n else np.nan
    half = stdtrit(n - 1, 0.975) * values.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return pd.Series({"n": n, "mean": mean, "ci95_low": mean - half, "ci95_high": mean + half})


def soreness_means(frame: pd.DataFrame, by: str = "technique") -> pd.DataFrame:
    """Return per group (`by`) and window (24, 48, 72 h) the entries, mean soreness and 95 % t interval:
    columns `<by>, window_h, entries, mean_soreness, ci95_low, ci95_high`."""
    columns = [by, "window_h", "entries", "mean_soreness", "ci95_low", "ci95_high"]
    rows = _grouped(frame, by)
    rows = rows[rows["window_h"].isin(SHOWN_WINDOWS)]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    table = rows.groupby([by, "window_h"])["soreness"].apply(_t_interval).unstack().reset_index()
    table = table.rename(columns={"n": "entries", "mean": "mean_soreness"}).astype({"entries": int,
                                                                                   "window_h": int})
    # A t interval of a few entries can pass the scale's ends; soreness is 0–10, so the interval is cut there.
    table[["ci95_low", "ci95_high"]] = table[["ci95_low", "ci95_high"]].clip(SORENESS_MIN, SORENESS_MAX)
    return table[columns].sort_values([by, "window_h"], ignore_index=True)


def resolution_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Return per session its time until soreness resolved: `session_id, technique, adjuncts, window_h` (the
    first window with soreness ≤ RESOLVED_AT_OR_BELOW, or the last window with an entry) and `resolved`
    (False: censored at the last entry)."""
    columns = ["session_id", "technique", "adjuncts", "window_h", "resolved"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = frame.sort_values(["session_id", "window_h"])
    resolved_at = rows[rows["soreness"] <= RESOLVED_AT_OR_BELOW].groupby("session_id")["window_h"].min()
    sessions = rows.groupby("session_id").agg(technique=("technique", "first"), adjuncts=("adjuncts", "first"),
                                               last=("window_h", "max"))
    resolved = sessions.index.isin(resolved_at.index)
    sessions["window_h"] = np.where(resolved, resolved_at.reindex(sessions.index), sessions["last"]).astype(int)
    sessions["resolved"] = resolved
    return sessions.reset_index()[columns]


def resolution_curve(frame: pd.DataFrame, by: str = "technique") -> pd.DataFrame:
    """Return the Kaplan–Meier share of sessions whose soreness has resolved by each diary window, per group:
    columns `<by>, window_h, at_risk, resolved, censored, unresolved, ci95_low, ci95_high, resolved_share`
    (`unresolved` is S(t) with its log–log 95 % interval, as analytics.survival computes it)."""
    from analytics.survival import kaplan_meier  # statsmodels: only this figure needs it

    columns = [by, "window_h", "at_risk", "resolved", "censored", "unresolved", "ci95_low", "ci95_high",
               "resolved_share"]
    times = _grouped(resolution_times(frame), by)
    if times.empty:
        return pd.DataFrame(columns=columns)
    ordinal = {window: k for k, window in enumerate(DIARY_WINDOWS, start=1)}  # windows as steps 1–4
    steps = pd.DataFrame({"technique": times[by], "sessions": times["window_h"].map(ordinal),
                          "responded": times["resolved"].astype(bool)})
    curve = kaplan_meier(steps).rename(columns={"technique": by, "responses": "resolved", "survival": "unresolved",
                                                "responded_share": "resolved_share"})
    curve["window_h"] = curve.pop("session_number").map(dict(enumerate(DIARY_WINDOWS, start=1)))
    return curve[columns]


def _checklist_items(effects: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return one row per session and checklist item (`session_id, item, severity`), at its highest severity."""
    if source == "clinician":
        item_of = {code: item for item, codes in CLINICIAN_CODES_OF.items() for code in codes}
    else:
        item_of = {code: code for code in PATIENT_EFFECT_CODES}
    rows = effects.assign(item=effects["code"].map(item_of)).dropna(subset=["item"])
    rank = {"mild": 0, "significant": 1, "serious": 2}
    rows = rows.assign(rank=rows["severity"].map(rank)).sort_values(["session_id", "item", "rank"])
    return rows.drop_duplicates(["session_id", "item"], keep="last")[["session_id", "item", "severity"]]


def effect_rates(inputs: dict[str, pd.DataFrame], by: str = "technique") -> pd.DataFrame:
    """Return side effects per 100 sessions as patients and clinicians report them, on the same sessions (those
    with a diary; db.report_queries.reported_effects), with exact Poisson (Garwood) 95 % intervals.

    Columns `<by>, source, side_effect, severity, events, sessions, per_100_sessions, ci95_low, ci95_high`; groups
    and `all`; `side_effect` each checklist item with events and `any`; `severity` `any` and
    `significant_or_serious`. Clinicians' codes are counted under the checklist item that covers them
    (clinic.patient_reports.CLINICIAN_CODES_OF); those no item covers (soreness, pain during treatment…) are left
    out of both, so the two sources count the same things. An item counts once per session.
    """
    from analytics.safety import garwood_interval

    columns = [by, "source", "side_effect", "severity", "events", "sessions", "per_100_sessions", "ci95_low",
               "ci95_high"]
    sessions = _grouped(inputs["sessions"], by)
    if sessions.empty:
        return pd.DataFrame(columns=columns)
    sessions = pd.concat([sessions, sessions.assign(**{by: ALL}).drop_duplicates("session_id")], ignore_index=True)
    exposure = sessions.groupby(by)["session_id"].nunique().rename("sessions")
    frames = []
    for source in ("patient", "clinician"):
        items = _checklist_items(inputs[source], source).merge(sessions[["session_id", by]], on="session_id")
        alerting = items[items["severity"].isin(ALERT_SEVERITIES)]
        for severity, chosen in ((ANY, items), (SIGNIFICANT_OR_SERIOUS, alerting)):
            per_item = chosen.groupby([by, "item"]).size().rename("events").reset_index()
            any_item = chosen.drop_duplicates([by, "session_id", "item"]).groupby(by).size().rename("events")
            any_rows = exposure.to_frame().join(any_item).fillna({"events": 0}).reset_index()[[by, "events"]]
            frames.append(pd.concat([per_item.rename(columns={"item": "side_effect"}),
                                     any_rows.assign(side_effect=ANY)], ignore_index=True)
                          .assign(source=source, severity=severity))
    table = pd.concat(frames, ignore_index=True).merge(exposure.reset_index(), on=by)
    table = table.astype({"events": int, "sessions": int})
    low, high = garwood_interval(table["events"], table["sessions"])
    table["per_100_sessions"] = 100.0 * table["events"] / table["sessions"]
    table["ci95_low"], table["ci95_high"] = 100.0 * low, 100.0 * high
    return table[columns].sort_values([by, "source", "side_effect", "severity"], ignore_index=True)


def pgic_improved(answers: pd.DataFrame, by: str = "technique") -> pd.DataFrame:
    """Return per group (and `all`) the share of episodes whose latest PGIC answer is "much" or "very much improved"
    (1–2), with its Wilson 95 % interval: columns `<by>, episodes, improved, share, ci95_low, ci95_high`."""
    from analytics.outcomes import wilson_interval

    columns = [by, "episodes", "improved", "share", "ci95_low", "ci95_high"]
    if answers.empty:
        return pd.DataFrame(columns=columns)
    latest = answers.sort_values(["episode_id", "answered_at"]).drop_duplicates("episode_id", keep="last")
    latest = _grouped(latest.assign(improved=latest["score"].isin(PGIC_IMPROVED)), by)
    latest = pd.concat([latest, latest.assign(**{by: ALL}).drop_duplicates("episode_id")], ignore_index=True)
    table = latest.groupby(by).agg(episodes=("episode_id", "nunique"), improved=("improved", "sum")).reset_index()
    table = table.astype({"episodes": int, "improved": int})
    table["share"] = table["improved"] / table["episodes"]
    table["ci95_low"], table["ci95_high"] = wilson_interval(table["improved"], table["episodes"])
    return table[columns]


def psfs_change(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return per episode the PSFS change: the mean over its activities rated at least twice of (latest − first
    rating): columns `episode_id, technique, adjuncts, activities, baseline, latest, change`."""
    columns = ["episode_id", "technique", "adjuncts", "activities", "baseline", "latest", "change"]
    ordered = ratings.sort_values(["episode_id", "activity_id", "rated_at"])
    per_activity = ordered.groupby(["episode_id", "activity_id"]).agg(
        technique=("technique", "first"), adjuncts=("adjuncts", "first"), ratings=("score", "size"),
        baseline=("score", "first"), latest=("score", "last"))
    per_activity = per_activity[per_activity["ratings"] >= 2].reset_index()
    if per_activity.empty:
        return pd.DataFrame(columns=columns)
    episodes = per_activity.groupby("episode_id").agg(
        technique=("technique", "first"), adjuncts=("adjuncts", "first"), activities=("activity_id", "size"),
        baseline=("baseline", "mean"), latest=("latest", "mean")).reset_index()
    episodes["change"] = episodes["latest"] - episodes["baseline"]
    return episodes[columns]


def psfs_summary(ratings: pd.DataFrame, by: str = "technique") -> pd.DataFrame:
    """Return per group (and `all`) the mean PSFS change with its 95 % t interval and the share of episodes improving
    by at least PSFS_MID_SHOWN (2.3) points with its Wilson interval: columns `<by>, episodes, mean_change,
    ci95_low, ci95_high, reached_mid, share_mid, share_ci95_low, share_ci95_high`."""
    from analytics.outcomes import wilson_interval

    columns = [by, "episodes", "mean_change", "ci95_low", "ci95_high", "reached_mid", "share_mid",
               "share_ci95_low", "share_ci95_high"]
    change = _grouped(psfs_change(ratings), by)
    if change.empty:
        return pd.DataFrame(columns=columns)
    change = pd.concat([change, change.assign(**{by: ALL}).drop_duplicates("episode_id")], ignore_index=True)
    rows = []
    for group, own in change.groupby(by):
        stats = _t_interval(own["change"])
        reached = int((own["change"] >= PSFS_MID_SHOWN - 1e-9).sum())
        rows.append({by: group, "episodes": int(stats["n"]), "mean_change": stats["mean"],
                     "ci95_low": stats["ci95_low"], "ci95_high": stats["ci95_high"], "reached_mid": reached})
    table = pd.DataFrame(rows)
    table["share_mid"] = table["reached_mid"] / table["episodes"]
    table["share_ci95_low"], table["share_ci95_high"] = wilson_interval(table["reached_mid"], table["episodes"])
    return table[columns]
