"""Time windows of the evaluation and the events each one scores.

Every user vector, model and count a window uses comes from events before the event it scores
(per-event metrics) or before the window's start (ranking metrics), never from later ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evaluation.replay import Replay
from ranking.long_view.training import split_time_at

__all__ = ["Window", "split_windows"]


@dataclass(frozen=True)
class Window:
    """One evaluation window ``[start_ms, end_ms)`` of the events.

    The ranking request of a user happens at ``start_ms``: the candidates are the user's randomly
    exposed videos in the window, and the relevant ones those the user long-viewed.
    """

    name: str
    start_ms: int
    end_ms: int | None
    """End of the window, exclusive; None for the last window, which runs to the last event."""
    event_rows: NDArray[np.intp]
    """Rows scored one by one: window events of users with an event at an earlier time."""
    candidate_rows: NDArray[np.intp]
    """Rows ranked at the window's start: randomly exposed window events of users with an event
    before the start, grouped by user and in time order within a user."""
    cold_users: int
    """Users with window events but no event before the start, left out of the ranking metrics."""
    request_users: NDArray[np.intp]
    """Users ranked at the start, ascending."""
    request_bounds: NDArray[np.intp]
    """Request ``i`` of ``request_users[i]`` is ``candidate_rows[request_bounds[i]:request_bounds[i + 1]]``."""

    @property
    def candidate_users(self) -> NDArray[np.intp]:
        """User of each of ``candidate_rows``."""
        return np.repeat(self.request_users, np.diff(self.request_bounds))

    def request_rows(self, request: int) -> NDArray[np.intp]:
        """Return the candidate rows of one request, by its position in ``request_users``."""
        return self.candidate_rows[self.request_bounds[request]:self.request_bounds[request + 1]]


def split_windows(replay: Replay, validation_start: float, test_start: float) -> tuple[Window, Window]:
    """Return the validation and test windows, which start at these shares of the events by time.

    Raises:
        ValueError: if the shares are not increasing within (0, 1) or a window has no events.
    """
    if not 0.0 < validation_start < test_start < 1.0:
        raise ValueError(
            f"window starts must satisfy 0 < validation_start < test_start < 1, got {validation_start} "
            f"and {test_start}")
    times = replay.events.time_ms
    validation_ms = split_time_at(times, validation_start)
    test_ms = split_time_at(times, test_start)
    if not validation_ms < test_ms:
        raise ValueError(
            f"the validation window [{validation_ms}, {test_ms}) ms has no events, because too many events share "
            "one time; move evaluation.validation_start or evaluation.test_start apart")
    return (_window(replay, "validation", validation_ms, test_ms), _window(replay, "test", test_ms, None))


def _window(replay: Replay, name: str, start_ms: int, end_ms: int | None) -> Window:
    events = replay.events
    inside = events.time_ms >= start_ms
    if end_ms is not None:
        inside &= events.time_ms < end_ms
    rows = np.flatnonzero(inside)
    has_earlier = replay.previous_rows(rows) >= 0
    event_rows = rows[has_earlier]

    last_before_start = replay.last_rows_before(start_ms)
    with_history = last_before_start[events.users[rows]] >= 0
    candidates = rows[events.randomly_exposed[rows] & with_history]
    candidate_rows = candidates[np.argsort(events.users[candidates], kind="stable")]
    request_users, first_rows = np.unique(events.users[candidate_rows], return_index=True)
    cold_users = int(np.unique(events.users[rows[~with_history]]).size)
    return Window(name=name, start_ms=start_ms, end_ms=end_ms, event_rows=event_rows,
                  candidate_rows=candidate_rows, cold_users=cold_users, request_users=request_users.astype(np.intp),
                  request_bounds=np.append(first_rows, len(candidate_rows)).astype(np.intp))
