"""SYNTHETIC watch events for load tests and benchmarks, calibrated to the KuaiRand sample.

Every event this module generates is synthetic. No row is a real user's event. A benchmark
that uses these events should state that its input is synthetic and fitted to the KuaiRand-1K
random-exposure log of users 0-99 (``embeddings.sample_data.SAMPLE_EVENTS_PATH``, 4,405 events).

``fit_profile`` fits these distributions of a real event log, most of them as empirical
quantile tables that ``generate_events`` samples by inverse CDF with linear interpolation:

- events per user (activity skew),
- a Zipf exponent of the video rank-frequency curve (popularity),
- the share of zero-duration videos (image posts) and the positive durations of distinct videos,
- the ratio ``play_time_ms / duration_ms`` within duration bins, and the play time of
  zero-duration events,
- the gap between consecutive events of one user, and the time window of the log.

The generator keeps what the pipeline depends on: a video always has the same duration, play
time can exceed duration, and the stream is ordered by arrival with event times out of order by
at most ``disorder_ms``. It does not model correlations between users and videos (taste),
daily cycles, or repeat views driven by anything but popularity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_START_TIME_MS",
    "EVENT_COLUMNS",
    "EventProfile",
    "describe",
    "fit_profile",
    "generate_events",
]

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("user_id", "video_id", "play_time_ms", "duration_ms", "time_ms")
"""Columns of a generated event table, each int64, in this order."""

DEFAULT_START_TIME_MS = 1_650_585_600_000
"""2022-04-22T00:00:00Z, the first day of the KuaiRand sample, in epoch ms."""

QUANTILE_LEVELS = 201
"""Points of every quantile table, at probabilities 0, 0.005, ..., 1 (min and max included)."""

DURATION_BINS = 10
"""Bins of positive duration (event deciles) that each get their own watch-ratio table."""

_FIT_COLUMNS = ("user_id", "video_id", "time_ms", "play_time_ms", "duration_ms")

QuantileTable = tuple[float, ...]


@dataclass(frozen=True)
class EventProfile:
    """Distributions of a real event log that ``generate_events`` reproduces.

    Every ``*_quantiles`` field is a quantile table of ``QUANTILE_LEVELS`` values at evenly
    spaced probabilities from 0 to 1.
    """

    source_events: int
    """Events in the fitted log."""
    source_users: int
    """Distinct users in the fitted log."""
    source_videos: int
    """Distinct videos in the fitted log."""
    events_per_user_quantiles: QuantileTable
    """Events per user. The generator draws a weight per user from it and splits the requested
    event count in proportion, so only the shape matters, not the scale."""
    popularity_exponent: float
    """Zipf exponent ``s`` of the rank-frequency curve, ``count ~ rank ** -s``, from a
    least-squares line through (log rank, log count) of every distinct video.

    NOTE: the KuaiRand sample exposes videos at random and has about 1.3 events per video, so
    its fitted exponent (0.32) reflects sampling noise more than real popularity skew. Replace
    it with ``dataclasses.replace`` to model a feed with stronger skew."""
    zero_duration_share: float
    """Share of distinct videos with ``duration_ms == 0`` (image posts)."""
    duration_quantiles: QuantileTable
    """Positive ``duration_ms`` of distinct videos."""
    duration_bin_edges: tuple[float, ...]
    """Inner edges (``DURATION_BINS - 1`` values) of the positive-duration bins, at the
    deciles of positive event durations."""
    watch_ratio_quantiles: tuple[QuantileTable, ...]
    """Per duration bin, the ratio ``play_time_ms / duration_ms`` of events in that bin.
    Ratios above 1 occur in the sample and are kept."""
    zero_duration_play_quantiles: QuantileTable
    """``play_time_ms`` of events whose ``duration_ms`` is 0."""
    gap_quantiles: QuantileTable
    """Gap in ms between consecutive events of one user, in event-time order."""
    window_ms: int
    """Time from the first to the last event of the log. Each generated user starts at a
    uniform offset within it."""


def fit_profile(events: pd.DataFrame) -> EventProfile:
    """Fit an ``EventProfile`` to an event log such as ``embeddings.sample_data.load_events()``.

    Raises:
        ValueError: if a column of ``user_id, video_id, time_ms, play_time_ms, duration_ms`` is
            missing, or the log has no positive-duration event, no zero-duration event, no user
            with two or more events, or fewer than two distinct videos.
    """
    missing = [column for column in _FIT_COLUMNS if column not in events.columns]
    if missing:
        raise ValueError(
            f"cannot fit a profile: missing columns {missing}. "
            "Pass an event log with the columns of embeddings.sample_data.EVENT_COLUMNS."
        )

    ordered = events.sort_values(["user_id", "time_ms"], kind="stable")
    durations = ordered["duration_ms"].to_numpy(dtype=np.float64)
    play_times = ordered["play_time_ms"].to_numpy(dtype=np.float64)
    positive = durations > 0
    if not positive.any() or positive.all():
        raise ValueError(
            f"cannot fit a profile: the log needs events with both zero and positive duration_ms, "
            f"got {int(positive.sum())} positive of {len(ordered)}. Pass a larger log."
        )

    activity = ordered.groupby("user_id", sort=False).size().to_numpy()
    gaps = _within_user_gaps(ordered)
    if gaps.size == 0:
        raise ValueError(
            f"cannot fit a profile: none of the {activity.size} users has two or more events, "
            "so there are no gaps between events. Pass a larger log."
        )

    video_counts = ordered["video_id"].value_counts().to_numpy()
    if video_counts.size < 2:
        raise ValueError(
            f"cannot fit a profile: the popularity exponent needs at least 2 distinct videos, "
            f"got {video_counts.size}"
        )

    video_durations = ordered.drop_duplicates("video_id")["duration_ms"].to_numpy(dtype=np.float64)
    edges, ratio_tables = _fit_watch_ratios(durations[positive], play_times[positive])
    times = ordered["time_ms"].to_numpy()

    profile = EventProfile(
        source_events=len(ordered),
        source_users=int(activity.size),
        source_videos=int(video_counts.size),
        events_per_user_quantiles=_quantile_table(activity),
        popularity_exponent=_fit_zipf_exponent(video_counts),
        zero_duration_share=float(np.mean(video_durations == 0)),
        duration_quantiles=_quantile_table(video_durations[video_durations > 0]),
        duration_bin_edges=edges,
        watch_ratio_quantiles=ratio_tables,
        zero_duration_play_quantiles=_quantile_table(play_times[~positive]),
        gap_quantiles=_quantile_table(gaps),
        window_ms=int(times.max() - times.min()),
    )
    logger.debug("fitted %s", profile)
    return profile


def generate_events(
    profile: EventProfile,
    events: int,
    users: int,
    videos: int,
    seed: int,
    disorder_ms: int = 2000,
    start_time_ms: int = DEFAULT_START_TIME_MS,
) -> pd.DataFrame:
    """Generate ``events`` SYNTHETIC watch events drawn from ``profile``.

    User ids are ``0 .. users - 1`` and video ids ``0 .. videos - 1``. Rows are in arrival
    order: each event arrives a uniform 0 to ``disorder_ms`` ms after its event time
    ``time_ms``, so no row's ``time_ms`` is more than ``disorder_ms`` below an earlier row's.
    The result depends only on the arguments, so one seed always gives the same table.

    Raises:
        ValueError: if ``events``, ``users`` or ``videos`` is below 1, or ``disorder_ms`` is
            negative.
    """
    for name, value in (("events", events), ("users", users), ("videos", videos)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if disorder_ms < 0:
        raise ValueError(f"disorder_ms must be >= 0 (0 gives an ordered stream), got {disorder_ms}")

    rng = np.random.default_rng(seed)

    user_ids, event_times = _user_timelines(profile, events, users, rng)

    video_durations = _video_durations(profile, videos, rng)
    video_ids = _popular_videos(profile.popularity_exponent, events, videos, rng)
    durations = video_durations[video_ids]
    play_times = _play_times(profile, durations, rng)

    arrival = event_times + rng.integers(0, disorder_ms + 1, size=events)
    order = np.argsort(arrival, kind="stable")

    table = pd.DataFrame({
        "user_id": user_ids[order],
        "video_id": video_ids[order],
        "play_time_ms": play_times[order],
        "duration_ms": durations[order],
        "time_ms": event_times[order] + start_time_ms,
    })
    logger.debug("generated %d synthetic events for %d users and %d videos (seed %d)",
                 events, users, videos, seed)
    return table


def describe(events: pd.DataFrame) -> dict[str, float]:
    """Compute the statistics that compare a real and a synthetic event table.

    All shares are of events. The keys:

    - ``zero_duration_share``, ``play_exceeds_duration_share``,
    - ``play_time_median_ms``, ``play_time_p90_ms``, and ``duration_median_ms`` of the events
      with positive duration,
    - ``video_top1pct_share``: the share of the most-watched 1% of videos (at least one video),
    - ``video_gini``: the Gini coefficient of events per video, over videos that occur,
    - ``user_top10pct_share``: the share of the most active 10% of users (at least one user),
    - ``out_of_order_share``: rows whose ``time_ms`` is below the max of all earlier rows,
    - ``max_out_of_order_ms``: the max amount by which a row is below that max.

    The last two read rows in their given order, so sort a KuaiRand log by ``time_ms`` first
    because it is sorted by user.
    """
    durations = events["duration_ms"].to_numpy()
    play_times = events["play_time_ms"].to_numpy()
    video_counts = np.sort(events["video_id"].value_counts().to_numpy())[::-1]
    user_counts = np.sort(events["user_id"].value_counts().to_numpy())[::-1]
    times = events["time_ms"].to_numpy()
    lateness = np.maximum.accumulate(times) - times

    return {
        "zero_duration_share": float(np.mean(durations == 0)),
        "play_time_median_ms": float(np.median(play_times)),
        "play_time_p90_ms": float(np.quantile(play_times, 0.9)),
        "duration_median_ms": float(np.median(durations[durations > 0])),
        "play_exceeds_duration_share": float(np.mean(play_times > durations)),
        "video_top1pct_share": _top_share(video_counts, 0.01),
        "video_gini": _gini(video_counts),
        "user_top10pct_share": _top_share(user_counts, 0.10),
        "out_of_order_share": float(np.mean(lateness > 0)),
        "max_out_of_order_ms": float(lateness.max()),
    }


# Fitting helpers.


def _quantile_table(values: NDArray[np.generic]) -> QuantileTable:
    levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
    return tuple(float(value) for value in np.quantile(np.asarray(values, dtype=np.float64), levels))


def _within_user_gaps(ordered: pd.DataFrame) -> NDArray[np.int64]:
    """Return time differences of consecutive events of the same user (rows sorted by user, time)."""
    users = ordered["user_id"].to_numpy()
    times = ordered["time_ms"].to_numpy(dtype=np.int64)
    same_user = users[1:] == users[:-1]
    return np.diff(times)[same_user]


def _fit_zipf_exponent(video_counts: NDArray[np.int64]) -> float:
    counts = np.sort(video_counts)[::-1].astype(np.float64)
    ranks = np.arange(1, counts.size + 1, dtype=np.float64)
    slope, _intercept = np.polyfit(np.log(ranks), np.log(counts), 1)
    # Sorted counts never rise with rank, so only rounding can make the slope positive.
    return max(0.0, float(-slope))


def _fit_watch_ratios(
    durations: NDArray[np.float64], play_times: NDArray[np.float64]
) -> tuple[tuple[float, ...], tuple[QuantileTable, ...]]:
    """Fit one watch-ratio table per duration decile of the positive-duration events.

    One table for all durations would be wrong: in the KuaiRand random-exposure log the play
    time hardly depends on duration (median about 2.1 s in every duration quartile), so the
    ratio falls as duration grows.
    """
    inner = np.quantile(durations, np.linspace(0.0, 1.0, DURATION_BINS + 1)[1:-1])
    bins = np.searchsorted(inner, durations, side="right")
    ratios = play_times / durations
    tables = []
    for index in range(DURATION_BINS):
        in_bin = ratios[bins == index]
        # NOTE: a bin is empty only when many events share one duration. It then reuses the
        # ratios of all positive-duration events.
        tables.append(_quantile_table(in_bin if in_bin.size else ratios))
    return tuple(float(edge) for edge in inner), tuple(tables)


# Sampling helpers.


def _inverse_cdf(table: QuantileTable | NDArray[np.float64], uniforms: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map uniforms in [0, 1) through a quantile table with linear interpolation."""
    values = np.asarray(table, dtype=np.float64)
    return np.interp(uniforms, np.linspace(0.0, 1.0, values.size), values)


