"""Unit tests of configuration loading, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamumm.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    DurationBucketThresholdSettings,
    FixedThresholdSettings,
    load_settings,
)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_is_valid() -> None:
    settings = load_settings(DEFAULT_CONFIG_PATH, environ={})
    assert settings.kafka.events_topic == "watch-events"
    assert settings.preference.threshold.rule == "duration_fraction"


def test_environment_override_wins_over_file() -> None:
    settings = load_settings(DEFAULT_CONFIG_PATH, environ={"DREAMUMM__KAFKA__BOOTSTRAP_SERVERS": "b:9092"})
    assert settings.kafka.bootstrap_servers == "b:9092"


def test_override_values_parse_as_yaml() -> None:
    environ = {"DREAMUMM__JOB__PARALLELISM": "2", "DREAMUMM__JOB__BOUNDED": "true"}
    settings = load_settings(DEFAULT_CONFIG_PATH, environ=environ)
    assert settings.job.parallelism == 2
    assert settings.job.bounded is True


def test_invalid_value_names_field_and_override(tmp_path: Path) -> None:
    path = write_config(tmp_path, "preference:\n  alpha_per_s: -1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert "preference.alpha_per_s" in message
    assert "-1" in message
    assert "DREAMUMM__PREFERENCE__ALPHA_PER_S" in message


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, "kafka:\n  bootstrap_server: x\n")
    with pytest.raises(ConfigError, match="bootstrap_server"):
        load_settings(path, environ={})


def test_threshold_rule_selects_settings_class(tmp_path: Path) -> None:
    fixed = load_settings(write_config(tmp_path, "preference:\n  threshold:\n    rule: fixed\n"), environ={})
    assert isinstance(fixed.preference.threshold, FixedThresholdSettings)
    path = write_config(tmp_path, "preference:\n  threshold:\n    rule: duration_buckets\n")
    assert isinstance(load_settings(path, environ={}).preference.threshold, DurationBucketThresholdSettings)


def test_floor_above_cap_is_rejected(tmp_path: Path) -> None:
    text = "preference:\n  threshold:\n    rule: duration_fraction\n    floor_ms: 20000\n    cap_ms: 1000\n"
    with pytest.raises(ConfigError, match="floor_ms"):
        load_settings(write_config(tmp_path, text), environ={})


def test_topics_must_be_distinct(tmp_path: Path) -> None:
    text = "kafka:\n  events_topic: same\n  features_topic: same\n"
    with pytest.raises(ConfigError, match="distinct"):
        load_settings(write_config(tmp_path, text), environ={})


def test_missing_file_says_how_to_point_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DREAMUMM_CONFIG"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, "job:\n  parallelism: 3\n")
    assert load_settings(environ={"DREAMUMM_CONFIG": str(path)}).job.parallelism == 3


@pytest.mark.parametrize(("overrides", "message"), [
    ({"DREAMUMM__JOB__EVENTS_STARTUP_MODE": "timestamp"}, "needs events_start_timestamp_ms"),
    ({"DREAMUMM__JOB__EVENTS_STARTUP_MODE": "specific-offsets"}, "needs events_start_offsets"),
    ({"DREAMUMM__JOB__EVENTS_STOP_OFFSETS": "{0: 5}"}, "needs bounded: true"),
    ({"DREAMUMM__JOB__BOUNDED": "true", "DREAMUMM__JOB__EVENTS_STOP_OFFSETS": "{0: -1}"}, "offsets >= 0"),
    ({"DREAMUMM__JOB__TRANSACTION_TIMEOUT_MS": "5000"}, "must exceed checkpoint_interval_ms"),
    ({"DREAMUMM__PREFERENCE__RECENCY_HALF_LIFE_MS": "0"}, "greater than 0"),
])
def test_job_positions_and_guarantees_are_checked(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=overrides)


def test_stop_offsets_parse_from_environment() -> None:
    settings = load_settings(environ={"DREAMUMM__JOB__BOUNDED": "true",
                                      "DREAMUMM__JOB__EVENTS_STOP_OFFSETS": "{0: 10, 1: 12}"})

    assert settings.job.events_stop_offsets == {0: 10, 1: 12}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"DREAMUMM__RANKING__DEFAULT_K": "20", "DREAMUMM__RANKING__MAX_K": "10"},
     "default_k \\(20\\) must not exceed max_k \\(10\\)"),
    ({"DREAMUMM__RANKING__MAX_VECTOR_AGE_MS": "-1"}, "ranking.max_vector_age_ms = -1"),
    ({"DREAMUMM__RANKING__SCORE_WEIGHTS": "{ctr: .inf}"}, "ranking.score_weights.ctr"),
    ({"DREAMUMM__SERVING__PORT": "70000"}, "serving.port = 70000"),
    ({"DREAMUMM__STORE__MAX_BATCH_RECORDS": "0"}, "store.max_batch_records = 0"),
])
def test_serving_settings_are_checked(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=overrides)
