"""PNG plots of an evaluation, drawn with matplotlib's Agg backend so that no display is needed."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen before pyplot is imported
import numpy as np  # noqa: E402

from evaluation.results import METRICS, metric_value  # noqa: E402
from evaluation.run import EvaluationOutcome, WindowOutcome  # noqa: E402
from evaluation.sweep import describe_threshold, format_half_life  # noqa: E402

__all__ = ["METRIC_LABELS", "plot_paths", "write_plots"]

METRIC_LABELS = {
    "auc": "AUC (pooled)",
    "user_auc": "AUC within a user",
    "hit_rate": "HitRate@K",
    "ndcg": "NDCG@K",
    "exposed_clusters": "exposed clusters in top K",
    "surprise_share": "surprise share of top K",
}
"""Axis and column labels of the metrics."""

# PNG metadata would otherwise include the matplotlib version, which changes the file on every upgrade.
_SAVE_OPTIONS = {"dpi": 110, "metadata": {"Software": None}}


def plot_paths(folder: Path) -> dict[str, Path]:
    """Return the paths ``write_plots`` writes, by name."""
    return {
        "methods": folder / "methods_test.png",
        "sweep": folder / "sweep_validation.png",
        "sweep_transfer": folder / "sweep_validation_vs_test.png",
    }


def write_plots(outcome: EvaluationOutcome, folder: Path) -> dict[str, Path]:
    """Draw the plots into ``folder`` and return their paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = plot_paths(folder)
    _plot_methods(outcome.test, outcome.settings.evaluation.k, paths["methods"])
    _plot_sweep(outcome, paths["sweep"])
    _plot_sweep_transfer(outcome, paths["sweep_transfer"])
    return paths


def _plot_methods(window: WindowOutcome, k: int, path: Path) -> None:
    names = list(window.methods)
    figure, axes = plt.subplots(2, 3, figsize=(13, 7), sharey=True)
    positions = np.arange(len(names))
    for axis, metric in zip(axes.flat, METRICS):
        estimates = [window.bootstrap.estimate(window.methods[name], metric) for name in names]
        values = np.array([estimate.value for estimate in estimates])
        errors = np.array([[estimate.value - estimate.low for estimate in estimates],
                           [estimate.high - estimate.value for estimate in estimates]])
        axis.errorbar(values, positions, xerr=np.nan_to_num(errors), fmt="o", capsize=3)
        axis.set_title(METRIC_LABELS[metric].replace("K", str(k)), fontsize=10)
        if metric in ("auc", "user_auc"):
            axis.axvline(0.5, color="grey", linewidth=0.8, linestyle=":")
        axis.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(positions, names)
    axes[0, 0].invert_yaxis()
    figure.suptitle(f"Test window, {window.bootstrap.level:.0%} bootstrap intervals by user", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, **_SAVE_OPTIONS)
    plt.close(figure)


def _plot_sweep(outcome: EvaluationOutcome, path: Path) -> None:
    config = outcome.settings.evaluation
    metric = config.select_by
    data = outcome.validation.data
    # No half-life is the limit of an infinitely long one, so it goes last.
    half_lives = sorted(config.sweep_half_life_ms, key=lambda value: math.inf if value is None else value)
    thresholds = list(config.sweep_thresholds)
    columns = min(2, len(thresholds))
    rows = math.ceil(len(thresholds) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 3.6 * rows), sharey=True, squeeze=False)
    for axis, threshold in zip(axes.flat, thresholds):
        for alpha in config.sweep_alpha_per_s:
            by_half_life = {point.half_life_ms: metric_value(data, point.validation, metric) for point in outcome.sweep
                            if point.threshold == threshold and point.alpha_per_s == alpha}
            values = [by_half_life[half_life] for half_life in half_lives]
            axis.plot(range(len(half_lives)), values, marker="o", label=f"alpha {alpha:g}/s")
        axis.set_xticks(range(len(half_lives)), [format_half_life(value) for value in half_lives])
        axis.set_title(describe_threshold(threshold), fontsize=9)
        axis.set_xlabel("recency half-life (none: plain sum)")
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(thresholds):]:
        axis.set_visible(False)
    axes[0, 0].set_ylabel(f"validation {METRIC_LABELS[metric]}")
    axes[0, 0].legend(fontsize=8)
    figure.suptitle("DreamUMM sweep on the validation window (point estimates)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, **_SAVE_OPTIONS)
    plt.close(figure)


def _plot_sweep_transfer(outcome: EvaluationOutcome, path: Path) -> None:
    metric = outcome.settings.evaluation.select_by
    validation = [metric_value(outcome.validation.data, point.validation, metric) for point in outcome.sweep]
    test = [metric_value(outcome.test.data, point.test, metric) for point in outcome.sweep]
    figure, axis = plt.subplots(figsize=(6, 5))
    axis.scatter(validation, test, s=14, alpha=0.6, label="sweep combinations")
    for point, marker, label in ((outcome.plain, "s", "configured, plain sum"), (outcome.tuned, "*", "chosen")):
        axis.scatter(metric_value(outcome.validation.data, point.validation, metric),
                     metric_value(outcome.test.data, point.test, metric), marker=marker, s=120, label=label)
    axis.set_xlabel(f"validation {METRIC_LABELS[metric]}")
    axis.set_ylabel(f"test {METRIC_LABELS[metric]}")
    axis.set_title("Does a better validation value carry over to the test window?", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, **_SAVE_OPTIONS)
    plt.close(figure)
