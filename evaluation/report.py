"""The Markdown report of an evaluation, and the short table the command prints."""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dreamumm.config import REPO_ROOT
from embeddings import SAMPLE_EVENTS_PATH
from evaluation.bootstrap import Estimate
from evaluation.plots import METRIC_LABELS
from evaluation.results import METRICS, MethodResult, metric_value
from evaluation.run import EvaluationOutcome, MethodNames, WindowOutcome
from evaluation.sweep import SweepPoint, describe_threshold, format_half_life
from evaluation.verdict import MIN_USERS, Verdict, users_defining, verdict

__all__ = ["render_report", "render_summary"]

_SWEEP_ROWS = 10


def render_summary(outcome: EvaluationOutcome) -> str:
    """Return the short plain-text table of the test window that the command prints."""
    window = outcome.test
    k = outcome.settings.evaluation.k
    summary_metrics = ("auc", "user_auc", "hit_rate", "ndcg")
    headers = ["method"] + [METRIC_LABELS[metric].replace("K", str(k)) for metric in summary_metrics]
    rows = [[name] + [_format_estimate(window.bootstrap.estimate(result, metric), 3) for metric in summary_metrics]
            for name, result in window.methods.items()]
    widths = [max(len(row[column]) for row in [headers] + rows) for column in range(len(headers))]
    lines = [f"Test window, K = {k}, {window.bootstrap.level:.0%} bootstrap intervals by user in brackets:", ""]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers] + rows]
    lines.append("")
    lines += _verdict_sentences(outcome, markdown=False)
    return "\n".join(lines)


