"""The Markdown report of an evaluation, and the short table the command prints."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dreamumm.config import REPO_ROOT
from evaluation.bootstrap import Estimate
from evaluation.plots import METRIC_LABELS
from evaluation.results import METRICS, metric_value
from evaluation.run import EvaluationOutcome, MethodNames, WindowOutcome
from evaluation.sweep import SweepPoint, describe_threshold, format_half_life

__all__ = ["Verdict", "render_report", "render_summary", "verdict"]

_SWEEP_ROWS = 10


@dataclass(frozen=True)
class Verdict:
    """The test window's best method by the selection metric, and how sure that is."""

    metric: str
    winner: str
    winner_value: Estimate
    runner_up: str
    margin: Estimate
    """Winner minus runner-up, with the paired interval."""
    over_plain: Estimate | None
    """Winner minus DreamUMM with the plain sum; None when the winner is that method."""


def verdict(outcome: EvaluationOutcome) -> Verdict:
    """Rank the test window's methods by the selection metric and compare the best two."""
    metric = outcome.settings.evaluation.select_by
    window = outcome.test
    ranked = sorted(window.methods.values(), key=lambda result: _sort_key(metric_value(window.data, result, metric)))
    winner, runner_up = ranked[0], ranked[1]
    plain = window.methods[MethodNames.PLAIN]
    return Verdict(
        metric=metric,
        winner=winner.name,
        winner_value=window.bootstrap.estimate(winner, metric),
        runner_up=runner_up.name,
        margin=window.bootstrap.difference(winner, runner_up, metric),
        over_plain=None if winner is plain else window.bootstrap.difference(winner, plain, metric),
    )


def render_summary(outcome: EvaluationOutcome) -> str:
    """Return the short plain-text table of the test window that the command prints."""
    window = outcome.test
    k = outcome.settings.evaluation.k
    shown = ("user_auc", "auc", "ndcg", "hit_rate")
    headers = ["method"] + [METRIC_LABELS[metric].replace("K", str(k)) for metric in shown]
    rows = [[name] + [_format_estimate(window.bootstrap.estimate(result, metric), 3) for metric in shown]
            for name, result in window.methods.items()]
    widths = [max(len(row[column]) for row in [headers] + rows) for column in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers] + rows]
    result = verdict(outcome)
    lines.append("")
    lines.append(_verdict_sentence(result, outcome, markdown=False))
    return "\n".join(lines)


def render_report(outcome: EvaluationOutcome, plots: dict[str, Path], report_path: Path) -> str:
    """Return the Markdown report; plot links are relative to ``report_path``'s folder."""
    config = outcome.settings.evaluation
    k = config.k
    sections = [
        "# Recommendation quality on KuaiRand",
        "",
        "This page is written by `dreamumm evaluate` (`make evaluate`); edit the code, not the page. "
        f"It replays real KuaiRand events in event-time order and asks how well each method predicts "
        f"which videos a user long-views. Every figure comes with its {config.confidence_level:.0%} "
        f"bootstrap interval over users ({config.bootstrap_resamples} resamples), written as "
        "`value (low-high)`.",
        "",
        "## Verdict",
        "",
        _verdict_sentence(verdict(outcome), outcome),
        "",
        *_noise_sentences(outcome),
        "",
        "## Data and protocol",
        "",
        *_protocol_lines(outcome),
        "",
        "## Methods",
        "",
        *_method_lines(outcome),
        "",
        f"## Test window (K = {k})",
        "",
        _method_table(outcome.test, k),
        "",
        f"Difference to {MethodNames.PLAIN}, with the paired interval; a bold value lies beyond the noise "
        "(its interval excludes 0):",
        "",
        _difference_table(outcome.test, k),
        "",
        f"![Methods on the test window]({_relative(plots['methods'], report_path)})",
        "",
        _coverage_line(outcome.test),
        "",
        f"## Validation window (K = {k})",
        "",
        "The sweep chose its combination with this window, so the tuned row is optimistic here.",
        "",
        _method_table(outcome.validation, k),
        "",
        _coverage_line(outcome.validation),
        "",
        "## Sweep of alpha, threshold rule and half-life",
        "",
        *_sweep_lines(outcome),
        "",
        f"![Sweep on the validation window]({_relative(plots['sweep'], report_path)})",
        "",
        f"![Validation against test value of every combination]({_relative(plots['sweep_transfer'], report_path)})",
        "",
        "## Limits of this evaluation",
        "",
        *_limit_lines(outcome),
        "",
    ]
    return "\n".join(sections)


