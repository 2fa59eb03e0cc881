"""The benchmark's report: a Markdown page with every figure as a ratio to the baselines of the same run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.serving import render_section

GOAL_RATE = 100_000
"""Sustained events/s the job should reach at d = 128 on 2 cores."""
GOAL_QUIX_RATIO = 3.0
"""How many times Quix Streams' rate the job should reach."""
GOAL_P99_MS = 500
"""Largest p99 event-to-feature latency at half load."""
LAGGING_SHARE = 0.01
"""Share of measured events without output at the end of a live run above which the job did not
keep up with the load, so the latency quantiles leave out its worst events."""


def _rate(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "n/a"


def _ratio(value: float, base: float | None) -> str:
    if base is None or not math.isfinite(value) or not base or not math.isfinite(base):
        return "n/a"
    return f"{value / base:.2f}x"


def _mib(value: float | None) -> str:
    return f"{value / 2**20:,.0f} MiB" if value else "n/a"


def _cpu(split: dict[str, float]) -> str:
    return ", ".join(f"{kind} {seconds:.0f} s" for kind, seconds in sorted(split.items(), key=lambda kv: -kv[1]))


def _replay_table(replays: list[dict[str, Any]], dimension: int) -> list[str]:
    rows = [r for r in replays if r["dimension"] == dimension]
    base = {r["name"]: r["sustained_rate"] for r in rows}
    lines = [
        f"### d = {dimension}",
        "",
        "| alternative | sustained events/s | vs plain Python | vs Quix Streams | replay wall time | "
        "peak memory (tree) | CPU seconds by process | output vs float64 reference |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        agreement = r["agreement"]
        verdict = ("agrees" if r["agreement_ok"] else "**DISAGREES**") + (
            f" (worst cosine 1-{1 - agreement['worst_cosine']:.0e}, {agreement['users_missing']} users missing, "
            f"{agreement['count_mismatches']} count mismatches)")
        lines.append(
            f"| {r['name']} | {_rate(r['sustained_rate'])} | {_ratio(r['sustained_rate'], base.get('plain-python'))} "
            f"| {_ratio(r['sustained_rate'], base.get('quix-streams'))} | {r['replay_seconds']:.1f} s "
            f"| {_mib(r['peak_rss_bytes'])} | {_cpu(r['cpu_seconds_by_kind'])} | {verdict} |")
    return lines + [""]


def _live_table(lives: list[dict[str, Any]]) -> list[str]:
    if not lives:
        return ["No live run in this benchmark (`--live-dims ''`).", ""]
    lines = [
        "| job | d | load (half of its max) | latency p50 | p99 | max | events measured | state bytes per user "
        "(limit 4d+64) | heap used | peak memory (tree) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for live in lives:
        latency = live["latency_ms"]
        limit = 4 * live["dimension"] + 64
        state = f"{live['state_bytes_per_user']:.0f} ({limit}{', over' if live['state_bytes_per_user'] > limit else ''})"
        measured = live["measured_events"] + live["uncovered_events"]
        behind = measured and live["uncovered_events"] / measured > LAGGING_SHARE
        coverage = f"{live['measured_events']:,} ({live['uncovered_events']} not covered" + (
            ", **the job fell behind: latency understated**)" if behind else ")")
        lines.append(
            f"| flink-p{live['parallelism']} | {live['dimension']} | {_rate(live['achieved_rate'])} events/s "
            f"| {latency['p50']:.0f} ms | {latency['p99']:.0f} ms | {latency['max']:.0f} ms "
            f"| {coverage} | {state} | {_mib(live['heap_used_bytes'])} "
            f"| {_mib(live['usage']['peak_rss_bytes'])} |")
    return lines + [""]


def _goals(results: dict[str, Any]) -> list[str]:
    replays = [r for r in results["replays"] if r["dimension"] == 128]
    rates = {r["name"]: r["sustained_rate"] for r in replays}
    job_rates = [rates[name] for name in ("flink-p1", "flink-p2") if math.isfinite(rates.get(name, math.nan))]
    job_rate = max(job_rates, default=math.nan)
    lives = [live for live in results["live"] if live["dimension"] == 128]
    lines = ["## Goals at d = 128", ""]
    if not replays:
        return lines + ["d = 128 was not part of this run.", ""]
    quix = rates.get("quix-streams")

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    lines.append(f"- sustained rate >= {GOAL_RATE:,} events/s: best job {_rate(job_rate)}, "
                 f"{verdict(job_rate >= GOAL_RATE)}")
    if quix:
        lines.append(f"- >= {GOAL_QUIX_RATIO:.0f}x Quix Streams: {_ratio(job_rate, quix)}, "
                     f"{verdict(job_rate >= GOAL_QUIX_RATIO * quix)}")
    for live in lives:
        p99 = live["latency_ms"]["p99"]
        per_user = live["state_bytes_per_user"]
        lines.append(f"- flink-p{live['parallelism']}: p99 latency <= {GOAL_P99_MS} ms at half load: {p99:.0f} ms, "
                     f"{verdict(p99 <= GOAL_P99_MS)}; state <= {4 * 128 + 64} bytes per user: {per_user:.0f}, "
                     f"{verdict(per_user <= 4 * 128 + 64)}")
    return lines + [""]


def render(results: dict[str, Any]) -> str:
    """Return the Markdown report of one benchmark run."""
    machine, workload = results["machine"], results["workload"]
    dims = sorted({r["dimension"] for r in results["replays"]}, key=lambda d: (d != 128, d))
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`benchmarks/run.py`); rerun it to replace this page. How the numbers",
        "are taken, what limits them and what they mean at scale: `docs/design.md` and `docs/scaling.md`.",
        "",
        f"Input: {workload['events']:,} SYNTHETIC watch events of {workload['users']:,} users and "
        f"{workload['videos']:,} videos (seed {workload['seed']}), with random unit embeddings.",
        "`benchmarks/synthetic.py` generated them from distributions fitted to the shipped KuaiRand-1K sample:",
        "events per user, video popularity, durations, share of image posts, watch time by duration and arrival",
        "disorder. Statistics of this input: " + ", ".join(f"{key} {value:.3g}" for key, value in workload["statistics"].items()) + ".",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_bytes'] / 2**30:.0f} GiB, "
        f"Linux {machine['kernel']}. Versions: "
        + ", ".join(f"{name} {version}" for name, version in machine["versions"].items()) + ".",
        "",
        f"Command: `{results['command']}`; the whole run took {results['seconds'] / 60:.1f} min.",
        "",
        "## Replay of the recorded events topic, Kafka to Kafka",
        "",
        "Every alternative reads the same events topic from the start and writes UserInterest records to a topic",
        "of its own. Sustained rate: events covered by the output between 10% and 90% of the input, divided by",
        "the broker append times of those output records (start-up and tail excluded). Replay wall time: process",
        "start to exit, start-up included. Memory: peak resident memory of the alternative's process tree. CPU:",
        "per process kind, the broker included. Each output is checked user by user against the float64 reference.",
        "The job runs with its shipped configuration (`config/dreamumm.yaml`): " + results["job_config"] + ".",
        "",
    ]
    for dimension in dims:
        lines += _replay_table(results["replays"], dimension)
    lines += [
        "## Live: latency, state and memory at half load",
        "",
        "The job runs unbounded on a fresh events topic fed at half of the sustained rate it reached in the replay",
        "(events repeat the workload). Latency: broker append time of the first UserInterest record that covers an",
        "event minus the event's own append time, for events after the warm-up. State: the per-user aggregate's",
        "size in the newest checkpoint completed after the load, divided by the users in the output. Events",
        "not covered are the last ones before the load stopped: they wait for the watermark, which only",
        "new events move (README, Known limits).",
        "",
    ]
    lines += _live_table(results["live"])
    lines += _goals(results)
    if results.get("serving"):
        lines += render_section(results["serving"])
    if results.get("failures"):
        lines += ["## Failed runs", "", *[f"- {failure}" for failure in results["failures"]], ""]
    return "\n".join(lines)


def write_report(results: dict[str, Any], path: Path) -> str:
    """Write the report to ``path`` and return a short text summary for the terminal."""
    text = render(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    machine = results["machine"]
    summary = [f"wrote {path}",
               f"machine: {machine['cores']} cores, {machine['memory_bytes'] / 2**30:.0f} GiB, {machine['cpu']}; "
               "input: SYNTHETIC events fitted to the KuaiRand sample"]
    for replay in results["replays"]:
        same_dimension = {r["name"]: r["sustained_rate"] for r in results["replays"]
                          if r["dimension"] == replay["dimension"]}
        rate = replay["sustained_rate"]
        summary.append(
            f"  d={replay['dimension']} {replay['name']}: {_rate(rate)} events/s "
            f"({_ratio(rate, same_dimension.get('plain-python'))} plain Python, "
            f"{_ratio(rate, same_dimension.get('quix-streams'))} Quix Streams), "
            f"replay {replay['replay_seconds']:.1f} s, {'agrees' if replay['agreement_ok'] else 'DISAGREES'}")
    for live in results["live"]:
        latency = live["latency_ms"]
        summary.append(f"  live d={live['dimension']} flink-p{live['parallelism']} at {_rate(live['achieved_rate'])} "
                       f"events/s: latency p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms, "
                       f"max {latency['max']:.0f} ms; {live['state_bytes_per_user']:.0f} state bytes per user")
    summary.extend(line for line in _goals(results) if line.startswith("- "))
    summary.extend(f"  FAILED: {failure}" for failure in results.get("failures", []))
    return "\n".join(summary) + "\n"
