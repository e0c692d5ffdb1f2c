"""The expected-recovery fit in one pass over the sessions, read in order of each episode's first session (issue #15):
the quarterly models, the bands they give the observed sessions (summarised as they are predicted: the work list
and each episode's latest session with a band) and the held-out calibration, holding only the latest episodes.

The figures are, number for number, expected_recovery.quarterly_models, on_track.summaries of
expected_recovery.observed_bands and recovery_calibration.calibration_table of every episode at once
(tests/analytics/test_recovery_stream.py). A quarter's model is fitted on the MAX_TRAINING_EPISODES latest episodes
begun before the quarter, all read by the time its first episode is; the calibration tests the newest fifth on a fit
on the MAX_TRAINING_EPISODES before it, so only those need be kept until the last session is read. Holding every
episode's follow-up sessions instead, the app's fit peaked at 442 MB where this one peaks at 421 (a network's
million sessions, bench.pages' sequence in one process, db.memory.hold_less in both).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pandas as pd

from analytics import expected_recovery, on_track
from analytics.expected_recovery import (
    BANDS_COLUMNS,
    EPISODE_COLUMNS,
    EPISODE_ORDER,
    FOLLOW_UP_COLUMNS,
    PREDICTED_EPISODES,
    RecoveryModel,
    episode_table,
    fit_recovery,
    follow_up_rows,
    predict_bands,
    training_cutoffs,
)
from analytics.outcomes import analysable
from analytics.recovery_calibration import calibration_table, held_out_position

# The kept episodes' parts joined into one when there are twice as many: a date's episodes are a few kilobytes,
# which, held as they came, stay scattered among the freed blocks of the parts read since.
JOINED_PARTS = 32
Episodes = tuple[pd.DataFrame, pd.DataFrame]  # episode_table's rows (whole dates, in its order), their follow-ups


@dataclass(frozen=True)
class RecoveryFit:
    models: dict[pd.Timestamp, RecoveryModel]  # expected_recovery.quarterly_models
    work_list: pd.DataFrame  # on_track.WORK_LIST_COLUMNS, every clinician's
    latest: pd.DataFrame  # on_track.LATEST_COLUMNS: each episode's latest session with a band
    calibration: pd.DataFrame  # recovery_calibration.CALIBRATION_COLUMNS


def fit_in_order(improvements: Iterable[pd.DataFrame], *, most: int = PREDICTED_EPISODES) -> RecoveryFit:
    """Return the fit of the cumulative improvement given a part at a time, each part holding whole episodes, the
    parts in order of the episodes' first-session dates (episodes of one date may span two parts). Bands are
    predicted `most` episodes or a little more at a time. ValueError if a part goes back to an earlier date."""
    models: dict[pd.Timestamp, RecoveryModel] = {}
    kept = _Latest()
    work_list, latest = on_track.summaries(_bands(_whole_dates(improvements), models, kept, most))
    return RecoveryFit(models, work_list, latest, kept.calibration(most))


def _follow_ups(improvement: pd.DataFrame) -> pd.DataFrame:
    rows = analysable(improvement)
    rows = rows.loc[rows["session_number"] >= 2, FOLLOW_UP_COLUMNS]
    return rows.assign(session_date=pd.to_datetime(rows["session_date"])).reset_index(drop=True)


def _of(follow_ups: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    return follow_ups[follow_ups["episode_id"].isin(episodes["episode_id"])]


def _whole_dates(improvements: Iterable[pd.DataFrame]) -> Iterator[Episodes]:
    """Yield the episodes (baseline above 0) of every first-session date read, in episode_table's order, with their
    follow-up sessions: a date once the next has begun, so each date's episodes are ordered together."""
    waiting: Episodes | None = None  # the episodes of the latest date read, and their follow-ups
    for improvement in improvements:
        table = episode_table(improvement)
        if table.empty:
            continue
        if waiting is None:
            episodes, follow_ups = table, _follow_ups(improvement)
        elif table["first_date"].iloc[0] < waiting[0]["first_date"].iloc[0]:
            raise ValueError("expected recovery: the sessions must come in order of their episode's first session")
        else:
            episodes, follow_ups = _joined([waiting, (table, _follow_ups(improvement))])
        done = episodes["first_date"] < episodes["first_date"].iloc[-1]
        if done.any():
            ready = episodes[done].sort_values(EPISODE_ORDER, ignore_index=True)
            yield ready, _of(follow_ups, ready)
        waiting = episodes[~done].reset_index(drop=True), _of(follow_ups, episodes[~done])
    if waiting is not None:
        yield waiting[0].sort_values(EPISODE_ORDER, ignore_index=True), waiting[1]