def _sort_key(value: float) -> float:
    return math.inf if math.isnan(value) else -value


def _format_estimate(estimate: Estimate, digits: int) -> str:
    if math.isnan(estimate.value):
        return "n/a"
    if math.isnan(estimate.low):
        return f"{estimate.value:.{digits}f}"
    return f"{estimate.value:.{digits}f} ({estimate.low:.{digits}f}-{estimate.high:.{digits}f})"


def _format_difference(estimate: Estimate, digits: int) -> str:
    if math.isnan(estimate.value):
        return "n/a"
    text = f"{estimate.value:+.{digits}f} ({estimate.low:+.{digits}f} to {estimate.high:+.{digits}f})"
    return f"**{text}**" if estimate.excludes_zero else text


def _digits(metric: str) -> int:
    return 2 if metric == "exposed_clusters" else 3


def _verdict_sentence(result: Verdict, outcome: EvaluationOutcome, markdown: bool = True) -> str:
    label = METRIC_LABELS[result.metric].replace("K", str(outcome.settings.evaluation.k))
    noise = "beyond" if result.margin.excludes_zero else "within"
    winner = f"**{result.winner}**" if markdown else result.winner
    sentence = (f"On the test window, by {label} (the selection metric), the best method is {winner} "
                f"with {_format_estimate(result.winner_value, 3)}. It leads {result.runner_up} by "
                f"{_format_difference(result.margin, 3).strip('*')}, which is {noise} the noise.")
    if result.over_plain is not None:
        plain_noise = "beyond" if result.over_plain.excludes_zero else "within"
        sentence += (f" Against {MethodNames.PLAIN} the difference is "
                     f"{_format_difference(result.over_plain, 3).strip('*')}, {plain_noise} the noise.")
    return sentence


def _noise_sentences(outcome: EvaluationOutcome) -> list[str]:
    window = outcome.test
    plain = window.methods[MethodNames.PLAIN]
    random = window.methods[MethodNames.RANDOM]
    lines = []
    for name, result in window.methods.items():
        if name == MethodNames.PLAIN:
            continue
        beyond = [METRIC_LABELS[metric].replace("K", str(outcome.settings.evaluation.k))
                  + (" higher" if estimate.value > 0 else " lower")
                  for metric in METRICS
                  for estimate in [window.bootstrap.difference(result, plain, metric)] if estimate.excludes_zero]
        if beyond:
            lines.append(f"- {name} differs from {MethodNames.PLAIN} beyond the noise in: {', '.join(beyond)}.")
        else:
            lines.append(f"- {name} is within the noise of {MethodNames.PLAIN} on every metric.")
    above_random = [metric for metric in ("auc", "user_auc", "ndcg")
                    if window.bootstrap.difference(plain, random, metric).excludes_zero]
    ndcg_label = METRIC_LABELS["ndcg"].replace("K", str(outcome.settings.evaluation.k))
    beaten = ", ".join(METRIC_LABELS[metric].replace("K", str(outcome.settings.evaluation.k))
                       for metric in above_random) or "none of them"
    lines.append(f"- Of AUC (pooled), AUC within a user and {ndcg_label}, {MethodNames.PLAIN} beats random beyond "
                 f"the noise on: {beaten}.")
    return ["Each method against the plain sum on the test window, paired by user:", "", *lines]


