"""The expected-recovery fit in one pass over the sessions, read in order of each episode's first session (issue #15):
the quarterly models, the bands they give the observed sessions (summarised as they are predicted: the work list
and each episode's latest session with a band) and the held-out calibration, holding only the latest episodes.

The figures are, number for number, expected_recovery.quarterly_models, on_track.summaries of
expected_recovery.observed_bands and recovery_calibration.calibration_table of every episode at once
(tests/analytics/test_recovery_stream.py). A quarter's model is fitted on the MAX_TRAINING_EPISODES latest episodes
begun before the quarter, all read by the time its first episode is; the calibration's model on those begun before
the held-out newest fifth, whose first is known from the number of episodes, counted beforehand. So only the
MAX_TRAINING_EPISODES latest episodes are kept, and the fits are made on a first reading, before the bands are
predicted on a second, so the figures kept from the bands are not held while a model is fitted. Holding every
episode's follow-up sessions instead, the app's fit peaked at 442 MB where this one peaks at 371 (a network's million
sessions, bench.pages' sequence in one process, db.memory.hold_less in both).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
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
from analytics.outcomes import analysable, cumulative_improvement
from analytics.recovery_calibration import coverage_counts, coverage_table, held_out_position, tested_bands

Episodes = tuple[pd.DataFrame, pd.DataFrame]  # episode_table's rows (whole dates, in its order), their follow-ups


@dataclass(frozen=True)
class RecoveryFit:
    """What `fit_in_order` computes."""

    models: dict[pd.Timestamp, RecoveryModel]  # expected_recovery.quarterly_models
    work_list: pd.DataFrame  # on_track.WORK_LIST_COLUMNS, every clinician's
    latest: pd.DataFrame  # on_track.LATEST_COLUMNS: each episode's latest session with a band
    calibration: pd.DataFrame  # recovery_calibration.CALIBRATION_COLUMNS


def fit_in_order(read: Callable[[], Iterable[pd.DataFrame]], *, episodes: int,
                 most: int = PREDICTED_EPISODES) -> RecoveryFit:
    """Return the fit of the cumulative improvement `read()` gives a part at a time, each part holding whole
    episodes, the parts in order of the episodes' first-session dates (episodes of one date may span two parts);
    `episodes` is how many episodes with a baseline above 0 they hold. Read twice: the models and the calibration
    are fitted on the first reading, holding nothing else; the bands are predicted (`most` episodes or a little more
    at a time) and summarised on the second. ValueError if a part goes back to an earlier date, or the parts hold
    another number of episodes."""
    models, calibration = _fitted(_whole_dates(read()), episodes, most)
    work_list, latest = on_track.summaries(_bands(_whole_dates(read()), models, most))
    return RecoveryFit(models, work_list, latest, calibration)


def counted_episodes(first_sessions: pd.DataFrame) -> int:
    """Return how many episodes with a baseline above 0 a fit will read, from their first sessions alone
    (`episode_id`, `session_number`, `pain_scale`, `pain_before`): `fit_in_order`'s `episodes`."""
    return int(analysable(cumulative_improvement(first_sessions))["episode_id"].nunique())


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


def _fitted(dates: Iterator[Episodes], counted: int, most: int) -> tuple[dict, pd.DataFrame]:
    """Return the quarterly models of the episodes in `dates`, each fitted when the quarter's first episode is read,
    and the calibration table (`counted` of them, tested `most` at a time)."""
    models: dict[pd.Timestamp, RecoveryModel] = {}
    latest, held_out = _Latest(), _HeldOut(held_out_position(counted), most)
    for episodes, follow_ups in dates:
        for cutoff, begun in episodes.groupby(training_cutoffs(episodes["first_date"]), sort=True):
            if cutoff not in models:
                models[cutoff] = latest.fit(cutoff)
            for part in held_out.split(begun.reset_index(drop=True), latest.read):
                part = part, _of(follow_ups, part)
                held_out.test(part, latest)
                latest.add(part)
    if latest.read != counted:
        raise ValueError(f"expected recovery: {latest.read} episodes read where {counted} were counted")
    return models, held_out.table()