def _allocate(weights: NDArray[np.float64], total: int) -> NDArray[np.int64]:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder)."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    shortfall = total - int(counts.sum())
    if shortfall:
        largest_remainders = np.argsort(counts - exact, kind="stable")[:shortfall]
        counts[largest_remainders] += 1
    return counts


def _user_timelines(
    profile: EventProfile, events: int, users: int, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return the user id and the event time (ms from the start) of every event, grouped by user.

    Each user's first event falls at a uniform offset within the profile's window, and the next
    ones follow at gaps drawn from the within-user gap table. Users with many events run past
    the window, so the event rate ramps up at the start and thins out at the end.
    """
    activity = _inverse_cdf(profile.events_per_user_quantiles, rng.random(users))
    counts = _allocate(activity, events)
    user_ids = np.repeat(np.arange(users, dtype=np.int64), counts)

    steps = np.rint(_inverse_cdf(profile.gap_quantiles, rng.random(events))).astype(np.int64)
    active = counts > 0
    first_rows = np.concatenate(([0], np.cumsum(counts)[:-1]))[active]
    steps[first_rows] = rng.integers(0, profile.window_ms + 1, size=first_rows.size)

    # A cumulative sum over all rows, minus the sum before each user's first row, restarts the
    # running time at every user.
    running = np.cumsum(steps)
    before_first = running[first_rows] - steps[first_rows]
    event_times = running - np.repeat(before_first, counts[active])
    return user_ids, event_times


def _video_durations(profile: EventProfile, videos: int, rng: np.random.Generator) -> NDArray[np.int64]:
    image_post = rng.random(videos) < profile.zero_duration_share
    durations = np.rint(_inverse_cdf(profile.duration_quantiles, rng.random(videos))).astype(np.int64)
    durations[image_post] = 0
    return durations


def _popular_videos(exponent: float, events: int, videos: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Draw the video of every event from a Zipf law over ranks, with ranks shuffled onto ids."""
    rank_weights = np.arange(1, videos + 1, dtype=np.float64) ** -exponent
    cumulative = np.cumsum(rank_weights)
    ranks = np.searchsorted(cumulative, rng.random(events) * cumulative[-1], side="right")
    # Floating-point rounding can put a draw at the very end; clip it to the last rank.
    ranks = np.minimum(ranks, videos - 1)
    video_of_rank = rng.permutation(videos).astype(np.int64)
    return video_of_rank[ranks]


def _play_times(profile: EventProfile, durations: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.int64]:
    uniforms = rng.random(durations.size)
    play_times = _inverse_cdf(profile.zero_duration_play_quantiles, uniforms)

    positive = durations > 0
    bins = np.searchsorted(np.asarray(profile.duration_bin_edges), durations[positive], side="right")
    ratio_tables = np.asarray(profile.watch_ratio_quantiles, dtype=np.float64)
    position = uniforms[positive] * (QUANTILE_LEVELS - 1)
    lower = np.minimum(position.astype(np.int64), QUANTILE_LEVELS - 2)
    fraction = position - lower
    ratios = ratio_tables[bins, lower] * (1.0 - fraction) + ratio_tables[bins, lower + 1] * fraction
    play_times[positive] = ratios * durations[positive]

    return np.rint(play_times).astype(np.int64)


def _top_share(sorted_counts: NDArray[np.int64], fraction: float) -> float:
    top = max(1, int(round(sorted_counts.size * fraction)))
    return float(sorted_counts[:top].sum() / sorted_counts.sum())


def _gini(counts: NDArray[np.int64]) -> float:
    """Gini coefficient of the counts of the ids that occur (ids with no event are not seen)."""
    ascending = np.sort(counts).astype(np.float64)
    n = ascending.size
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float((2.0 * np.sum(ranks * ascending) / (n * ascending.sum())) - (n + 1) / n)