def _protocol_lines(outcome: EvaluationOutcome) -> list[str]:
    accounting = outcome.accounting
    config = outcome.settings.evaluation
    clustering = outcome.clustering
    return [
        f"- Events: `{_display_path(outcome.events_path)}` (sha256 `{outcome.events_sha256[:16]}...`), "
        f"{accounting.read:,} rows from {_utc(outcome.first_event_ms)} to {_utc(outcome.last_event_ms)}, "
        f"{outcome.user_count} users. Used {accounting.used:,}; left out, as the feature job does: "
        f"{accounting.duplicates} duplicates, {accounting.implausible_watch_time} with an implausible watch time, "
        f"{accounting.without_embedding} whose video has no embedding.",
        f"- Video embeddings: content embeddings `{outcome.embedding_model_version}` of "
        f"`{_display_path(outcome.videos_path)}`, the ones the demo publishes. Diversity counts "
        f"{config.clusters} k-means clusters of all {len(clustering.labels):,} videos "
        f"({'converged' if clustering.converged else 'not converged'} after {clustering.iterations} iterations).",
        f"- Windows, by event time: history only before {_utc(outcome.validation.window.start_ms)} "
        f"({config.validation_start:.0%} of the events); validation until {_utc(outcome.test.window.start_ms)} "
        f"({config.test_start:.0%}); test after that.",
        "- Per-event metrics (AUC pooled over all scored events, and the mean AUC within a user weighted by the "
        "user's events) score every window event of a user with an earlier event, using only the user's events "
        "at strictly earlier times, as the feature job's state was just before it.",
        f"- Ranking metrics: at the window's start each user with an earlier event gets one request. Its "
        f"candidates are the user's randomly exposed videos in the window (KuaiRand's `is_rand`, so the log's "
        f"exposure was not chosen by a recommender), and the relevant ones are those long-viewed. "
        f"HitRate@{config.k} is the mean over users of relevant videos in the top {config.k} / relevant videos; "
        f"NDCG@{config.k} uses binary gains. Both skip users without a long-viewed candidate. Equal scores are "
        "ordered by a fixed random key.",
        f"- Diversity: exposed clusters counts distinct clusters in a user's top {config.k}. Surprise share is "
        f"the share of the top {config.k} whose cluster the user never watched before the window and that the "
        "user long-viewed.",
        f"- Intervals: users are resampled with replacement (seed {config.seed}); every method is paired on the "
        "same resamples.",
    ]


def _method_lines(outcome: EvaluationOutcome) -> list[str]:
    preference = outcome.settings.preference
    configured = f"alpha {preference.alpha_per_s:g}/s, {describe_threshold(preference.threshold)}"
    decay_source = ("preference.recency_half_life_ms" if preference.recency_half_life_ms is not None
                    else "the best half-life of the sweep on the validation window")
    return [
        f"- **{MethodNames.PLAIN}**: `mu = sum_j a_j x_j / ||...||` with `a_j = sigmoid(alpha (w_j - t_j))` and the "
        f"configured {configured}, scored by `<x_i, mu>`.",
        f"- **{MethodNames.DECAY}**: the same with each weight discounted by `2^(-(T - t_j) / h)`, "
        f"h = {format_half_life(outcome.decay.half_life_ms)} ({decay_source}).",
        f"- **{MethodNames.TUNED}**: the sweep's choice on the validation window: {outcome.tuned.label}.",
        f"- **{MethodNames.CANDIDATE}**: `mu` is the f_seq-weighted sum of the request's own candidates. f_seq is "
        "the project's logistic long-view model, trained anew for each window on the events before its start. "
        "Per-event scores treat the user's scored window events as one request at the window's start.",
        f"- **{MethodNames.LONG_VIEW}**: f_seq's probability itself, with the history before each event "
        "(per-event) or before the window (ranking).",
        f"- **{MethodNames.POPULARITY}**: the video's long-view rate over all users' earlier events, smoothed "
        "towards the rate before the window with 10 pseudo-exposures.",
        f"- **{MethodNames.MEAN}**: `<x_i, mu>` with every watched video weighted 1.",
        f"- **{MethodNames.LAST}**: the cosine between the candidate and the user's latest watched video.",
        f"- **{MethodNames.RANDOM}**: uniform random scores.",
    ]


def _method_table(window: WindowOutcome, k: int) -> str:
    headers = ["method"] + [METRIC_LABELS[metric].replace("K", str(k)) for metric in METRICS]
    lines = [_row(headers), _row(["---"] + ["---:"] * len(METRICS))]
    for name, result in window.methods.items():
        cells = [_format_estimate(window.bootstrap.estimate(result, metric), _digits(metric)) for metric in METRICS]
        lines.append(_row([name] + cells))
    return "\n".join(lines)


def _difference_table(window: WindowOutcome, k: int) -> str:
    plain = window.methods[MethodNames.PLAIN]
    headers = ["method"] + [METRIC_LABELS[metric].replace("K", str(k)) for metric in METRICS]
    lines = [_row(headers), _row(["---"] + ["---:"] * len(METRICS))]
    for name, result in window.methods.items():
        if name == MethodNames.PLAIN:
            continue
        cells = [_format_difference(window.bootstrap.difference(result, plain, metric), _digits(metric))
                 for metric in METRICS]
        lines.append(_row([name] + cells))
    return "\n".join(lines)


