"""Per-video statistics of a training window: duration, exposures and long views.

The long-view model looks up each candidate here, because ``predict`` receives only ids and
vectors. Durations come from the video table, in which KuaiRand leaves the duration of image
posts empty, so an empty duration is stored as 0 (an image post). A video that is not in the
table at all has an unknown duration (NaN) and no exposures, so its long-view rate is the prior.

NOTE: the model file stores one row per video of the video table and the events (7,583 rows,
about 150 KB, for the KuaiRand sample). A catalogue of millions of videos would need this
table in a store rather than in the model file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from embeddings.video_table import check_columns

__all__ = ["CandidateStatistics", "VideoStatistics", "exposures_before"]


@dataclass(frozen=True)
class CandidateStatistics:
    """Statistics of m candidates, aligned with their ids."""

    duration_ms: NDArray[np.float64]
    """(m,) video length in ms: 0 for image posts, NaN for videos not in the table."""
    exposures: NDArray[np.float64]
    """(m,) exposures in the statistics window."""
    long_views: NDArray[np.float64]
    """(m,) long views among those exposures."""
    known: NDArray[np.bool_]
    """(m,) True where the video is in the table."""


class VideoStatistics:
    """Table of per-video duration, exposure and long-view counts, with the long-view prior.

    ``prior_long_view_rate`` is the long-view rate of the whole window, and ``prior_strength``
    is the number of pseudo-exposures at that rate that smooth each video's own rate.
    """

    def __init__(
        self,
        video_ids: Sequence[str],
        duration_ms: NDArray[np.float64],
        exposures: NDArray[np.float64],
        long_views: NDArray[np.float64],
        prior_long_view_rate: float,
        prior_strength: float,
    ) -> None:
        ids = [str(video_id) for video_id in video_ids]
        count = len(ids)
        self._index = {video_id: position for position, video_id in enumerate(ids)}
        if len(self._index) != count:
            repeated = count - len(self._index)
            raise ValueError(f"video statistics must have one row per video, got {repeated} repeated ids")
        self._video_ids = tuple(ids)
        self._duration_ms = _column("duration_ms", duration_ms, count)
        self._exposures = _column("exposures", exposures, count)
        self._long_views = _column("long_views", long_views, count)
        if (self._exposures < 0).any() or not np.isfinite(self._exposures).all():
            raise ValueError("video statistics exposures must be finite and >= 0")
        if (self._long_views < 0).any() or (self._long_views > self._exposures).any():
            raise ValueError("video statistics long_views must be >= 0 and at most the exposures of the video")
        if not 0.0 <= float(prior_long_view_rate) <= 1.0:
            raise ValueError(f"prior_long_view_rate must be in [0, 1], got {prior_long_view_rate!r}")
        if not 0.0 < float(prior_strength) < math.inf:
            raise ValueError(f"prior_strength must be a finite number > 0 (pseudo-exposures), got {prior_strength!r}")
        self.prior_long_view_rate = float(prior_long_view_rate)
        self.prior_strength = float(prior_strength)

    @classmethod
    def from_window(cls, videos: pd.DataFrame, events: pd.DataFrame, prior_strength: float) -> VideoStatistics:
        """Count exposures and long views of ``events`` per video, for every video of either table.

        ``videos`` needs ``video_id`` and ``video_duration``. ``events`` needs ``video_id`` and
        ``long_view``, and must not be empty.
        """
        check_columns(videos, ("video_id", "video_duration"), "video table")
        check_columns(events, ("video_id", "long_view"), "events")
        if len(events) == 0:
            raise ValueError("cannot compute video statistics from an empty event window")

        durations = pd.to_numeric(videos["video_duration"], errors="coerce").fillna(0.0)
        if (durations < 0.0).any():
            position = int(np.flatnonzero((durations < 0.0).to_numpy())[0])
            raise ValueError(
                f"video table column 'video_duration' must be >= 0 ms or empty, got {durations.iloc[position]} "
                f"for video_id {videos['video_id'].iloc[position]}"
            )
        table = pd.DataFrame({"video_id": videos["video_id"].astype(str), "duration_ms": durations.astype(float)})
        counts = (
            events.assign(video_id=events["video_id"].astype(str))
            .groupby("video_id", sort=True)["long_view"]
            .agg(exposures="size", long_views="sum")
            .reset_index()
        )
        merged = table.merge(counts, on="video_id", how="outer", sort=False)
        merged["duration_ms"] = merged["duration_ms"].astype(float)  # NaN for videos only in the events
        merged[["exposures", "long_views"]] = merged[["exposures", "long_views"]].fillna(0.0)
        return cls(
            video_ids=merged["video_id"].tolist(),
            duration_ms=merged["duration_ms"].to_numpy(dtype=np.float64),
            exposures=merged["exposures"].to_numpy(dtype=np.float64),
            long_views=merged["long_views"].to_numpy(dtype=np.float64),
            prior_long_view_rate=float(events["long_view"].mean()),
            prior_strength=prior_strength,
        )

    def __len__(self) -> int:
        return len(self._video_ids)

    def lookup(self, video_ids: Sequence[str]) -> CandidateStatistics:
        """Return the statistics of each id. An id not in the table is unknown and has no exposures."""
        count = len(video_ids)
        if len(self) == 0:
            return CandidateStatistics(duration_ms=np.full(count, np.nan), exposures=np.zeros(count),
                                       long_views=np.zeros(count), known=np.zeros(count, dtype=np.bool_))
        positions = np.fromiter((self._index.get(video_id, -1) for video_id in video_ids), dtype=np.intp, count=count)
        known = positions >= 0
        safe = np.where(known, positions, 0)
        return CandidateStatistics(
            duration_ms=np.where(known, self._duration_ms[safe], np.nan),
            exposures=np.where(known, self._exposures[safe], 0.0),
            long_views=np.where(known, self._long_views[safe], 0.0),
            known=known,
        )

    def with_counts(self, video_ids: Sequence[str], exposures: NDArray[np.float64],
                    long_views: NDArray[np.float64]) -> CandidateStatistics:
        """Return table durations for ``video_ids`` with the given counts in place of the table's.

        Training uses this to give each example only the exposures before its event.
        """
        statistics = self.lookup(video_ids)
        return CandidateStatistics(
            duration_ms=statistics.duration_ms,
            exposures=np.asarray(exposures, dtype=np.float64),
            long_views=np.asarray(long_views, dtype=np.float64),
            known=statistics.known,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form, with None as the duration of videos not in the video table."""
        return {
            "prior_long_view_rate": self.prior_long_view_rate,
            "prior_strength": self.prior_strength,
            "video_id": list(self._video_ids),
            "duration_ms": [None if math.isnan(value) else value for value in self._duration_ms.tolist()],
            "exposures": [int(value) for value in self._exposures.tolist()],
            "long_views": [int(value) for value in self._long_views.tolist()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoStatistics:
        """Rebuild the table from ``to_dict`` output.

        Raises KeyError, TypeError or ValueError when the data is malformed.
        """
        durations = [math.nan if value is None else float(value) for value in data["duration_ms"]]
        return cls(
            video_ids=data["video_id"],
            duration_ms=np.array(durations, dtype=np.float64),
            exposures=np.array(data["exposures"], dtype=np.float64),
            long_views=np.array(data["long_views"], dtype=np.float64),
            prior_long_view_rate=data["prior_long_view_rate"],
            prior_strength=data["prior_strength"],
        )


def exposures_before(
    video_ids: NDArray[np.int64] | Sequence[Any], times_ms: NDArray[np.int64], labels: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Count, for each event, the exposures and long views of its video at strictly earlier times.

    All three arrays are aligned event by event. Events of the same video at the same time do
    not count each other, so the counts of an example never include its own label or that of a
    simultaneous event.
    """
    videos = np.asarray(video_ids)
    times = np.asarray(times_ms, dtype=np.int64)
    labels_array = np.asarray(labels, dtype=np.float64)
    count = len(videos)
    if times.shape != (count,) or labels_array.shape != (count,):
        raise ValueError(
            f"video_ids, times_ms and labels must have the same length, got {count}, {times.shape} and "
            f"{labels_array.shape}"
        )
    if count == 0:
        return np.zeros(0), np.zeros(0)

    # Sort by video, then time. In sorted order, the events of a video before an event are those
    # from the video's first row up to the first row of the event's (video, time) group.
    order = np.lexsort((times, videos))
    sorted_videos = videos[order]
    sorted_times = times[order]
    new_video = np.concatenate(([True], sorted_videos[1:] != sorted_videos[:-1]))
    new_time = new_video | np.concatenate(([True], sorted_times[1:] != sorted_times[:-1]))
    positions = np.arange(count)
    video_start = np.maximum.accumulate(np.where(new_video, positions, 0))
    time_start = np.maximum.accumulate(np.where(new_time, positions, 0))
    labels_before = np.concatenate(([0.0], np.cumsum(labels_array[order])))

    exposures = np.empty(count, dtype=np.float64)
    long_views = np.empty(count, dtype=np.float64)
    exposures[order] = time_start - video_start
    long_views[order] = labels_before[time_start] - labels_before[video_start]
    return exposures, long_views


def _column(name: str, values: NDArray[np.float64], count: int) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (count,):
        raise ValueError(f"video statistics {name} must have shape ({count},), got {array.shape}")
    return array
