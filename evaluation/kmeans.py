"""K-means clustering of video embeddings, which the diversity metrics count clusters of."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Clustering", "kmeans"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clustering:
    """Result of ``kmeans``."""

    centres: NDArray[np.float64]
    """(k, d) cluster centres."""
    labels: NDArray[np.intp]
    """Cluster of each input point."""
    inertia: float
    """Sum of squared distances of the points to their centres."""
    iterations: int
    converged: bool
    """Whether an iteration changed no assignment before the iteration limit."""


def kmeans(points: ArrayLike, k: int, *, seed: int, max_iterations: int = 100) -> Clustering:
    """Cluster points into ``k`` groups with k-means++ starts and Lloyd iterations.

    The same seed gives the same clustering. A cluster that loses all its points takes the point
    farthest from its centre, so every cluster keeps at least one point.

    Raises:
        ValueError: if ``points`` is not a 2-D finite array with at least ``k`` distinct rows,
            or ``k`` < 1.
    """
    data = np.asarray(points, dtype=np.float64)
    if data.ndim != 2 or not np.isfinite(data).all():
        raise ValueError(f"points must be a finite 2-D array, got shape {data.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    distinct = np.unique(data, axis=0).shape[0]
    if distinct < k:
        raise ValueError(f"k-means needs at least k = {k} distinct points, got {distinct}; lower the cluster count")

    generator = np.random.default_rng(seed)
    centres = _kmeans_plus_plus(data, k, generator)
    labels = np.full(len(data), -1, dtype=np.intp)
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        distances = _squared_distances(data, centres)
        new_labels = np.argmin(distances, axis=1)
        if np.array_equal(new_labels, labels):
            converged = True
            break
        labels = new_labels
        centres = _update_centres(data, labels, centres, distances)
    inertia = float(_squared_distances(data, centres)[np.arange(len(data)), labels].sum())
    if not converged:
        logger.warning("k-means did not converge in %s iterations; the clusters are those of the last one",
                       max_iterations)
    return Clustering(centres=centres, labels=labels, inertia=inertia, iterations=iteration, converged=converged)


def _kmeans_plus_plus(data: NDArray[np.float64], k: int, generator: np.random.Generator) -> NDArray[np.float64]:
    """Choose starting centres, each next one with probability proportional to its squared distance."""
    centres = [data[generator.integers(len(data))]]
    closest = ((data - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k:
        total = closest.sum()
        chosen = data[generator.choice(len(data), p=closest / total)]
        centres.append(chosen)
        closest = np.minimum(closest, ((data - chosen) ** 2).sum(axis=1))
    return np.vstack(centres)


def _squared_distances(data: NDArray[np.float64], centres: NDArray[np.float64]) -> NDArray[np.float64]:
    cross = data @ centres.T
    distances = (data ** 2).sum(axis=1)[:, None] - 2.0 * cross + (centres ** 2).sum(axis=1)[None, :]
    return np.maximum(distances, 0.0)


def _update_centres(data: NDArray[np.float64], labels: NDArray[np.intp], centres: NDArray[np.float64],
                    distances: NDArray[np.float64]) -> NDArray[np.float64]:
    k = len(centres)
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros_like(centres)
    np.add.at(sums, labels, data)
    updated = centres.copy()
    filled = counts > 0
    updated[filled] = sums[filled] / counts[filled, None]
    own_distance = distances[np.arange(len(data)), labels]
    reassigned_points: set[int] = set()
    for cluster in np.flatnonzero(~filled):
        for point in np.argsort(-own_distance):
            if int(point) not in reassigned_points and not any(np.array_equal(data[point], centre) for centre in updated):
                updated[cluster] = data[point]
                reassigned_points.add(int(point))
                break
    return updated
