"""Tests for the long-view models' predict, input checks and model files."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import numpy as np
import pytest

from dreamumm.config import PreferenceSettings
from ranking.long_view import (
    FORMAT_VERSION,
    ConstantLongViewModel,
    LogisticLongViewModel,
    LongViewModel,
    LongViewModelError,
    WatchHistory,
    load_long_view_model,
)
from ranking.long_view.features import DEFAULT_FEATURES
from ranking.long_view.logistic_fit import Standardiser
from ranking.long_view.video_stats import VideoStatistics

DIMENSION = 4


def make_model(training: dict[str, object] | None = None) -> LogisticLongViewModel:
    count = len(DEFAULT_FEATURES)
    generator = np.random.default_rng(2)
    statistics = VideoStatistics(
        video_ids=["10", "11", "12"],
        duration_ms=np.array([12_000.0, 0.0, math.nan]),
        exposures=np.array([4.0, 1.0, 2.0]),
        long_views=np.array([2.0, 0.0, 1.0]),
        prior_long_view_rate=0.09,
        prior_strength=10.0,
    )
    return LogisticLongViewModel(
        feature_names=DEFAULT_FEATURES,
        weights=generator.normal(size=count),
        intercept=-2.3,
        standardiser=Standardiser(means=generator.normal(size=count), stds=generator.uniform(0.5, 2.0, count)),
        preference=PreferenceSettings(),
        history_limit=50,
        video_statistics=statistics,
        embedding_model_version="test-space-d4",
        embedding_dimension=DIMENSION,
        training=training or {"fit_on": "all events"},
    )


def make_history(count: int = 3) -> WatchHistory:
    generator = np.random.default_rng(count)
    return WatchHistory(
        video_ids=tuple(str(i) for i in range(count)),
        vectors=generator.normal(size=(count, DIMENSION)).astype(np.float32),
        play_time_ms=generator.uniform(0, 40_000, count),
        duration_ms=np.full(count, 20_000.0),
        time_ms=np.arange(count, dtype=np.int64),
    )


def candidates(count: int = 3) -> tuple[list[str], np.ndarray]:
    ids = ["10", "11", "999"][:count] + [str(100 + i) for i in range(max(0, count - 3))]
    vectors = np.random.default_rng(7).normal(size=(count, DIMENSION)).astype(np.float32)
    return ids, vectors


def test_models_satisfy_protocol() -> None:
    assert isinstance(make_model(), LongViewModel)
    assert isinstance(ConstantLongViewModel(0.1), LongViewModel)


def test_predict_returns_probabilities() -> None:
    ids, vectors = candidates()
    probabilities = make_model().predict(make_history(), ids, vectors)

    assert probabilities.shape == (3,)
    assert probabilities.dtype == np.float64
    assert ((probabilities >= 0.0) & (probabilities <= 1.0)).all()


def test_predict_empty_history() -> None:
    ids, vectors = candidates()
    probabilities = make_model().predict(WatchHistory.empty(DIMENSION), ids, vectors)

    assert probabilities.shape == (3,)
    assert np.isfinite(probabilities).all()


def test_predict_empty_candidates() -> None:
    model = make_model()

    assert model.predict(make_history(), [], np.zeros((0, DIMENSION), dtype=np.float32)).shape == (0,)
    assert model.predict(make_history(), [], np.zeros((0, 0), dtype=np.float32)).shape == (0,)


def test_predict_ignores_candidate_order() -> None:
    ids, vectors = candidates()
    model = make_model()
    forward = model.predict(make_history(), ids, vectors)
    backward = model.predict(make_history(), ids[::-1], vectors[::-1])

    np.testing.assert_allclose(forward, backward[::-1], rtol=1e-12)


def test_predict_rejects_row_count_mismatch() -> None:
    ids, vectors = candidates()
    with pytest.raises(ValueError, match=r"shape \(2, d\) to match 2 candidate ids, got shape \(3, 4\)"):
        make_model().predict(make_history(), ids[:2], vectors)


def test_predict_rejects_one_dimensional_vectors() -> None:
    with pytest.raises(ValueError, match=r"shape \(1, d\)"):
        make_model().predict(make_history(), ["10"], np.zeros(DIMENSION, dtype=np.float32))


def test_predict_rejects_dimension_unlike_history() -> None:
    ids, vectors = candidates()
    history = WatchHistory(video_ids=("a",), vectors=np.ones((1, 3), dtype=np.float32),
                           play_time_ms=np.ones(1), duration_ms=np.ones(1))
    expected = "candidate vectors have dimension 4, but the history vectors have dimension 3"
    with pytest.raises(ValueError, match=expected):
        make_model().predict(history, ids, vectors)


def test_predict_rejects_dimension_unlike_model() -> None:
    vectors = np.ones((1, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="expects vectors of dimension 4.*got dimension 5"):
        make_model().predict(WatchHistory.empty(5), ["10"], vectors)


def test_predict_rejects_single_string_ids() -> None:
    with pytest.raises(TypeError, match="single string"):
        make_model().predict(make_history(), "10", np.ones((2, DIMENSION), dtype=np.float32))


def test_constant_model_predicts_its_probability() -> None:
    ids, vectors = candidates()
    model = ConstantLongViewModel(0.25)

    assert model.predict(make_history(), ids, vectors).tolist() == [0.25, 0.25, 0.25]
    assert model.embedding_model_version is None


def test_constant_model_checks_shapes() -> None:
    with pytest.raises(ValueError, match="candidate_vectors must have shape"):
        ConstantLongViewModel(0.5).predict(make_history(), ["1"], np.ones((2, DIMENSION)))


def test_constant_model_rejects_bad_probability() -> None:
    for value in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="probability must be in"):
            ConstantLongViewModel(value)


def test_logistic_round_trip_is_exact(tmp_path: Path) -> None:
    model = make_model({"fit_on": "all events", "auc": 0.7123456789012345})
    path = tmp_path / "model.json"
    model.save(path)
    loaded = LogisticLongViewModel.load(path)

    assert loaded.to_dict() == model.to_dict()
    ids, vectors = candidates()
    history = make_history()
    np.testing.assert_array_equal(loaded.predict(history, ids, vectors), model.predict(history, ids, vectors))
    assert loaded.embedding_model_version == "test-space-d4"


def test_saved_file_is_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    make_model().save(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.json"]


def test_load_dispatches_on_kind(tmp_path: Path) -> None:
    logistic_path = tmp_path / "logistic.json"
    constant_path = tmp_path / "constant.json"
    make_model().save(logistic_path)
    ConstantLongViewModel(0.3).save(constant_path)

    assert isinstance(load_long_view_model(logistic_path), LogisticLongViewModel)
    constant = load_long_view_model(constant_path)
    assert isinstance(constant, ConstantLongViewModel)
    assert constant.probability == 0.3


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(LongViewModelError, match="absent.json not found.*dreamumm train-long-view --out"):
        load_long_view_model(path)


def test_load_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text('{"format_version": 1, "kind": ', encoding="utf-8")
    with pytest.raises(LongViewModelError, match="is not valid JSON.*dreamumm train-long-view"):
        load_long_view_model(path)


def test_load_non_object_file(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(LongViewModelError, match="must contain a JSON object, got list"):
        load_long_view_model(path)


def test_load_unknown_format_version(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    data = make_model().to_dict()
    data["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(data), encoding="utf-8")
    expected = f"format_version {FORMAT_VERSION + 1}.*reads version {FORMAT_VERSION}"
    with pytest.raises(LongViewModelError, match=expected):
        load_long_view_model(path)


def test_load_unknown_kind(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"format_version": FORMAT_VERSION, "kind": "gbdt"}), encoding="utf-8")
    with pytest.raises(LongViewModelError, match="unknown kind 'gbdt'"):
        load_long_view_model(path)


def test_load_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    data = make_model().to_dict()
    del data["weights"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LongViewModelError, match="missing field 'weights'.*dreamumm train-long-view"):
        load_long_view_model(path)


def test_load_weight_count_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    data = make_model().to_dict()
    data["weights"] = data["weights"][:-1]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LongViewModelError, match="invalid field: weights must have one value per feature"):
        LogisticLongViewModel.load(path)


def test_load_unknown_feature(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    data = make_model().to_dict()
    data["feature_names"][0] = "watch_hour"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LongViewModelError, match="unknown feature name.*watch_hour"):
        load_long_view_model(path)


def test_load_invalid_threshold_settings(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    data = make_model().to_dict()
    data["preference"]["threshold"] = {"rule": "duration_fraction", "floor_ms": 9.0, "cap_ms": 1.0}
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LongViewModelError, match="invalid field"):
        load_long_view_model(path)


def test_logistic_load_rejects_constant_file(tmp_path: Path) -> None:
    path = tmp_path / "constant.json"
    ConstantLongViewModel(0.3).save(path)
    with pytest.raises(LongViewModelError, match="kind 'constant', expected 'logistic_regression'"):
        LogisticLongViewModel.load(path)
