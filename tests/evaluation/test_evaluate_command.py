"""`dreamumm evaluate` end to end on the shipped sample, with a small sweep to keep it quick."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dreamumm.cli import main
from dreamumm.config import Settings
from embeddings import SAMPLE_EVENTS_PATH, VIDEO_FEATURES_PATH
from evaluation import MethodNames, evaluate
from evaluation.results import METRICS, metric_value

QUICK = {
    "sweep_alpha_per_s": [0.5, 2.0],
    "sweep_half_life_ms": [None, 86_400_000.0],
    "bootstrap_resamples": 100,
}


def quick_settings(**evaluation: object) -> Settings:
    return Settings.model_validate({"evaluation": {**QUICK, **evaluation}})


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory):
    report = tmp_path_factory.mktemp("evaluation") / "report.md"
    outcome, summary = evaluate(quick_settings(), SAMPLE_EVENTS_PATH, VIDEO_FEATURES_PATH, report)
    return outcome, summary, report


def test_sample_accounts_for_every_event(sample_run) -> None:
    outcome, _, _ = sample_run
    assert outcome.accounting.read == 4405
    assert outcome.accounting.used == 4405
    assert outcome.accounting.balanced


def test_sample_scores_every_method(sample_run) -> None:
    outcome, _, _ = sample_run
    expected = [MethodNames.PLAIN, MethodNames.DECAY, MethodNames.TUNED, MethodNames.CANDIDATE,
                MethodNames.LONG_VIEW, MethodNames.POPULARITY, MethodNames.MEAN, MethodNames.LAST,
                MethodNames.RANDOM]
    assert list(outcome.test.methods) == expected
    assert outcome.unavailable == {}
    for name, result in outcome.test.methods.items():
        for metric in METRICS:
            value = metric_value(outcome.test.data, result, metric)
            # Candidate-DreamUMM needs a request's candidates, so it has no per-event AUC.
            undefined = name == MethodNames.CANDIDATE and metric in ("auc", "user_auc")
            assert (value != value) == undefined, f"{name}: {metric} = {value}"


def test_windows_follow_in_time(sample_run) -> None:
    outcome, _, _ = sample_run
    assert outcome.first_event_ms < outcome.validation.window.start_ms < outcome.test.window.start_ms
    assert outcome.validation.window.end_ms == outcome.test.window.start_ms


def test_tuned_point_is_best_on_validation(sample_run) -> None:
    outcome, _, _ = sample_run
    metric = outcome.settings.evaluation.select_by
    best = max(metric_value(outcome.validation.data, point.validation, metric) for point in outcome.sweep)
    assert metric_value(outcome.validation.data, outcome.tuned.validation, metric) == best
    assert len(outcome.sweep) == 2 * 4 * 2
    # The configured alpha, rule and no decay are in the grid, so that point is reused, not scored again.
    assert any(point is outcome.plain for point in outcome.sweep)


def test_report_and_plots_written(sample_run) -> None:
    _, summary, report = sample_run
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Recommendation quality on KuaiRand")
    for name in ("methods_test.png", "sweep_validation.png", "sweep_validation_vs_test.png"):
        plot = report.with_suffix("") / name
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(report/{name})" in text
    assert MethodNames.CANDIDATE in summary
    assert "the highest value on the test window is" in summary


def test_same_seed_same_report(sample_run, tmp_path: Path) -> None:
    _, _, report = sample_run
    again = tmp_path / "report.md"
    evaluate(quick_settings(), SAMPLE_EVENTS_PATH, VIDEO_FEATURES_PATH, again)
    assert again.read_text(encoding="utf-8") == report.read_text(encoding="utf-8")
    for name in ("methods_test.png", "sweep_validation.png"):
        assert (again.with_suffix("") / name).read_bytes() == (report.with_suffix("") / name).read_bytes()


def test_log_without_is_rand_column(tmp_path: Path) -> None:
    events = pd.read_csv(SAMPLE_EVENTS_PATH).drop(columns=["is_rand"])
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    outcome, _ = evaluate(quick_settings(), path, VIDEO_FEATURES_PATH, tmp_path / "report.md")
    assert outcome.accounting.used == len(events)
    assert len(outcome.test.window.candidate_rows) > 0


def test_videos_without_embedding_counted(tmp_path: Path) -> None:
    events = pd.read_csv(SAMPLE_EVENTS_PATH)
    videos = pd.read_csv(VIDEO_FEATURES_PATH)
    dropped = sorted(events["video_id"].unique())[:30]
    videos_path = tmp_path / "videos.csv"
    videos[~videos["video_id"].isin(dropped)].to_csv(videos_path, index=False)
    outcome, _ = evaluate(quick_settings(), SAMPLE_EVENTS_PATH, videos_path, tmp_path / "report.md")
    assert outcome.accounting.without_embedding == int(events["video_id"].isin(dropped).sum())
    assert outcome.accounting.balanced
    assert "whose video has no embedding" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_cli_missing_column_exits_1(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.csv"
    pd.read_csv(SAMPLE_EVENTS_PATH).drop(columns=["play_time_ms"]).to_csv(path, index=False)
    code = main(["evaluate", "--events", str(path), "--report", str(tmp_path / "report.md")])
    assert code == 1
    assert "play_time_ms" in caplog.text
    assert not (tmp_path / "report.md").exists()


def test_cli_missing_file_exits_1(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    code = main(["evaluate", "--events", str(tmp_path / "absent.csv"), "--report", str(tmp_path / "report.md")])
    assert code == 1
    assert "absent.csv" in caplog.text


def test_windows_too_late_rejected() -> None:
    with pytest.raises(ValueError, match="validation_start"):
        quick_settings(validation_start=0.8, test_start=0.7)


def test_report_path_needs_md(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must end in .md"):
        evaluate(quick_settings(), SAMPLE_EVENTS_PATH, VIDEO_FEATURES_PATH, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_tiny_log_reports_no_verdict(tmp_path: Path) -> None:
    # Users 0 to 2 have no long view in the test window, and too few events to train f_seq there.
    events = pd.read_csv(SAMPLE_EVENTS_PATH)
    path = tmp_path / "events.csv"
    events[events["user_id"] < 3].to_csv(path, index=False)
    outcome, summary = evaluate(quick_settings(), path, VIDEO_FEATURES_PATH, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text(encoding="utf-8")

    assert "no verdict" in summary
    assert "**Warning: only 0 users of" in text
    assert ("test", MethodNames.CANDIDATE) in outcome.unavailable
    assert f"**{MethodNames.CANDIDATE}** was not scored in the test window" in text
    assert "nan" not in text


def test_report_flags_missing_is_rand(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    pd.read_csv(SAMPLE_EVENTS_PATH).drop(columns=["is_rand"]).to_csv(path, index=False)
    evaluate(quick_settings(), path, VIDEO_FEATURES_PATH, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text(encoding="utf-8")

    assert "the log has no `is_rand` column" in text
    assert "`is_rand` = 1" not in text


def test_inverted_labels_do_not_beat_random(tmp_path: Path) -> None:
    # With long_view inverted, DreamUMM scores the wrong videos high: it is worse than random, not better.
    events = pd.read_csv(SAMPLE_EVENTS_PATH)
    events["long_view"] = 1 - events["long_view"]
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    outcome, _ = evaluate(quick_settings(), path, VIDEO_FEATURES_PATH, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text(encoding="utf-8")

    plain = outcome.test.methods[MethodNames.PLAIN]
    assert metric_value(outcome.test.data, plain, "auc") < 0.5
    assert "beats random beyond the noise on: none of them" in text


def test_one_user_gets_no_verdict(tmp_path: Path) -> None:
    events = pd.read_csv(SAMPLE_EVENTS_PATH)
    busiest = events["user_id"].value_counts().index[0]
    path = tmp_path / "events.csv"
    events[events["user_id"] == busiest].to_csv(path, index=False)
    _, summary = evaluate(quick_settings(), path, VIDEO_FEATURES_PATH, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    verdict = text[text.index("## Verdict"):text.index("## Data and protocol")]

    assert summary.splitlines()[-1] == ("By NDCG@5: no verdict, because only 1 user of the test window defines it, "
                                        "fewer than 30.")
    assert "beyond the noise" not in verdict
