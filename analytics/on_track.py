"""Is an episode on track? Flags from the expected-recovery bands, the clinicians' work list, and observed minus
expected per clinician and technique (docs/METHODS.md, "Expected recovery and calibration").

Everything here reads `analytics.expected_recovery.expected_bands`' frame, so a flag, a work-list row and a funnel
point all rest on the same bands, each fitted on earlier episodes only.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.special import ndtri, stdtrit

from clinic.outcomes import DEFAULT_RULE, ResponderRule
from clinic.vocabulary import ANSWER_SESSION, MINIMAL_PCT

STATUS_COLUMNS = [
    "episode_id", "patient_id", "clinician", "technique", "condition", "session_number", "latest_session_date",
    "improvement_pct", "q25", "q50", "shown", "off_track", "reason",
]
WORK_LIST_COLUMNS = ["episode_id", "patient_id", "clinician", "reason", "latest_session_date", "session_number",
                     "improvement_pct"]
BY = ("clinician", "technique")
# What observed minus expected reads of each episode's latest session with a band (`latest_with_band`).
LATEST_COLUMNS = ["episode_id", *BY, "session_number", "session_date", "improvement_pct", "expected", "shown"]
GATHER_EVERY = 8  # parts whose rows `summaries` joins into one frame
Z95, Z998 = float(ndtri(0.975)), float(ndtri(0.999))  # the funnel's 95 % and 99.8 % limits
COMPARISON_COLUMNS = [
    "episodes", "observed_mean", "expected_mean", "difference", "ci95_low", "ci95_high", "clinic_mean", "sd",
    "lower95", "upper95", "lower998", "upper998", "outside95",
]


def track(bands: pd.DataFrame, rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return the observed sessions of `bands` with whether each leaves the episode off track, and why.

    Off track at session k: sessions k − 1 and k both below their band's 25th percentile (both bands shown), or
    k ≥ ANSWER_SESSION (4) without a minimal important improvement (MINIMAL_PCT, 15 %, by `rule`, so with a low
    baseline also the MCID in points) at any session up to k. An episode back above either bar is on track again.
    """
    rows = bands[bands["improvement_pct"].notna()].sort_values(["episode_id", "session_number"], ignore_index=True)
    below = (rows["improvement_pct"] < rows["q25"]).to_numpy()  # False where no band is shown (q25 NaN)
    episode = rows["episode_id"].to_numpy()
    previous = np.r_[False, below[:-1] & (episode[1:] == episode[:-1])]
    reaches = rule.reaches(rows["improvement_pct"], rows["improvement_points"], rows["baseline_points"], MINIMAL_PCT)
    reached = pd.Series(reaches, index=rows.index).groupby(rows["episode_id"]).cummax().to_numpy()
    off_band = below & previous
    off_minimal = (rows["session_number"] >= ANSWER_SESSION).to_numpy() & ~reached
    k = rows["session_number"].astype(int).astype(str)
    band_reason = np.where(off_band, "below the expected 25th percentile at sessions " + (
        rows["session_number"] - 1).astype(int).astype(str) + " and " + k, "")
    minimal_reason = np.where(off_minimal, f"no minimal important improvement ({MINIMAL_PCT} %) by session " + k, "")
    rows["below_25"], rows["reached_minimal"], rows["off_track"] = below, reached, off_band | off_minimal
    rows["reason"] = [
        "; ".join(part for part in pair if part) for pair in zip(band_reason, minimal_reason, strict=True)
    ]
    return rows