def _bands(dates: Iterator[Episodes], models: dict, kept: _Latest, most: int) -> Iterator[pd.DataFrame]:
    """Yield the bands (BANDS_COLUMNS) of the observed follow-up sessions of the episodes in `dates`, each episode's
    from its quarter's model, fitted into `models` when the quarter's first episode is read; `kept` keeps them."""
    quarter: list[Episodes] = []  # the read episodes of the latest quarter whose bands are not yet predicted
    for episodes, follow_ups in dates:
        for cutoff, begun in episodes.groupby(training_cutoffs(episodes["first_date"]), sort=True):
            if cutoff not in models:
                yield from _predicted(quarter, models)
                quarter, models[cutoff] = [], kept.fit(cutoff)
            quarter.append((begun.reset_index(drop=True), _of(follow_ups, begun)))
            kept.add(*quarter[-1])
            if sum(len(episodes) for episodes, _ in quarter) >= most:
                yield from _predicted(quarter, models)
                quarter = []
    yield from _predicted(quarter, models)


def _predicted(quarter: list[Episodes], models: dict) -> Iterator[pd.DataFrame]:
    """Yield the bands of the episodes of one quarter, from its model (the latest fitted)."""
    if quarter:
        episodes, follow_ups = _joined(quarter)
        yield predict_bands(models[next(reversed(models))], follow_up_rows(follow_ups, episodes))[BANDS_COLUMNS]


def _joined(parts: Iterable[Episodes]) -> Episodes:
    episodes, follow_ups = zip(*parts, strict=True)
    return pd.concat(episodes, ignore_index=True), pd.concat(follow_ups, ignore_index=True)


class _Latest:
    """The latest episodes read (whole dates, in order) with their follow-ups: every one the calibration may hold
    out (from the held-out first date of those read so far, which only moves later as more are read) and the
    MAX_TRAINING_EPISODES before them, so also the MAX_TRAINING_EPISODES latest a quarter's model is fitted on."""

    def __init__(self) -> None:
        self.parts: deque[Episodes] = deque()
        self.index = 0  # the position, among all the episodes read, of the first one kept
        self.read = 0

    def add(self, episodes: pd.DataFrame, follow_ups: pd.DataFrame) -> None:
        self.parts.append((episodes, follow_ups))
        self.read += len(episodes)
        if len(self.parts) > 2 * JOINED_PARTS:  # the newest parts, one date each, held as one block
            newest = [self.parts.pop() for _ in range(JOINED_PARTS)]
            self.parts.append(_joined(reversed(newest)))
        boundary = self._held_out_from()
        before = 0  # the episodes kept that began before it: the first parts, each of whole dates
        for part, _ in self.parts:
            if part["first_date"].iloc[-1] >= boundary:
                break
            before += len(part)
        while before - len(self.parts[0][0]) >= expected_recovery.MAX_TRAINING_EPISODES:
            first, _ = self.parts.popleft()
            self.index, before = self.index + len(first), before - len(first)

    def _held_out_from(self) -> pd.Timestamp:
        position = held_out_position(self.read) - self.index
        for episodes, _ in self.parts:
            if position < len(episodes):
                return episodes["first_date"].iloc[position]
            position -= len(episodes)
        raise AssertionError("the held-out position is among the episodes read")

    def fit(self, cutoff: pd.Timestamp) -> RecoveryModel:
        """Return the model of the quarter beginning at `cutoff`: every episode kept began before it."""
        latest, count = [], 0
        for part in reversed(self.parts):
            if count >= expected_recovery.MAX_TRAINING_EPISODES:
                break
            latest.append(part)
            count += len(part[0])
        episodes, follow_ups = _joined(reversed(latest)) if latest else _NONE
        return fit_recovery(follow_ups, before=cutoff, episodes=episodes)

    def calibration(self, most: int) -> pd.DataFrame:
        episodes, follow_ups = _joined(self.parts) if self.parts else _NONE
        return calibration_table(follow_ups, episodes=episodes, most=most, index=self.index)


_NONE = (pd.DataFrame(columns=EPISODE_COLUMNS), pd.DataFrame(columns=FOLLOW_UP_COLUMNS))