def _bands(dates: Iterator[Episodes], models: dict, most: int) -> Iterator[pd.DataFrame]:
    """Yield the bands (BANDS_COLUMNS) of the observed follow-up sessions of the episodes in `dates`, each episode's
    from its quarter's model in `models`, `most` episodes of one quarter or a little more at a time."""
    quarter: list[Episodes] = []  # read episodes of one quarter whose bands are not yet predicted
    current = None  # that quarter
    for episodes, follow_ups in dates:
        for cutoff, begun in episodes.groupby(training_cutoffs(episodes["first_date"]), sort=True):
            if cutoff != current:
                yield from _predicted(quarter, models.get(current))
                quarter, current = [], cutoff
            quarter.append((begun.reset_index(drop=True), _of(follow_ups, begun)))
            if sum(len(episodes) for episodes, _ in quarter) >= most:
                yield from _predicted(quarter, models[current])
                quarter = []
    yield from _predicted(quarter, models.get(current))


def _predicted(quarter: list[Episodes], model: RecoveryModel | None) -> Iterator[pd.DataFrame]:
    if quarter:
        episodes, follow_ups = _joined(quarter)
        yield predict_bands(model, follow_up_rows(follow_ups, episodes))[BANDS_COLUMNS]


def _joined(parts: Iterable[Episodes]) -> Episodes:
    episodes, follow_ups = zip(*parts, strict=True)
    return pd.concat(episodes, ignore_index=True), pd.concat(follow_ups, ignore_index=True)


class _Latest:
    """The MAX_TRAINING_EPISODES latest episodes read (whole dates, in order) with their follow-ups, at least."""

    def __init__(self) -> None:
        self.parts: deque[Episodes] = deque()
        self.kept = 0
        self.read = 0  # every episode read, kept or not

    def add(self, part: Episodes) -> None:
        self.parts.append(part)
        self.kept, self.read = self.kept + len(part[0]), self.read + len(part[0])
        while self.kept - len(self.parts[0][0]) >= expected_recovery.MAX_TRAINING_EPISODES:
            self.kept -= len(self.parts.popleft()[0])

    def fit(self, before: pd.Timestamp) -> RecoveryModel:
        """Return the model fitted on the latest episodes begun before `before`: every one kept began before it."""
        episodes, follow_ups = _joined(self.parts) if self.parts else _NONE
        return fit_recovery(follow_ups, before=before, episodes=episodes)


class _HeldOut:
    """The calibration: the episodes from the first date of the one at `position` on are held out, each tested
    on the fit on the episodes begun before that date (recovery_calibration.held_out_parts)."""

    def __init__(self, position: int, most: int) -> None:
        self.position, self.most = position, most
        self.boundary: pd.Timestamp | None = None
        self.model: RecoveryModel | None = None
        self.waiting: list[Episodes] = []  # held out, not yet tested
        self.counts: pd.DataFrame | None = None

    def split(self, episodes: pd.DataFrame, read: int) -> list[pd.DataFrame]:
        """Return `episodes` (whole dates, the first at position `read`) in two where the held-out ones begin."""
        if self.boundary is None and read <= self.position < read + len(episodes):
            self.boundary = episodes["first_date"].iloc[self.position - read]
            before = episodes["first_date"] < self.boundary
            return [part for part in (episodes[before], episodes[~before]) if not part.empty]
        return [episodes]

    def test(self, part: Episodes, latest: _Latest) -> None:
        """Test `part` if it is held out, before `latest` keeps it."""
        if self.boundary is None or part[0]["first_date"].iloc[0] < self.boundary:
            return
        if self.model is None:
            self.model = latest.fit(self.boundary)
        self.waiting.append(part)
        if sum(len(episodes) for episodes, _ in self.waiting) >= self.most:
            self._count()

    def table(self) -> pd.DataFrame:
        """Return the calibration table, once every episode has been read."""
        self._count()
        return coverage_table(self.counts)

    def _count(self) -> None:
        if self.waiting:
            episodes, follow_ups = _joined(self.waiting)
            self.counts = coverage_counts(tested_bands(self.model, follow_ups, episodes), self.counts)
            self.waiting = []


_NONE = (pd.DataFrame(columns=EPISODE_COLUMNS), pd.DataFrame(columns=FOLLOW_UP_COLUMNS))
