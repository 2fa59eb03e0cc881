"""The report of a long-view training run, as a table and as the model file's training record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ranking.long_view.metrics import BootstrapInterval

__all__ = ["SplitSummary", "TrainingReport"]


@dataclass(frozen=True)
class SplitSummary:
    """Counts and scores of the model on one side of the time split."""

    events: int
    users: int
    positives: int
    auc: float
    user_auc: float | None
    """Event-weighted mean of per-user AUCs: how well the model ranks one user's candidates. None
    when no user has both a long view and another view."""
    log_loss: float

    @property
    def base_rate(self) -> float:
        """Share of events that are long views."""
        return self.positives / self.events

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {"events": self.events, "users": self.users, "positives": self.positives,
                "base_rate": self.base_rate, "auc": self.auc, "user_auc": self.user_auc,
                "log_loss": self.log_loss}


@dataclass(frozen=True)
class TrainingReport:
    """Record of a training run: the data, the fitted model and the held-out evaluation.

    ``train`` and ``test`` describe the model fit on the events before ``split_time_ms``.
    ``shipped`` describes the returned model, which is that same model when ``refit_on_all`` is
    False and otherwise a refit on every event with the same features and l2.
    """

    embedding_model_version: str
    events_used: int
    dropped_without_embedding: int
    first_event_time_ms: int
    last_event_time_ms: int
    split_time_ms: int
    train: SplitSummary
    test: SplitSummary
    test_auc_interval: BootstrapInterval
    baseline_test_aucs: dict[str, float]
    """Test AUC of single raw features used as the score, with no fitting."""
    baseline_test_user_aucs: dict[str, float | None]
    """Per-user test AUC of the same single features."""
    feature_names: tuple[str, ...]
    weights: tuple[float, ...]
    """Weights of the returned model on standardised features."""
    l2: float
    prior_strength: float
    refit_on_all: bool
    shipped: SplitSummary
    """The returned model on the events it was fit on (an in-sample score)."""
    events_file: str | None = None
    events_sha256: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def split_time_iso(self) -> str:
        """The split time in UTC, ISO 8601."""
        return datetime.fromtimestamp(self.split_time_ms / 1000.0, tz=timezone.utc).isoformat(timespec="seconds")

    def to_text(self) -> str:
        """Return a short plain-text table of the run."""
        events_line = (f"  events: {self.events_used} used, {self.dropped_without_embedding} without an embedding "
                       "left out")
        if self.events_file:
            events_line += f" ({self.events_file})"
        lines = [
            f"long-view model f_seq, logistic regression on {len(self.feature_names)} features (l2={self.l2:g})",
            f"  embedding model version: {self.embedding_model_version}",
            events_line,
            f"  time split at {self.split_time_iso} ({self.split_time_ms} ms)",
            "",
        ]

        lines.append(f"  {'part':<22} {'events':>7} {'users':>6} {'long views':>10} {'base rate':>9} {'AUC':>6} "
                     f"{'user AUC':>8} {'log loss':>8}")
        for name, summary in (("train (before split)", self.train), ("test (from split on)", self.test)):
            lines.append(
                f"  {name:<22} {summary.events:>7} {summary.users:>6} {summary.positives:>10} "
                f"{summary.base_rate:>9.3f} {summary.auc:>6.3f} {_format(summary.user_auc):>8} {summary.log_loss:>8.4f}"
            )
        lines.append("  user AUC: AUC within each user's events, averaged with event weights over the users "
                     "with both labels")
        interval = self.test_auc_interval
        lines.append(
            f"  test AUC {interval.level:.0%} interval, bootstrap by user: [{interval.low:.3f}, {interval.high:.3f}] "
            f"({interval.resamples} resamples)"
        )
        lines.append("")

        lines.append("  single-feature baselines on the test part (raw feature as the score):")
        for name, auc in self.baseline_test_aucs.items():
            lines.append(f"    {name:<34} AUC {auc:.3f}, user AUC {_format(self.baseline_test_user_aucs[name])}")
        lines.append("")

        if self.refit_on_all:
            lines.append(
                f"  returned model: refit on all {self.shipped.events} events, in-sample AUC "
                f"{self.shipped.auc:.3f}. The test AUC above is the estimate of its quality."
            )
        else:
            lines.append("  returned model: the one fit before the split and evaluated above")
        lines.append("  weights (standardised features):")
        for name, weight in sorted(zip(self.feature_names, self.weights), key=lambda item: -abs(item[1])):
            lines.append(f"    {name:<34} {weight:+.3f}")
        return "\n".join(lines)

    def to_metadata(self) -> dict[str, Any]:
        """Return the JSON-ready training record stored in the model file."""
        interval = self.test_auc_interval
        return {
            "created_at": self.created_at,
            "events_file": self.events_file,
            "events_sha256": self.events_sha256,
            "events_used": self.events_used,
            "dropped_without_embedding": self.dropped_without_embedding,
            "fit_on": "all events" if self.refit_on_all else "events before split_time_ms",
            "fit_events": self.shipped.events,
            "first_event_time_ms": self.first_event_time_ms,
            "last_event_time_ms": self.last_event_time_ms,
            "split_time_ms": self.split_time_ms,
            "split_time": self.split_time_iso,
            "l2": self.l2,
            "train": self.train.to_dict(),
            "held_out": self.test.to_dict(),
            "held_out_auc_interval": {"low": interval.low, "high": interval.high, "level": interval.level,
                                      "resamples": interval.resamples, "by": "user"},
            "held_out_note": (
                "held_out scores the same features and l2 fit on the events before split_time_ms, "
                "and tested on the events from it on"
            ),
            "baseline_held_out_aucs": dict(self.baseline_test_aucs),
            "baseline_held_out_user_aucs": dict(self.baseline_test_user_aucs),
            "fit_in_sample": self.shipped.to_dict(),
        }


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