def episode_status(bands: pd.DataFrame, rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return one row per episode at its latest observed session: on or off track, why, and its band there."""
    latest = track(bands, rule).groupby("episode_id", sort=False).tail(1)
    return latest.rename(columns={"session_date": "latest_session_date"})[STATUS_COLUMNS].reset_index(drop=True)


def work_list(bands: pd.DataFrame, *, clinician: str | None = None, rule: ResponderRule = DEFAULT_RULE
              ) -> pd.DataFrame:
    """Return the off-track episodes, newest latest session first, optionally of one clinician (their first session's).

    Discharged episodes (a `status`, when the sessions read carry one) are left out: the list is for courses still
    running.
    """
    status = episode_status(bands[bands["status"].isna()], rule)
    off = status[status["off_track"]]
    if clinician is not None:
        off = off[off["clinician"] == clinician]
    return off.sort_values(["latest_session_date", "episode_id"], ascending=[False, True])[
        WORK_LIST_COLUMNS].reset_index(drop=True)


def latest_with_band(bands: pd.DataFrame, *, start=None, end=None) -> pd.DataFrame:
    """Return each episode's latest observed session from `start` to `end` (dates, inclusive; None: open) with a
    band shown, one row per episode in episode order: what `observed_minus_expected` compares."""
    dates = pd.to_datetime(bands["session_date"])
    keep = bands["shown"].astype(bool) & bands["improvement_pct"].notna()
    keep &= (dates >= pd.Timestamp(start)) if start is not None else True
    keep &= (dates <= pd.Timestamp(end)) if end is not None else True
    return bands[keep].sort_values(["episode_id", "session_number"]).groupby("episode_id").tail(1)


def summaries(parts: Iterable[pd.DataFrame], rule: ResponderRule = DEFAULT_RULE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return every clinician's `work_list` and every episode's `latest_with_band` (columns LATEST_COLUMNS, BY as
    categories) from bands read a part at a time, each part holding whole episodes (expected_recovery.observed_bands):
    the same rows as from all the bands at once, while only one part's bands are held. The work list's rows are
    joined every GATHER_EVERY parts, so they are held in a few large blocks, not in small ones among each part's
    freed ones; the latest sessions, one per episode, are kept in `_Columns`."""
    lists, latest = [], _Columns(LATEST_COLUMNS, texts=BY)
    for bands in parts:
        if bands.empty:
            continue
        lists.append(work_list(bands, rule=rule))
        latest.add(latest_with_band(bands)[LATEST_COLUMNS])
        if len(lists) == GATHER_EVERY:
            lists = _gathered(lists)
    lists = _gathered(lists)
    listed = lists[0] if lists else pd.DataFrame(columns=WORK_LIST_COLUMNS)
    listed = listed.sort_values(["latest_session_date", "episode_id"], ascending=[False, True], ignore_index=True)
    return listed, latest.frame(order=["episode_id", "session_number"])


def _gathered(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    frames = [frame for frame in frames if not frame.empty]
    return [pd.concat(frames, ignore_index=True)] if frames else []


class _Columns:
    """Rows added a part at a time, kept in one array per column grown by doubling, the `texts` columns as codes:
    a few large blocks the system gives pages of their own. Kept as frames, joined every few parts, each episode's
    latest session held 14 MB more resident at the end of the expected-recovery fit at a million sessions (200,000
    rows; db.memory.hold_less), its texts (clinician and technique) a string per row, among each part's freed blocks.
    """

    def __init__(self, columns: list[str], *, texts: Iterable[str]) -> None:
        self.columns, self.rows = columns, 0
        self.arrays: dict[str, np.ndarray] = {}
        self.codes: dict[str, dict] = {name: {} for name in texts}  # each column's texts, by first appearance

    def add(self, frame: pd.DataFrame) -> None:
        end = self.rows + len(frame)
        for name in self.columns:
            values = self._coded(name, frame[name]) if name in self.codes else frame[name].to_numpy()
            kept = self.arrays.get(name)
            dtype = values.dtype if kept is None else np.result_type(kept, values)
            if kept is None or len(kept) < end or kept.dtype != dtype:
                grown = np.empty(max(end, 2 * self.rows), dtype)
                if kept is not None:
                    grown[:self.rows] = kept[:self.rows]
                self.arrays[name] = kept = grown
            kept[self.rows:end] = values
        self.rows = end

    def frame(self, *, order: list[str]) -> pd.DataFrame:
        """Return the rows added, sorted by `order`, the texts as categories (in sorted order); let them go."""
        if not self.rows:
            return pd.DataFrame(columns=self.columns)
        arrays = {name: array[:self.rows] for name, array in self.arrays.items()}
        self.arrays, self.rows = {}, 0
        sort = np.lexsort([arrays[name] for name in reversed(order)])
        columns = {}
        for name in self.columns:
            values = arrays.pop(name)[sort]
            if name in self.codes:
                texts = list(self.codes[name])
                values = pd.Categorical.from_codes(values, texts).reorder_categories(sorted(texts))
            columns[name] = values
        return pd.DataFrame(columns)

    def _coded(self, name: str, texts: pd.Series) -> np.ndarray:
        """Return the codes of `texts` in column `name` (-1 where missing), a new text given the next code."""
        codes, found = pd.factorize(texts)
        known = self.codes[name]
        return np.append(np.array([known.setdefault(text, len(known)) for text in found], dtype=np.int32), -1)[codes]


def observed_minus_expected(bands: pd.DataFrame, by: str, *, start=None, end=None) -> pd.DataFrame:
    """Return per clinician or technique (`by`) the mean of observed minus expected improvement (%), for a funnel plot.

    Each episode counts once, at its latest session from `start` to `end` (dates, inclusive; None: open) with a
    band shown: observed improvement minus the expected (mean) improvement of earlier episodes like it. Per group:
    the episodes, both means, the mean difference with its 95 % t interval; `clinic_mean` is the mean difference
    over all those episodes, and the control limits are clinic_mean ± 1.96 and ± 3.09 · sd / √n, sd being the
    difference's standard deviation over all of them (Spiegelhalter 2005). A clinician is their episode's first
    session's; episodes without one are left out.
    """
    if by not in BY:
        raise ValueError(f"by: one of {', '.join(BY)}, not {by!r}")
    latest = latest_with_band(bands, start=start, end=end)
    named = latest[by].astype(object)  # texts, or categories (`summaries`): grouped alike, by their text
    latest = latest.assign(**{by: named})[named.notna() & (named != "")]
    if latest.empty:
        return pd.DataFrame(columns=[by, *COMPARISON_COLUMNS])
    difference = latest["improvement_pct"] - latest["expected"]
    clinic_mean, sd = float(difference.mean()), float(difference.std())
    grouped = latest.assign(difference=difference).groupby(by)
    table = pd.DataFrame({
        "episodes": grouped.size(),
        "observed_mean": grouped["improvement_pct"].mean(),
        "expected_mean": grouped["expected"].mean(),
        "difference": grouped["difference"].mean(),
    }).reset_index()
    n = table["episodes"].astype(float)
    half = stdtrit(n - 1, 0.975) * grouped["difference"].std().to_numpy() / np.sqrt(n)  # NaN for one episode
    table["ci95_low"], table["ci95_high"] = table["difference"] - half, table["difference"] + half
    table["clinic_mean"], table["sd"] = clinic_mean, sd
    for z, low, high in ((Z95, "lower95", "upper95"), (Z998, "lower998", "upper998")):
        table[low], table[high] = clinic_mean - z * sd / np.sqrt(n), clinic_mean + z * sd / np.sqrt(n)
    table["outside95"] = (table["difference"] < table["lower95"]) | (table["difference"] > table["upper95"])
    return table[[by, *COMPARISON_COLUMNS]].sort_values(["episodes", by], ignore_index=True)
