"""Replay of the feature job's per-user state over events in event-time order.

The job keeps, per user, ``S = sum_j a_j 2^(-(T - t_j) / h) x_j``, where ``a_j`` is the preference
weight from ``operators``, ``T`` the user's newest event time and ``h`` the recency half-life (no
decay without one). ``Replay`` computes that sum after every event, in float64, so that each event
can be scored with the state from the user's strictly earlier events only.

The job's sum does not depend on the order in which a user's events arrive, so its final state
equals the replay's. Its intermediate records do depend on it: when the job works through a
backlog, its event-time join can hand a user's events to the sum out of event-time order. The
replay gives the point-in-time states that events arriving in event-time order would produce.
An integration test checks every record of the job against ``Replay.state_of_rows`` for the
set of events the job had summed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from evaluation.events import EvaluationEvents
from operators import ThresholdRule, preference_weights
from operators.interest import normalise_rows

__all__ = ["Replay", "UserStates"]

# Within one stretch of a user's events, sums are scaled by 2^((t - start) / h). Keeping the
# exponent at most this large keeps the scale far below float64's maximum of about 2^1024.
_MAX_HALVINGS_PER_STRETCH = 500.0


class UserStates:
    """Unit user vectors for a set of queries, with the queries that have no vector.

    ``vectors`` has one row per query, all zeros where ``defined`` is False: the user had no
    earlier event, or the weighted sum has no direction.
    """

    def __init__(self, vectors: NDArray[np.float64], defined: NDArray[np.bool_]) -> None:
        self.vectors = vectors
        self.defined = defined


class Replay:
    """Per-user running sums of one ``EvaluationEvents``, and the states they give at any time."""

    def __init__(self, events: EvaluationEvents) -> None:
        self.events = events
        # Events of each user, in the events' time order.
        order = np.argsort(events.users, kind="stable")
        starts = np.searchsorted(events.users[order], np.arange(events.user_count + 1), side="left")
        self._rows_of_user = [order[starts[user]:starts[user + 1]] for user in range(events.user_count)]
        self._previous_row = _previous_rows(events.users[order], events.time_ms[order], order, len(events))

    def rows_of_user(self, user: int) -> NDArray[np.intp]:
        """Return the rows of one user's events, oldest first."""
        return self._rows_of_user[user]

    def preference_weights(self, alpha_per_s: float, rule: ThresholdRule) -> NDArray[np.float64]:
        """Return each event's preference weight, computed as the job's decode step computes it."""
        thresholds = rule.thresholds_ms(self.events.duration_ms)
        return preference_weights(self.events.play_time_ms, thresholds, alpha_per_s)

    def running_sums(self, weights: NDArray[np.float64], half_life_ms: float | None = None) -> NDArray[np.float64]:
        """Return the (n, d) sum of each event's user after that event, referred to the event's time.

        Row ``k`` is ``sum_j a_j 2^(-(t_k - t_j) / h) x_j`` over the user's events up to ``k`` in
        time order, or the plain ``sum_j a_j x_j`` when ``half_life_ms`` is None.
        """
        if half_life_ms is not None and not half_life_ms > 0:
            raise ValueError(f"half_life_ms must be > 0 or None, got {half_life_ms!r}")
        events = self.events
        sums = np.empty_like(events.vectors)
        for rows in self._rows_of_user:
            weighted = weights[rows, None] * events.vectors[rows]
            if half_life_ms is None:
                sums[rows] = np.cumsum(weighted, axis=0)
            else:
                sums[rows] = _decayed_cumsum(weighted, events.time_ms[rows], half_life_ms)
        return sums

    def state_of_rows(self, rows: NDArray[np.intp], weights: NDArray[np.float64],
                      half_life_ms: float | None = None) -> tuple[NDArray[np.float64], float]:
        """Return the sum and total weight of any set of one user's events, at their newest time.

        This is the state the job keeps after summing exactly these events, in any order.
        """
        events = self.events
        chosen = np.asarray(rows, dtype=np.intp)
        if chosen.size == 0:
            return np.zeros(events.dimension, dtype=np.float64), 0.0
        chosen = chosen[np.argsort(events.time_ms[chosen], kind="stable")]
        # A last column of ones makes the same cumulative sum carry the total weight.
        weighted = weights[chosen, None] * np.hstack([events.vectors[chosen], np.ones((len(chosen), 1))])
        if half_life_ms is None:
            last = weighted.sum(axis=0)
        else:
            last = _decayed_cumsum(weighted, events.time_ms[chosen], half_life_ms)[-1]
        return last[:-1], float(last[-1])

    def states_before_events(self, sums: NDArray[np.float64], rows: NDArray[np.intp]) -> UserStates:
        """Return the state of each event's user from the events at strictly earlier times.

        Events of the user at the same millisecond do not count, so no event uses its own label
        or that of a simultaneous one.
        """
        previous = self.previous_rows(rows)
        return self._states_of(sums, previous)

    def states_at(self, sums: NDArray[np.float64], time_ms: int) -> UserStates:
        """Return every user's state from the events before ``time_ms``, one row per user."""
        previous = self.last_rows_before(time_ms)
        return self._states_of(sums, previous)

    def previous_rows(self, rows: NDArray[np.intp]) -> NDArray[np.intp]:
        """Return, for each row, the user's last row at a strictly earlier time, or -1."""
        return self._previous_row[np.asarray(rows, dtype=np.intp)]

    def last_rows_before(self, time_ms: int) -> NDArray[np.intp]:
        """Return, for each user, the row of their last event before ``time_ms``, or -1."""
        last = np.full(self.events.user_count, -1, dtype=np.intp)
        for user, user_rows in enumerate(self._rows_of_user):
            earlier = int(np.searchsorted(self.events.time_ms[user_rows], time_ms, side="left"))
            if earlier > 0:
                last[user] = user_rows[earlier - 1]
        return last

    def _states_of(self, sums: NDArray[np.float64], previous: NDArray[np.intp]) -> UserStates:
        has_previous = previous >= 0
        vectors = np.zeros((len(previous), self.events.dimension), dtype=np.float64)
        defined = np.zeros(len(previous), dtype=bool)
        if has_previous.any():
            units, valid = normalise_rows(sums[previous[has_previous]], dtype=np.float64)
            vectors[has_previous] = units
            defined[has_previous] = valid
        return UserStates(vectors, defined)


