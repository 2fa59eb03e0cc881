"""Tests for InterestAccumulator, its byte encoding and the normalise/cosine helpers."""

from __future__ import annotations

import contextlib
import math
import struct
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from operators.interest import HEADER_SIZE, InterestAccumulator, cosine, normalise

FAST = settings(max_examples=80, deadline=None)


@contextlib.contextmanager
def strict_floating_point() -> Iterator[None]:
    """Turn every numpy floating-point flag and every warning into an error."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


def unit_rows(rng: np.random.Generator, count: int, dimension: int) -> np.ndarray:
    rows = rng.normal(size=(count, dimension))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32)


def reference_sum(weights: list[float], embeddings: np.ndarray) -> list[float]:
    """Weighted sum of the rows with exactly rounded components (math.fsum)."""
    columns = embeddings.astype(np.float64).T
    return [math.fsum(w * float(x) for w, x in zip(weights, column)) for column in columns]


def reference_direction(weights: list[float], embeddings: np.ndarray) -> np.ndarray:
    """Unit vector of ``reference_sum``, scaled first so that squaring cannot underflow."""
    total = reference_sum(weights, embeddings)
    scale = max(abs(c) for c in total)
    scaled = [c / scale for c in total]
    return np.array(scaled) / math.sqrt(math.fsum(c * c for c in scaled))


def is_well_conditioned(weights: list[float], embeddings: np.ndarray) -> bool:
    """Return False when the rows cancel so much that float64 rounding decides the direction.

    With unit rows, rounding moves the sum by about n * 1e-16 * sum(weights), so
    a sum shorter than 1e-9 * sum(weights) has no reliable direction.
    """
    total = reference_sum(weights, embeddings)
    scale = max(abs(c) for c in total)
    if scale == 0.0:
        return False
    norm = scale * math.sqrt(math.fsum((c / scale) ** 2 for c in total))
    return norm > 1e-9 * math.fsum(weights)


@st.composite
def event_batches(draw: st.DrawFn) -> tuple[list[float], np.ndarray, list[int]]:
    dimension = draw(st.integers(min_value=1, max_value=16))
    count = draw(st.integers(min_value=1, max_value=25))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    weights = draw(
        st.lists(
            st.one_of(st.floats(min_value=0.0, max_value=1.0), st.just(5e-324), st.just(0.0)),
            min_size=count,
            max_size=count,
        )
    )
    times = draw(
        st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=count, max_size=count)
    )
    embeddings = unit_rows(np.random.default_rng(seed), count, dimension)
    return weights, embeddings, times


@FAST
@given(batch=event_batches(), permutation_seed=st.integers(min_value=0, max_value=1000))
def test_order_independent(batch: tuple[list[float], np.ndarray, list[int]], permutation_seed: int) -> None:
    weights, embeddings, times = batch
    dimension = embeddings.shape[1]
    order = np.random.default_rng(permutation_seed).permutation(len(weights))

    forward = InterestAccumulator(dimension)
    shuffled = InterestAccumulator(dimension)
    for index in range(len(weights)):
        forward.add(weights[index], embeddings[index], times[index])
    for index in order:
        shuffled.add(weights[index], embeddings[index], times[index])

    assert forward.event_count == shuffled.event_count == len(weights)
    assert forward.last_event_time_ms == shuffled.last_event_time_ms == max(times)
    assert math.isclose(forward.total_weight, shuffled.total_weight, rel_tol=1e-12, abs_tol=1e-300)
    # Rows that cancel to nearly zero leave the direction to rounding, which
    # depends on the order.
    assume(is_well_conditioned(weights, embeddings))
    first, second = forward.normalised(), shuffled.normalised()
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        assert cosine(first, second) >= 1 - 1e-6


@FAST
@given(batch=event_batches())
def test_add_and_add_many_agree(batch: tuple[list[float], np.ndarray, list[int]]) -> None:
    weights, embeddings, times = batch
    dimension = embeddings.shape[1]

    one_by_one = InterestAccumulator(dimension)
    for weight, embedding, time_ms in zip(weights, embeddings, times):
        one_by_one.add(weight, embedding, time_ms)
    batched = InterestAccumulator(dimension)
    batched.add_many(np.array(weights), embeddings, np.array(times, dtype=np.int64))

    assert batched.event_count == one_by_one.event_count
    assert batched.last_event_time_ms == one_by_one.last_event_time_ms
    assert math.isclose(batched.total_weight, one_by_one.total_weight, rel_tol=1e-12, abs_tol=1e-300)
    np.testing.assert_allclose(batched.vector_sum, one_by_one.vector_sum, rtol=1e-9, atol=1e-12)


@FAST
@given(batch=event_batches())
def test_matches_float64_reference(batch: tuple[list[float], np.ndarray, list[int]]) -> None:
    weights, embeddings, times = batch
    accumulator = InterestAccumulator(embeddings.shape[1])
    accumulator.add_many(np.array(weights), embeddings, np.array(times, dtype=np.int64))

    result = accumulator.normalised()

    assert math.isclose(accumulator.total_weight, math.fsum(weights), rel_tol=1e-12, abs_tol=1e-300)
    if math.fsum(weights) == 0.0:
        assert result is None
    if result is not None:
        assert result.dtype == np.float32
        assert abs(float(np.linalg.norm(result.astype(np.float64))) - 1.0) < 1e-6
    if is_well_conditioned(weights, embeddings):
        assert result is not None
        assert cosine(result, reference_direction(weights, embeddings)) >= 1 - 1e-6


@FAST
@given(batch=event_batches())
def test_bytes_round_trip(batch: tuple[list[float], np.ndarray, list[int]]) -> None:
    weights, embeddings, times = batch
    dimension = embeddings.shape[1]
    accumulator = InterestAccumulator(dimension)
    accumulator.add_many(np.array(weights), embeddings, np.array(times, dtype=np.int64))

    with strict_floating_point():
        encoded = accumulator.to_bytes()
        decoded = InterestAccumulator.from_bytes(encoded)

    assert len(encoded) == HEADER_SIZE + 4 * dimension
    assert len(encoded) <= 4 * dimension + 64
    assert decoded.dimension == dimension
    assert decoded.event_count == accumulator.event_count
    assert decoded.total_weight == accumulator.total_weight
    assert decoded.last_event_time_ms == accumulator.last_event_time_ms
    scale = float(np.max(np.abs(accumulator.vector_sum)))
    np.testing.assert_allclose(decoded.vector_sum, accumulator.vector_sum, rtol=0, atol=scale * 2**-24)
    assert decoded.to_bytes() == encoded


def test_empty_round_trip() -> None:
    empty = InterestAccumulator(8)

    decoded = InterestAccumulator.from_bytes(empty.to_bytes())

    assert decoded.event_count == 0
    assert decoded.total_weight == 0.0
    assert decoded.last_event_time_ms is None
    assert decoded.normalised() is None
    assert len(empty.to_bytes()) == HEADER_SIZE + 32


def test_header_size_within_budget() -> None:
    assert HEADER_SIZE <= 64
    assert HEADER_SIZE == 40


def test_extreme_sums_round_trip() -> None:
    dimension = 4
    tiny = InterestAccumulator(dimension)
    tiny.add(5e-324, np.array([1.0, 0.0, 0.0, 0.0]), 1)
    tiny.add(1e-310, np.array([0.0, 0.6, 0.8, 0.0]), 2)
    large = InterestAccumulator(dimension)
    large.add_many(np.ones(1000), np.tile(np.array([0.5, 0.5, 0.5, 0.5], np.float32), (1000, 1)), np.arange(1000))

    with strict_floating_point():
        tiny_decoded = InterestAccumulator.from_bytes(tiny.to_bytes())
        large_decoded = InterestAccumulator.from_bytes(large.to_bytes())
        tiny_vector = tiny_decoded.normalised()
        large_vector = large_decoded.normalised()

    assert tiny_vector is not None
    np.testing.assert_allclose(tiny_vector, [0.0, 0.6, 0.8, 0.0], atol=1e-6)
    assert large_vector is not None
    np.testing.assert_allclose(large_vector, [0.5, 0.5, 0.5, 0.5], atol=1e-7)
    assert large_decoded.total_weight == 1000.0


def test_encode_after_every_event_stays_within_tolerance() -> None:
    rng = np.random.default_rng(7)
    dimension = 64
    count = 2000
    embeddings = unit_rows(rng, count, dimension)
    weights = rng.uniform(0.0, 1.0, size=count)

    state = InterestAccumulator(dimension).to_bytes()
    for index in range(count):
        accumulator = InterestAccumulator.from_bytes(state)
        accumulator.add(float(weights[index]), embeddings[index], 1_650_000_000_000 + index)
        state = accumulator.to_bytes()
    final = InterestAccumulator.from_bytes(state)

    expected = reference_direction(weights.tolist(), embeddings)
    result = final.normalised()
    assert result is not None
    assert cosine(result, expected) >= 1 - 1e-6
    assert math.isclose(final.total_weight, math.fsum(weights.tolist()), rel_tol=1e-6)
    assert final.event_count == count


def test_zero_weight_gives_none() -> None:
    accumulator = InterestAccumulator(3)
    accumulator.add(0.0, np.array([1.0, 0.0, 0.0]), 5)

    assert accumulator.normalised() is None
    assert accumulator.event_count == 1
    assert accumulator.last_event_time_ms == 5


def test_opposite_embeddings_give_none() -> None:
    accumulator = InterestAccumulator(2)
    accumulator.add(0.5, np.array([1.0, 0.0]), 1)
    accumulator.add(0.5, np.array([-1.0, 0.0]), 2)

    assert accumulator.total_weight == 1.0
    assert accumulator.normalised() is None


@FAST
@given(
    weights=st.lists(
        st.floats(min_value=0.0, max_value=1.0) | st.sampled_from([0.0, 5e-324, 1e-308]),
        min_size=0,
        max_size=10,
    ),
    values=st.lists(st.floats(min_value=-1e30, max_value=1e30), min_size=30, max_size=30),
)
def test_normalised_never_nan_or_inf(weights: list[float], values: list[float]) -> None:
    embeddings = np.array(values, dtype=np.float64).reshape(10, 3)
    accumulator = InterestAccumulator(3)

    with strict_floating_point():
        for index, weight in enumerate(weights):
            accumulator.add(weight, embeddings[index], index)
        result = accumulator.normalised()

    if result is not None:
        assert np.isfinite(result).all()
        assert abs(float(np.linalg.norm(result.astype(np.float64))) - 1.0) < 1e-6


def test_last_event_time_is_latest_not_last_added() -> None:
    accumulator = InterestAccumulator(2)
    accumulator.add(0.5, np.array([1.0, 0.0]), 300)
    accumulator.add(0.5, np.array([1.0, 0.0]), 100)
    accumulator.add_many(np.array([0.1]), np.array([[0.0, 1.0]]), np.array([200]))

    assert accumulator.last_event_time_ms == 300


def test_merge_equals_adding_all() -> None:
    rng = np.random.default_rng(3)
    embeddings = unit_rows(rng, 10, 5)
    weights = rng.uniform(size=10)
    times = np.arange(10, dtype=np.int64)
    left, right, combined = InterestAccumulator(5), InterestAccumulator(5), InterestAccumulator(5)
    left.add_many(weights[:4], embeddings[:4], times[:4])
    right.add_many(weights[4:], embeddings[4:], times[4:])
    combined.add_many(weights, embeddings, times)

    left.merge(right)

    assert left.event_count == 10
    assert left.last_event_time_ms == 9
    assert math.isclose(left.total_weight, combined.total_weight, rel_tol=1e-15)
    np.testing.assert_allclose(left.vector_sum, combined.vector_sum, rtol=1e-12)
    with pytest.raises(ValueError, match="dimension 3 into 5"):
        left.merge(InterestAccumulator(3))


@pytest.mark.parametrize(
    ("weight", "embedding", "time_ms", "error", "message"),
    [
        (-0.1, [1.0, 0.0], 1, ValueError, "weight must be a finite number >= 0, got -0.1"),
        (math.nan, [1.0, 0.0], 1, ValueError, "weight"),
        (math.inf, [1.0, 0.0], 1, ValueError, "weight"),
        (0.5, [1.0, 0.0, 0.0], 1, ValueError, r"shape \(2,\), got \(3,\)"),
        (0.5, [math.nan, 0.0], 1, ValueError, "NaN or infinite"),
        (0.5, [1.0, 0.0], 1.5, TypeError, "event_time_ms must be an integer"),
        (0.5, [1.0, 0.0], 2**63, ValueError, "int64"),
    ],
)
def test_add_rejects_invalid_input(
    weight: float, embedding: list[float], time_ms: int, error: type[Exception], message: str
) -> None:
    accumulator = InterestAccumulator(2)
    accumulator.add(0.25, np.array([0.0, 1.0]), 10)
    before = accumulator.to_bytes()

    with pytest.raises(error, match=message):
        accumulator.add(weight, np.array(embedding), time_ms)

    assert accumulator.to_bytes() == before


def test_add_many_rejects_invalid_input() -> None:
    accumulator = InterestAccumulator(2)
    good_embeddings = np.eye(2)
    good_times = np.array([1, 2])
    before = accumulator.to_bytes()

    with pytest.raises(ValueError, match=r"-1.0 at index 1"):
        accumulator.add_many(np.array([0.5, -1.0]), good_embeddings, good_times)
    with pytest.raises(ValueError, match=r"shape \(2, 2\) to match 2 weights"):
        accumulator.add_many(np.array([0.5, 0.5]), np.eye(3), good_times)
    with pytest.raises(ValueError, match="row 1"):
        accumulator.add_many(np.array([0.5, 0.5]), np.array([[1.0, 0.0], [np.inf, 0.0]]), good_times)
    with pytest.raises(ValueError, match="integer array"):
        accumulator.add_many(np.array([0.5, 0.5]), good_embeddings, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"event_times_ms must have shape \(2,\)"):
        accumulator.add_many(np.array([0.5, 0.5]), good_embeddings, np.array([1]))

    assert accumulator.to_bytes() == before


def test_add_many_empty_is_noop() -> None:
    accumulator = InterestAccumulator(2)

    accumulator.add_many(np.empty(0), np.empty((0, 2)), np.empty(0, dtype=np.int64))

    assert accumulator.event_count == 0
    assert accumulator.last_event_time_ms is None


def test_invalid_dimension_raises() -> None:
    with pytest.raises(ValueError, match="dimension must be >= 1, got 0"):
        InterestAccumulator(0)


def encoded_sample() -> bytes:
    accumulator = InterestAccumulator(3)
    accumulator.add(0.5, np.array([0.0, 0.6, 0.8]), 42)
    return accumulator.to_bytes()


def with_header_field(data: bytes, offset: int, fmt: str, value: object) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda data: data[:10], "shorter than the 40-byte header"),
        (lambda data: data[:-1], "must be 52 bytes, got 51"),
        (lambda data: data + b"\x00", "must be 52 bytes, got 53"),
        (lambda data: b"XX" + data[2:], "expected magic"),
        (lambda data: with_header_field(data, 2, "<B", 2), "format version 2"),
        (lambda data: with_header_field(data, 3, "<B", 0x82), "unknown flag bits 0x82"),
        (lambda data: with_header_field(data, 4, "<I", 0), "invalid dimension 0"),
        (lambda data: with_header_field(data, 8, "<q", -1), "negative event count -1"),
        (lambda data: with_header_field(data, 16, "<d", math.nan), "invalid total weight nan"),
        (lambda data: with_header_field(data, 16, "<d", -1.0), "invalid total weight -1.0"),
        (lambda data: with_header_field(data, 24, "<d", math.inf), "invalid scale inf"),
        (lambda data: with_header_field(data, 40, "<f", 2.0), r"outside \[-1, 1\]"),
        (lambda data: with_header_field(data, 44, "<f", math.nan), "not finite"),
    ],
)
def test_from_bytes_rejects_corrupt_state(corrupt: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InterestAccumulator.from_bytes(corrupt(encoded_sample()))


def test_from_bytes_accepts_memoryview() -> None:
    data = encoded_sample()

    decoded = InterestAccumulator.from_bytes(memoryview(data))

    assert decoded.last_event_time_ms == 42
    assert decoded.total_weight == 0.5


def test_normalise_cases() -> None:
    with strict_floating_point():
        assert normalise([0.0, 0.0]) is None
        assert normalise([math.nan, 1.0]) is None
        assert normalise([math.inf, 1.0]) is None
        subnormal = normalise([5e-324, 0.0])
        huge = normalise([1.7e308, 1.7e308])
        mixed = normalise([1e300, 1e-300])

    assert subnormal is not None
    assert list(subnormal) == [1.0, 0.0]
    assert huge is not None
    np.testing.assert_allclose(huge, [math.sqrt(0.5)] * 2, rtol=1e-7)
    assert mixed is not None
    assert list(mixed) == [1.0, 0.0]
    result = normalise([3.0, 4.0], dtype=np.float64)
    assert result is not None
    assert result.dtype == np.float64
    assert list(result) == [0.6, 0.8]
    with pytest.raises(ValueError, match="non-empty 1-D"):
        normalise([])


def test_cosine_cases() -> None:
    assert cosine([1.0, 0.0], [2.0, 0.0]) == 1.0
    assert cosine([1.0, 0.0], [0.0, 3.0]) == 0.0
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0, abs=1e-15)
    with pytest.raises(ValueError, match="vector b is all zeros"):
        cosine([1.0, 0.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="equal shape"):
        cosine([1.0, 0.0], [1.0, 0.0, 0.0])
