"""Verdicts: the methods that the test window can and cannot tell apart on one metric.

Naming the method with the highest point estimate "the best" overstates what a small sample
shows, because the maximum of several noisy estimates is biased upwards. A verdict therefore
names the leader together with every method whose paired difference to it is within the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evaluation.bootstrap import Estimate
from evaluation.results import MethodResult, metric_value
from evaluation.run import EvaluationOutcome, MethodNames, WindowOutcome

__all__ = ["MIN_USERS", "Verdict", "users_defining", "verdict"]

MIN_USERS = 30
"""Fewer users than this defining a metric make its bootstrap intervals unreliable, so no verdict is drawn."""


@dataclass(frozen=True)
class Verdict:
    """The test window's leader on one metric and the methods within the noise of it."""

    metric: str
    users: int
    """Users of the test window with a defined value of the metric for the plain sum."""
    leader: str
    """Method with the highest point estimate."""
    leader_value: Estimate
    within_noise: tuple[str, ...]
    """Other methods whose paired difference to the leader includes 0."""
    below: tuple[str, ...]
    """Methods below the leader beyond the noise."""
    undefined: tuple[str, ...]
    """Methods without a value for this metric, such as Candidate-DreamUMM for the per-event AUCs."""
    over_plain: Estimate | None
    """Leader minus DreamUMM with the plain sum; None when the leader is that method."""

    @property
    def decided(self) -> bool:
        """Whether enough users define the metric for the comparison to mean anything."""
        return self.users >= MIN_USERS and not math.isnan(self.leader_value.value)


def users_defining(window: WindowOutcome, result: MethodResult, metric: str) -> int:
    """Return how many of the window's users have a defined value of ``metric`` for one method."""
    if metric == "auc":
        return sum(1 for rows in window.data.events_of_user if len(rows))
    return int((~np.isnan(result.per_user[metric])).sum())


def verdict(outcome: EvaluationOutcome, metric: str) -> Verdict:
    """Compare every method of the test window with the one of highest point estimate on ``metric``."""
    window = outcome.test
    values = {name: metric_value(window.data, result, metric) for name, result in window.methods.items()}
    defined = [name for name, value in values.items() if not math.isnan(value)]
    undefined = tuple(name for name in values if name not in defined)
    plain = window.methods[MethodNames.PLAIN]
    users = users_defining(window, plain, metric)
    if not defined:
        nothing = Estimate(math.nan, math.nan, math.nan)
        return Verdict(metric, users, MethodNames.PLAIN, nothing, (), (), undefined, None)

    leader_name = max(defined, key=lambda name: values[name])
    leader = window.methods[leader_name]
    within, below = [], []
    for name in defined:
        if name == leader_name:
            continue
        difference = window.bootstrap.difference(leader, window.methods[name], metric)
        (below if difference.above_zero else within).append(name)
    return Verdict(
        metric=metric,
        users=users,
        leader=leader_name,
        leader_value=window.bootstrap.estimate(leader, metric),
        within_noise=tuple(within),
        below=tuple(below),
        undefined=undefined,
        over_plain=None if leader is plain else window.bootstrap.difference(leader, plain, metric),
    )