def _previous_rows(sorted_users: NDArray[np.intp], sorted_times: NDArray[np.int64], order: NDArray[np.intp],
                   count: int) -> NDArray[np.intp]:
    """Return each row's previous row of the same user at a strictly earlier time, or -1.

    The inputs are sorted by user and then time. In that order, the previous row of an event is
    the one just before the first event of its (user, time) group, if it belongs to the same user.
    """
    positions = np.arange(count)
    new_user = np.ones(count, dtype=bool)
    new_user[1:] = sorted_users[1:] != sorted_users[:-1]
    new_group = new_user.copy()
    new_group[1:] |= sorted_times[1:] != sorted_times[:-1]
    user_start = np.maximum.accumulate(np.where(new_user, positions, 0))
    group_start = np.maximum.accumulate(np.where(new_group, positions, 0))
    previous_position = group_start - 1
    previous = np.where(previous_position >= user_start, order[np.maximum(previous_position, 0)], -1)
    result = np.empty(count, dtype=np.intp)
    result[order] = previous
    return result


def _decayed_cumsum(weighted: NDArray[np.float64], times_ms: NDArray[np.int64],
                    half_life_ms: float) -> NDArray[np.float64]:
    """Return the running decayed sums of one user's weighted vectors, each at its own event time.

    Within a stretch of events, the sum referred to the stretch's first time is an ordinary
    cumulative sum of ``2^((t_j - start) / h) a_j x_j``. Dividing row k by ``2^((t_k - start) / h)``
    refers it to ``t_k``. Stretches end before the exponent passes ``_MAX_HALVINGS_PER_STRETCH``.
    """
    sums = np.empty_like(weighted)
    carried = np.zeros(weighted.shape[1], dtype=np.float64)
    carried_time = int(times_ms[0])
    start = 0
    while start < len(times_ms):
        stretch_start_time = int(times_ms[start])
        end = int(np.searchsorted(times_ms, stretch_start_time + _MAX_HALVINGS_PER_STRETCH * half_life_ms,
                                  side="right"))
        end = max(end, start + 1)
        with np.errstate(under="ignore"):
            growth = np.exp2((times_ms[start:end] - stretch_start_time) / half_life_ms)
            carried_at_start = carried * np.exp2(-(stretch_start_time - carried_time) / half_life_ms)
            stretch = np.cumsum(growth[:, None] * weighted[start:end], axis=0) + carried_at_start
            sums[start:end] = stretch / growth[:, None]
        carried = sums[end - 1]
        carried_time = int(times_ms[end - 1])
        start = end
    return sums
