"""The benchmark report on a small hand-made result set."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import render, write_report


def _replay(name: str, rate: float) -> dict:
    return {"name": name, "dimension": 128, "sustained_rate": rate, "replay_seconds": 10.0,
            "peak_rss_bytes": 2**30, "cpu_seconds_by_kind": {"driver": 5.0}, "agreement_ok": True,
            "agreement": {"worst_cosine": 1.0 - 1e-12, "users_missing": 0, "count_mismatches": 0}}


def _results() -> dict:
    return {
        "machine": {"cores": 2, "memory_bytes": 24 * 2**30, "cpu": "test cpu", "kernel": "6.1",
                    "versions": {"python": "3.11.7"}},
        "workload": {"events": 1000, "users": 10, "videos": 5, "seed": 0, "statistics": {"zero_duration_share": 0.04}},
        "replays": [_replay("plain-python", 50_000.0), _replay("quix-streams", 10_000.0),
                    _replay("flink-p1", 40_000.0)],
        "live": [{"parallelism": 1, "dimension": 128, "achieved_rate": 20_000.0, "state_bytes_per_user": 570.0,
                  "latency_ms": {"p50": 300.0, "p99": 450.0, "max": 900.0}, "measured_events": 100,
                  "uncovered_events": 0, "heap_used_bytes": 2**29, "usage": {"peak_rss_bytes": 2**31}}],
        "command": "make bench", "seconds": 60.0, "job_config": "checkpoints every 10 s",
    }


def test_report_prints_baseline_ratios() -> None:
    text = render(_results())
    assert "| flink-p1 | 40,000 | 0.80x | 4.00x |" in text
    assert "SYNTHETIC" in text


def test_report_checks_the_goals() -> None:
    text = render(_results())
    assert "best job 40,000, NOT met" in text
    assert ">= 3x Quix Streams: 4.00x, met" in text
    assert "p99 latency <= 500 ms at half load: 450 ms, met" in text
    assert "state <= 576 bytes per user: 570, met" in text


def test_write_report_returns_summary(tmp_path: Path) -> None:
    summary = write_report(_results(), tmp_path / "benchmarks.md")
    assert (tmp_path / "benchmarks.md").read_text().startswith("# Benchmarks")
    assert "flink-p1: 40,000 events/s (0.80x plain Python, 4.00x Quix Streams)" in summary
    assert "p99 450 ms" in summary


def test_report_flags_lagging_job() -> None:
    results = _results()
    results["live"][0].update(measured_events=900, uncovered_events=100, state_bytes_per_user=600.0)
    text = render(results)
    assert "the job fell behind: latency understated" in text
    assert "600 (576, over)" in text


def test_goals_use_the_jobs_that_ran() -> None:
    results = _results()
    results["replays"].append(_replay("flink-p2", 45_000.0))
    results["replays"] = [replay for replay in results["replays"] if replay["name"] != "flink-p1"]
    assert "best job 45,000, NOT met" in render(results)