def render_report(outcome: EvaluationOutcome, plots: dict[str, Path], report_path: Path) -> str:
    """Return the Markdown report; plot links are relative to ``report_path``'s folder."""
    config = outcome.settings.evaluation
    k = config.k
    sections = [
        f"# Recommendation quality on {_data_name(outcome)}",
        "",
        "This page is written by `dreamumm evaluate` (`make evaluate`); edit the code, not the page. "
        f"It replays the events of the log below in event-time order and asks how well each method predicts "
        f"which videos a user long-views. Every figure comes with its {config.confidence_level:.0%} "
        f"bootstrap interval over users ({config.bootstrap_resamples} resamples), written as "
        "`value (low-high)`.",
        "",
        "A difference between two methods is *within the noise* when the paired interval of the difference "
        "(both methods on the same resampled users) includes 0, and *beyond the noise* when it excludes 0. "
        f"The difference table makes {_comparison_count(outcome)} such comparisons at {config.confidence_level:.0%} "
        f"each, so about {_comparison_count(outcome) * (1 - config.confidence_level):.1f} of them would come out "
        "beyond the noise by chance alone even if no method differed.",
        "",
        *_small_sample_warning(outcome),
        "## Verdict",
        "",
        *_verdict_sentences(outcome),
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
        "The sweep chose the tuned combination and the recency decay's half-life with this window, so those two "
        "rows are optimistic here.",
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


def _comparison_count(outcome: EvaluationOutcome) -> int:
    """Return the number of defined paired differences in the test window's difference table."""
    window = outcome.test
    plain = window.methods[MethodNames.PLAIN]
    return sum(1 for name, result in window.methods.items() if name != MethodNames.PLAIN
               for metric in METRICS
               if not math.isnan(metric_value(window.data, result, metric)))


def _small_sample_warning(outcome: EvaluationOutcome) -> list[str]:
    metric = outcome.settings.evaluation.select_by
    defined = users_defining(outcome.test, outcome.test.methods[MethodNames.PLAIN], metric)
    if defined >= MIN_USERS:
        return []
    verb = "defines" if defined == 1 else "define"
    return [f"**Warning: only {_count(defined, 'user')} of the test window {verb} {METRIC_LABELS[metric]}. A "
            "bootstrap over so few users cannot be trusted, and no statement on this page is a finding.**", ""]


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
    if math.isnan(estimate.low):
        return f"{estimate.value:+.{digits}f}"
    # A bound that rounds to 0 but is not 0 gets more digits, so that its side of 0 stays visible.
    bound_digits = digits
    while bound_digits < 6 and any(bound != 0.0 and round(bound, bound_digits) == 0.0
                                   for bound in (estimate.low, estimate.high)):
        bound_digits += 1
    text = (f"{estimate.value:+.{digits}f} ({estimate.low:+.{bound_digits}f} to "
            f"{estimate.high:+.{bound_digits}f})")
    return f"**{text}**" if estimate.excludes_zero else text


def _digits(metric: str) -> int:
    return 2 if metric == "exposed_clusters" else 3


def _verdict_sentences(outcome: EvaluationOutcome, markdown: bool = True) -> list[str]:
    """Return the verdict by the selection metric and, because Candidate-DreamUMM has only ranking metrics, by NDCG@K."""
    metrics = [outcome.settings.evaluation.select_by]
    if "ndcg" not in metrics:
        metrics.append("ndcg")
    sentences = [_verdict_sentence(verdict(outcome, metric), outcome, markdown) for metric in metrics]
    if not markdown:
        return sentences
    paragraphs: list[str] = []
    for sentence in sentences:
        paragraphs += [sentence, ""]
    return paragraphs[:-1]


def _verdict_sentence(result: Verdict, outcome: EvaluationOutcome, markdown: bool = True) -> str:
    label = METRIC_LABELS[result.metric].replace("K", str(outcome.settings.evaluation.k))
    role = " (the selection metric)" if result.metric == outcome.settings.evaluation.select_by else ""
    if not result.decided:
        verb = "defines" if result.users == 1 else "define"
        return (f"By {label}{role}: no verdict, because only {_count(result.users, 'user')} of the test window "
                f"{verb} it, fewer than {MIN_USERS}.")
    leader = f"**{result.leader}**" if markdown else result.leader
    sentence = (f"By {label}{role}, the highest value on the test window is {leader}'s "
                f"{_format_estimate(result.leader_value, 3)}. ")
    others = len(result.within_noise) + len(result.below)
    if not result.below:
        sentence += (f"All {others} other methods are within the noise of it, so the test window cannot tell "
                     "them apart.")
    else:
        sentence += (f"{len(result.within_noise)} of the {others} other methods are within the noise of it; "
                     f"below it beyond the noise: {', '.join(result.below)}.")
    if result.undefined:
        sentence += f" No value: {', '.join(result.undefined)}."
    if result.over_plain is not None:
        plain_noise = "beyond" if result.over_plain.excludes_zero else "within"
        sentence += (f" Its difference to {MethodNames.PLAIN} is "
                     f"{_format_difference(result.over_plain, 3).strip('*')}, {plain_noise} the noise.")
    return sentence


def _noise_sentences(outcome: EvaluationOutcome) -> list[str]:
    window = outcome.test
    k = outcome.settings.evaluation.k
    if users_defining(window, window.methods[MethodNames.PLAIN], outcome.settings.evaluation.select_by) < MIN_USERS:
        return []
    plain = window.methods[MethodNames.PLAIN]
    random = window.methods[MethodNames.RANDOM]
    lines = []
    for name, result in window.methods.items():
        if name == MethodNames.PLAIN:
            continue
        beyond = []
        for metric in METRICS:
            estimate = window.bootstrap.difference(result, plain, metric)
            if estimate.excludes_zero:
                direction = "higher" if estimate.above_zero else "lower"
                beyond.append(f"{METRIC_LABELS[metric].replace('K', str(k))} {direction}")
        if beyond:
            lines.append(f"- {name} differs from {MethodNames.PLAIN} beyond the noise in: {', '.join(beyond)}.")
        else:
            lines.append(f"- {name} is within the noise of {MethodNames.PLAIN} on every metric it has.")
    above_random = [METRIC_LABELS[metric].replace("K", str(k)) for metric in ("auc", "user_auc", "ndcg")
                    if window.bootstrap.difference(plain, random, metric).above_zero]
    ndcg_label = METRIC_LABELS["ndcg"].replace("K", str(k))
    lines.append(f"- Of AUC (pooled), AUC within a user and {ndcg_label}, {MethodNames.PLAIN} beats random beyond "
                 f"the noise on: {', '.join(above_random) or 'none of them'}.")
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
        f"- Label: the log's `long_view` column. It equals play time >= the configured threshold "
        f"({describe_threshold(outcome.settings.preference.threshold)}, "
        f"{outcome.settings.preference.threshold.no_duration_threshold_ms / 1000:g} s without a duration) for "
        f"{outcome.label_agreement:.2%} of the used events, so a DreamUMM weight near 1 is close to a past long "
        "view. DreamUMM uses the watch times of past events only, never a label.",
        f"- Video embeddings: content embeddings `{outcome.embedding_model_version}` of "
        f"`{_display_path(outcome.videos_path)}`, the ones the demo publishes. Diversity counts "
        f"{config.clusters} k-means clusters of all {len(clustering.labels):,} videos "
        f"({'converged' if clustering.converged else 'not converged'} after {clustering.iterations} iterations).",
        f"- Windows, by event time: history only before {_utc(outcome.validation.window.start_ms)} "
        f"({config.validation_start:.0%} of the events); validation until {_utc(outcome.test.window.start_ms)} "
        f"({config.test_start:.0%}); test after that.",
        "- Per-event metrics score every window event of a user with an earlier event, using only the user's "
        "events at strictly earlier times, as the feature job's state was just before it. AUC (pooled) ranks all "
        "scored events together, so it also rewards telling apart users who long-view more often. AUC within a "
        "user is the mean of per-user AUCs weighted by the user's scored events, and it exists only for users "
        "with both a long view and another view in the window. Candidate-DreamUMM has no per-event scores.",
        f"- Ranking metrics: at the window's start each user with an earlier event gets one request. Its "
        f"candidates are {_candidate_source(outcome)}, and the relevant ones are those long-viewed. "
        f"HitRate@{config.k} is the mean over users of relevant videos in the top {config.k} / relevant videos "
        f"(often called recall@{config.k}), so a user with at most {config.k} candidates scores 1 with any method. "
        f"NDCG@{config.k} uses binary gains. Both skip users without a long-viewed candidate.",
        "- Ties: candidates with equal scores count as shown in a uniformly random order, and every ranking and "
        "diversity figure is its exact expected value over those orders, so no random draw adds noise. A method "
        "that scores everything the same thus gets the expectation of a random ranking.",
        f"- Diversity: exposed clusters counts distinct clusters in a user's top {config.k}; more is more diverse, "
        f"which is not better in itself. Surprise share is the share of the top {config.k} whose cluster the user "
        "never watched before the window and that the user long-viewed; more is better.",
        f"- Intervals: the window's users are resampled with replacement (seed {config.seed}), and every method "
        "is paired on the same resamples. A resample in which no chosen user defines a metric is left out of "
        "that metric's interval.",
    ]


