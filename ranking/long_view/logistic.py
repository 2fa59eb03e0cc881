"""The default long-view model: logistic regression on ``features.compute_features``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from dreamumm.config import PreferenceSettings
from jobs.weighting import build_threshold_rule
from ranking.long_view.features import FEATURE_NAMES, FeatureContext, compute_features
from ranking.long_view.history import WatchHistory
from ranking.long_view.interface import check_candidates
from ranking.long_view.logistic_fit import Standardiser, sigmoid
from ranking.long_view.model_file import (
    FORMAT_VERSION,
    LongViewModelError,
    read_model_file,
    retrain_hint,
    write_model_file,
)
from ranking.long_view.video_stats import VideoStatistics

__all__ = ["LogisticLongViewModel"]

logger = logging.getLogger(__name__)


class LogisticLongViewModel:
    """f_seq as p = sigmoid(intercept + weights . standardise(features)), with its video statistics.

    ``preference`` contains the alpha and threshold rule of the DreamUMM history vector and of the
    long-view share. ``training`` is the JSON-ready record of the data and evaluation of the fit.
    """

    KIND = "logistic_regression"

    def __init__(
        self,
        *,
        feature_names: Sequence[str],
        weights: NDArray[np.float64],
        intercept: float,
        standardiser: Standardiser,
        preference: PreferenceSettings,
        history_limit: int,
        video_statistics: VideoStatistics,
        embedding_model_version: str,
        embedding_dimension: int,
        training: Mapping[str, Any],
    ) -> None:
        names = tuple(feature_names)
        unknown = [name for name in names if name not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"unknown feature name(s) {unknown}; known features are {list(FEATURE_NAMES)}")
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be distinct, got {list(names)}")
        self._feature_names = names
        self._columns = np.array([FEATURE_NAMES.index(name) for name in names], dtype=np.intp)

        count = len(names)
        self._weights = _vector("weights", weights, count)
        self._standardiser = Standardiser(means=_vector("means", standardiser.means, count),
                                          stds=_vector("stds", standardiser.stds, count))
        if (self._standardiser.stds <= 0.0).any():
            raise ValueError("feature stds must be > 0")
        self._intercept = float(intercept)
        if not np.isfinite(self._intercept):
            raise ValueError(f"intercept must be finite, got {intercept!r}")

        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        if embedding_dimension < 1:
            raise ValueError(f"embedding_dimension must be >= 1, got {embedding_dimension}")
        self._preference = preference
        self._history_limit = int(history_limit)
        self._statistics = video_statistics
        self._embedding_model_version = str(embedding_model_version)
        self._embedding_dimension = int(embedding_dimension)
        self._training = dict(training)
        self._context = FeatureContext(
            alpha_per_s=preference.alpha_per_s,
            threshold_rule=build_threshold_rule(preference),
            history_limit=self._history_limit,
            prior_long_view_rate=video_statistics.prior_long_view_rate,
            prior_strength=video_statistics.prior_strength,
        )

    def __repr__(self) -> str:
        return (
            f"LogisticLongViewModel({len(self._feature_names)} features, {len(self._statistics)} videos, "
            f"embedding {self._embedding_model_version})"
        )

    @property
    def embedding_model_version(self) -> str:
        """Embedding model version of the vectors the model was trained on. Callers must pass vectors of this space."""
        return self._embedding_model_version

    @property
    def embedding_dimension(self) -> int:
        """Length of the vectors ``predict`` accepts."""
        return self._embedding_dimension

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the model's features, in weight order."""
        return self._feature_names

    @property
    def weights(self) -> NDArray[np.float64]:
        """Coefficients of the standardised features (a copy)."""
        return self._weights.copy()

    @property
    def intercept(self) -> float:
        """Logit of a pair whose features all equal their training means."""
        return self._intercept

    @property
    def feature_context(self) -> FeatureContext:
        """Settings the features are computed with."""
        return self._context

    @property
    def video_statistics(self) -> VideoStatistics:
        """Per-video durations and counts of the window the model was fit on."""
        return self._statistics

    @property
    def training(self) -> dict[str, Any]:
        """Record of the training data and evaluation (a copy)."""
        return dict(self._training)

    def predict(
        self,
        history: WatchHistory,
        candidate_ids: Sequence[str],
        candidate_vectors: NDArray[np.float32],
    ) -> NDArray[np.float64]:
        """Return the (m,) long-view probabilities of the candidates for this history.

        Raises ValueError when the vectors are not (m, d) for m ids, or d differs from the
        history's or the model's dimension.
        """
        vectors = check_candidates(history, candidate_ids, candidate_vectors, self._embedding_dimension)
        if len(candidate_ids) == 0:
            return np.zeros(0, dtype=np.float64)
        features = compute_features(history, vectors, self._statistics.lookup(candidate_ids), self._context)
        return self.probabilities(features)

    def feature_matrix(
        self,
        history: WatchHistory,
        candidate_ids: Sequence[str],
        candidate_vectors: NDArray[np.float32],
    ) -> NDArray[np.float64]:
        """Return the raw (m, len(FEATURE_NAMES)) features that ``predict`` scores, for inspection."""
        vectors = check_candidates(history, candidate_ids, candidate_vectors, self._embedding_dimension)
        return compute_features(history, vectors, self._statistics.lookup(candidate_ids), self._context)

    def probabilities(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the probabilities of rows of raw features (all FEATURE_NAMES columns)."""
        standardised = self._standardiser.transform(features[:, self._columns])
        return sigmoid(standardised @ self._weights + self._intercept)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready model file content."""
        threshold = self._preference.threshold.model_dump(mode="json")
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.KIND,
            "embedding_model_version": self._embedding_model_version,
            "embedding_dimension": self._embedding_dimension,
            "history_limit": self._history_limit,
            "preference": {"alpha_per_s": self._preference.alpha_per_s, "threshold": threshold},
            "feature_names": list(self._feature_names),
            "weights": self._weights.tolist(),
            "intercept": self._intercept,
            "means": self._standardiser.means.tolist(),
            "stds": self._standardiser.stds.tolist(),
            "training": self._training,
            "video_statistics": self._statistics.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> LogisticLongViewModel:
        """Rebuild a model from ``to_dict`` output.

        Raises:
            LongViewModelError: naming ``source``, if the kind is not this model's or a field is
                missing or invalid.
        """
        kind = data.get("kind")
        if kind != cls.KIND:
            raise LongViewModelError(f"long-view model {source} has kind {kind!r}, expected {cls.KIND!r}")
        try:
            preference = PreferenceSettings(
                alpha_per_s=data["preference"]["alpha_per_s"], threshold=data["preference"]["threshold"]
            )
            return cls(
                feature_names=data["feature_names"],
                weights=np.array(data["weights"], dtype=np.float64),
                intercept=data["intercept"],
                standardiser=Standardiser(means=np.array(data["means"], dtype=np.float64),
                                          stds=np.array(data["stds"], dtype=np.float64)),
                preference=preference,
                history_limit=int(data["history_limit"]),
                video_statistics=VideoStatistics.from_dict(data["video_statistics"]),
                embedding_model_version=data["embedding_model_version"],
                embedding_dimension=int(data["embedding_dimension"]),
                training=data.get("training", {}),
            )
        except KeyError as error:
            raise LongViewModelError(f"long-view model {source} is missing field {error}") from error
        except (TypeError, ValueError, ValidationError) as error:
            raise LongViewModelError(f"long-view model {source} has an invalid field: {error}") from error

    def save(self, path: str | Path) -> None:
        """Write the model file to ``path``, replacing it atomically."""
        write_model_file(path, self.to_dict())
        logger.info("wrote long-view model to %s", path)

    @classmethod
    def load(cls, path: str | Path) -> LogisticLongViewModel:
        """Read a model file written by ``save``.

        Raises:
            LongViewModelError: if the file is missing, corrupt, of another format version or
                kind, or has an invalid field.
        """
        data = read_model_file(path)
        try:
            return cls.from_dict(data, source=f"file {path}")
        except LongViewModelError as error:
            raise LongViewModelError(f"{error}; {retrain_hint(Path(path))}") from error


def _vector(name: str, values: NDArray[np.float64], count: int) -> NDArray[np.float64]:
    array = np.array(values, dtype=np.float64)
    if array.shape != (count,):
        raise ValueError(f"{name} must have one value per feature, shape ({count},), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array
