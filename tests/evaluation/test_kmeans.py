"""Tests for evaluation.kmeans: known clusterings, reproducibility and input checks."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from numpy.typing import NDArray

from evaluation.kmeans import kmeans

LINE_POINTS = np.array([[0.0], [1.0], [10.0], [11.0]])


def blobs(centres: list[list[float]], per_blob: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Return points scattered with standard deviation 0.1 around each centre, and each point's blob."""
    generator = np.random.default_rng(seed)
    points = np.vstack([generator.normal(centre, 0.1, size=(per_blob, len(centre))) for centre in centres])
    return points, np.repeat(np.arange(len(centres)), per_blob)


def same_partition(left: NDArray[np.intp], right: NDArray[np.intp]) -> bool:
    """Whether two labelings group the points alike, whatever numbers they give the groups."""
    pairs = set(zip(left.tolist(), right.tolist()))
    return len(pairs) == len(set(left.tolist())) == len(set(right.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_kmeans_recovers_three_blobs(seed: int) -> None:
    points, blob_of_point = blobs([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], per_blob=30, seed=seed)

    clustering = kmeans(points, 3, seed=seed)

    assert same_partition(clustering.labels, blob_of_point)
    assert clustering.converged


def test_kmeans_recovers_two_blobs() -> None:
    points, blob_of_point = blobs([[5.0, 5.0, 5.0], [-5.0, -5.0, -5.0]], per_blob=20, seed=7)

    clustering = kmeans(points, 2, seed=3)

    assert same_partition(clustering.labels, blob_of_point)


def test_same_partition_detects_split() -> None:
    # Guard for the helper itself: a split or merged group is not the same partition.
    assert same_partition(np.array([0, 0, 1, 1]), np.array([5, 5, 2, 2]))
    assert not same_partition(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert not same_partition(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]))


@pytest.mark.parametrize("seed", range(10))
def test_kmeans_line_hand_case(seed: int) -> None:
    # {0, 1} and {10, 11}: centres 0.5 and 10.5, inertia 4 x 0.5^2 = 1.0, whatever the start.
    clustering = kmeans(LINE_POINTS, 2, seed=seed)

    assert sorted(clustering.centres[:, 0].tolist()) == pytest.approx([0.5, 10.5])
    assert clustering.inertia == pytest.approx(1.0)
    assert same_partition(clustering.labels, np.array([0, 0, 1, 1]))
    assert clustering.converged


def test_kmeans_centre_of_each_label() -> None:
    clustering = kmeans(LINE_POINTS, 2, seed=0)

    for cluster in range(2):
        members = LINE_POINTS[clustering.labels == cluster, 0]
        assert clustering.centres[cluster, 0] == pytest.approx(members.mean())


def test_kmeans_same_seed_same_result() -> None:
    generator = np.random.default_rng(11)
    points = generator.normal(size=(200, 5))

    first = kmeans(points, 6, seed=42)
    second = kmeans(points, 6, seed=42)

    assert np.array_equal(first.labels, second.labels)
    assert np.array_equal(first.centres, second.centres)
    assert first.inertia == second.inertia
    assert first.iterations == second.iterations


def test_kmeans_one_cluster() -> None:
    clustering = kmeans(LINE_POINTS, 1, seed=0)

    assert clustering.centres[:, 0].tolist() == pytest.approx([5.5])
    # Squared distances to 5.5: 30.25 + 20.25 + 20.25 + 30.25 = 101.
    assert clustering.inertia == pytest.approx(101.0)


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_every_cluster_nonempty(seed: int) -> None:
    generator = np.random.default_rng(seed)
    points = generator.uniform(size=(150, 3))

    clustering = kmeans(points, 20, seed=seed)

    counts = np.bincount(clustering.labels, minlength=20)
    assert clustering.converged
    assert (counts > 0).all()
    assert clustering.labels.max() < 20


def test_kmeans_duplicates_fill_clusters() -> None:
    # 50 copies of the origin and three other points: k = 4 distinct points make 4 clusters of
    # one distinct point each, with inertia 0.
    points = np.vstack([np.zeros((50, 2)), [[1.0, 0.0], [0.0, 1.0], [100.0, 100.0]]])

    clustering = kmeans(points, 4, seed=5)

    counts = np.bincount(clustering.labels, minlength=4)
    assert (counts > 0).all()
    assert sorted(counts.tolist()) == [1, 1, 1, 50]
    assert clustering.inertia == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_kmeans_grid_points_nonempty(seed: int) -> None:
    # Few distinct points with many repeats make empty clusters likely during the iterations.
    generator = np.random.default_rng(seed)
    points = generator.integers(0, 4, size=(int(generator.integers(5, 30)), 2)).astype(float)
    distinct = np.unique(points, axis=0).shape[0]
    k = int(generator.integers(1, distinct + 1))

    clustering = kmeans(points, k, seed=seed)

    assert clustering.converged
    assert (np.bincount(clustering.labels, minlength=k) > 0).all()


def test_kmeans_iteration_limit(caplog: pytest.LogCaptureFixture) -> None:
    # The first iteration always changes the assignment (from none), so one iteration never converges.
    points, _ = blobs([[0.0, 0.0], [10.0, 0.0]], per_blob=10, seed=1)

    with caplog.at_level(logging.WARNING, logger="evaluation.kmeans"):
        clustering = kmeans(points, 2, seed=0, max_iterations=1)

    assert not clustering.converged
    assert clustering.iterations == 1
    assert "did not converge" in caplog.text


def test_kmeans_iterations_counted() -> None:
    # Iteration 1 assigns the points and iteration 2 finds the assignment unchanged at the earliest.
    clustering = kmeans(LINE_POINTS, 2, seed=0)

    assert clustering.iterations >= 2


def test_kmeans_too_few_distinct_points() -> None:
    points = [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]

    with pytest.raises(ValueError, match="at least k = 3 distinct points, got 2"):
        kmeans(points, 3, seed=0)


def test_kmeans_rejects_small_k() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        kmeans(LINE_POINTS, 0, seed=0)


def test_kmeans_rejects_nonfinite_points() -> None:
    with pytest.raises(ValueError, match="finite 2-D"):
        kmeans([[0.0, 1.0], [math.nan, 2.0]], 1, seed=0)


def test_kmeans_rejects_one_dimension() -> None:
    with pytest.raises(ValueError, match="finite 2-D"):
        kmeans([0.0, 1.0, 10.0], 2, seed=0)