def _data_name(outcome: EvaluationOutcome) -> str:
    if Path(outcome.events_path).resolve() == SAMPLE_EVENTS_PATH.resolve():
        return "KuaiRand"
    return f"`{Path(outcome.events_path).name}`"


def _candidate_source(outcome: EvaluationOutcome) -> str:
    if outcome.has_random_exposure_column:
        return ("the user's randomly exposed videos in the window (`is_rand` = 1, so no recommender chose the "
                "exposure)")
    return ("all the user's videos in the window, because the log has no `is_rand` column. **A recommender may "
            "have chosen these exposures, which favours methods that resemble it**")


def _method_lines(outcome: EvaluationOutcome) -> list[str]:
    preference = outcome.settings.preference
    configured = f"alpha {preference.alpha_per_s:g}/s, {describe_threshold(preference.threshold)}"
    decay_source = ("It comes from preference.recency_half_life_ms." if preference.recency_half_life_ms is not None
                    else "Of the sweep's half-lives, it is the best on the validation window at the configured alpha "
                         "and threshold rule. The plain sum is the row without decay.")
    return [
        f"- **{MethodNames.PLAIN}**: `mu = sum_j a_j x_j / ||...||` with `a_j = sigmoid(alpha (w_j - t_j))` and the "
        f"configured {configured}, scored by `<x_i, mu>`.",
        f"- **{MethodNames.DECAY}**: the same with each weight discounted by `2^(-(T - t_j) / h)`, where T is "
        f"the user's newest event time, as in the job. The half-life h is "
        f"{format_half_life(outcome.decay.half_life_ms)}. {decay_source}",
        f"- **{MethodNames.TUNED}**: the sweep's choice on the validation window: {outcome.tuned.label}.",
        f"- **{MethodNames.CANDIDATE}**: `mu` is the f_seq-weighted sum of the request's own candidates. f_seq is "
        "the project's logistic long-view model, trained anew for each window on the events before its start. "
        "It has no per-event scores (n/a in the AUC columns), because one event alone is no candidate set and "
        "the window's other events include later ones. Compare it on the ranking metrics.",
        f"- **{MethodNames.LONG_VIEW}**: f_seq's probability itself, with the history before each event "
        "(per-event) or before the window (ranking).",
        f"- **{MethodNames.POPULARITY}**: the video's long-view rate over all users' earlier events, smoothed "
        "towards the rate before the window with 10 pseudo-exposures. "
        f"{outcome.test.unseen_candidates:,} of the test window's {len(outcome.test.window.candidate_rows):,} "
        "candidates show a video nobody saw before the window. Those tie at the prior rate, so its figures "
        "average over their orders.",
        f"- **{MethodNames.MEAN}**: `<x_i, mu>` with every watched video weighted 1.",
        f"- **{MethodNames.LAST}**: the cosine between the candidate and the user's latest watched video.",
        f"- **{MethodNames.RANDOM}**: every candidate ties, so each figure is the exact expectation of a "
        "uniformly random ranking (AUC 0.5).",
        *[f"- **{name}** was not scored in the {window} window: {reason}"
          for (window, name), reason in outcome.unavailable.items()],
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
    k = data.k
    both_classes = sum(1 for rows in data.events_of_user
                       if len(rows) and data.event_labels[rows].min() != data.event_labels[rows].max())
    short_lists = int((np.diff(window.window.request_bounds) <= k).sum())
    text = (f"Window {window.window.name}: {len(window.window.event_rows):,} scored events of "
            f"{_count(len(data.users), 'user')} ({int(data.event_labels.sum())} long views), "
            f"{both_classes} of whom have both classes and so an AUC within a user. "
            f"{_count(requests, 'request')} with {candidates:,} candidates, {relevant_users} of them with a "
            f"long-viewed candidate and {short_lists} with at most {k} candidates. "
            f"{_count(window.window.cold_users, 'user')} had no event before the window and are left out of the "
            "ranking metrics.")
    if missing:
        parts = [f"{name}: {events} events, {cands} candidates" for name, (events, cands) in missing.items()]
        text += f" Scored 0 for lack of a user vector: {'; '.join(parts)}."
    return text


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _sweep_lines(outcome: EvaluationOutcome) -> list[str]:
    config = outcome.settings.evaluation
    metric = config.select_by
    label = METRIC_LABELS[metric].replace("K", str(config.k))
    validation, test = outcome.validation, outcome.test

    ranked = sorted(outcome.sweep, key=lambda point: _sort_key(metric_value(validation.data, point.validation,
                                                                            metric)))
    listed: list[SweepPoint] = ranked[:_SWEEP_ROWS]
    if outcome.plain not in listed:
        listed.append(outcome.plain)

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
    for point in listed:
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

    spread = [value for value in (metric_value(test.data, point.test, metric) for point in outcome.sweep)
              if not math.isnan(value)]
    if spread:
        lines += [
            "",
            f"Test {label} over all combinations ranges from {min(spread):.3f} to {max(spread):.3f} (point "
            "estimates). Compare that with the width of one interval above to judge whether the parameters "
            "matter on this sample.",
        ]
    return lines


def _limit_lines(outcome: EvaluationOutcome) -> list[str]:
    exposure = ("Candidates are the videos the log randomly exposed to the user, so every candidate's label is "
                "known and no recommender chose them; a production request would rank far more videos."
                if outcome.has_random_exposure_column else
                "The log has no `is_rand` column, so candidates are whatever the log exposed, possibly chosen by a "
                "recommender; a production request would rank far more videos.")
    return [
        f"- The test window's intervals come from {_count(len(outcome.test.data.users), 'user')}, fewer for "
        "metrics that not every user defines (see the line below its table). Their widths show how much noise "
        "that leaves, and differences within them are noise, not findings.",
        "- The video embeddings are hashed content features (category, tags, duration, aspect), not a learned "
        "multimodal model, so many videos share a vector and `<x_i, mu>` can only separate what those features "
        "separate.",
        f"- {exposure}",
        "- f_seq is retrained per window on few events, so Candidate-DreamUMM here shows what a weak sequence "
        "model gives. Its feature set was chosen earlier on a split of the whole sample whose held-out part lies "
        "in the test window, so the f_seq rows may be slightly optimistic.",
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