def _coverage_line(window: WindowOutcome) -> str:
    data = window.data
    relevant_users = sum(1 for request in range(len(data.request_user_positions))
                         if data.candidate_relevance[window.window.request_bounds[request]:
                                                     window.window.request_bounds[request + 1]].any())
    candidates = len(window.window.candidate_rows)
    requests = len(window.window.request_users)
    missing = {name: (result.events_without_vector, result.candidates_without_vector)
               for name, result in window.methods.items()
               if result.events_without_vector or result.candidates_without_vector}
    text = (f"Window {window.window.name}: {len(window.window.event_rows):,} scored events of {len(data.users)} "
            f"users ({int(data.event_labels.sum())} long views); {requests} requests with {candidates:,} "
            f"candidates, {relevant_users} of them with a long-viewed candidate; {window.window.cold_users} users "
            "had no event before the window and are left out of the ranking metrics.")
    if missing:
        parts = [f"{name}: {events} events, {cands} candidates" for name, (events, cands) in missing.items()]
        text += f" Scored 0 for lack of a user vector: {'; '.join(parts)}."
    return text


def _sweep_lines(outcome: EvaluationOutcome) -> list[str]:
    config = outcome.settings.evaluation
    metric = config.select_by
    label = METRIC_LABELS[metric].replace("K", str(config.k))
    validation, test = outcome.validation, outcome.test

    ranked = sorted(outcome.sweep, key=lambda point: _sort_key(metric_value(validation.data, point.validation,
                                                                            metric)))
    shown: list[SweepPoint] = ranked[:_SWEEP_ROWS]
    if outcome.plain not in shown:
        shown.append(outcome.plain)

    headers = ["combination", f"validation {label}", f"test {label}", f"test NDCG@{config.k}"]
    lines = [
        f"{len(outcome.sweep)} combinations: alpha in {', '.join(f'{a:g}' for a in config.sweep_alpha_per_s)} "
        f"per second; {len(config.sweep_thresholds)} threshold rules; half-life in "
        f"{', '.join(format_half_life(h) for h in config.sweep_half_life_ms)}. The best {_SWEEP_ROWS} by validation "
        f"{label}, and the configured plain sum:",
        "",
        _row(headers),
        _row(["---", "---:", "---:", "---:"]),
    ]
    for point in shown:
        marker = ""
        if point is outcome.tuned:
            marker = " (chosen)"
        elif point is outcome.plain:
            marker = " (configured)"
        lines.append(_row([
            point.label + marker,
            _format_estimate(validation.bootstrap.estimate(point.validation, metric), 3),
            _format_estimate(test.bootstrap.estimate(point.test, metric), 3),
            _format_estimate(test.bootstrap.estimate(point.test, "ndcg"), 3),
        ]))

    spread = [metric_value(test.data, point.test, metric) for point in outcome.sweep]
    lines += [
        "",
        f"Test {label} over all combinations ranges from {min(spread):.3f} to {max(spread):.3f}; compare that with "
        "the width of one interval above to judge whether the parameters matter on this sample.",
    ]
    return lines


def _limit_lines(outcome: EvaluationOutcome) -> list[str]:
    return [
        f"- {outcome.user_count} users are few: most intervals above are wide, and differences within them are "
        "noise, not findings.",
        "- The video embeddings are hashed content features (category, tags, duration, aspect), not a learned "
        "multimodal model, so many videos share a vector and `<x_i, mu>` can only separate what those features "
        "separate.",
        "- Candidates are the videos the log randomly exposed to the user, so every candidate's label is known; "
        "a production request would rank far more videos.",
        "- f_seq is retrained per window on few events, so Candidate-DreamUMM here shows what a weak sequence "
        "model gives.",
    ]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _utc(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _display_path(path: Path) -> str:
    """Return the path relative to the repository, or only the file name for a file outside it.

    A report then reads the same from any working directory and shows no local folders.
    """
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT.resolve()))
    except ValueError:
        return Path(path).name


def _relative(path: Path, report_path: Path) -> str:
    return os.path.relpath(path, report_path.parent)
