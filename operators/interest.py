"""Per-user DreamUMM interest state and its compact byte encoding.

``InterestAccumulator`` keeps the running sum ``sum_j a_j x_j`` of preference
weights times video embeddings, the total weight ``sum_j a_j``, the event count and
the latest event time. The user's interest vector is the sum scaled to unit length.

Precision: the vector sum and the total weight are float64 in memory. ``to_bytes``
stores the vector as float32 after dividing it by its maximum absolute component,
which is kept as a float64 scale. So encoding cannot overflow, and only components
below about 1e-38 of the largest one underflow to 0. Each encode rounds every
component to float32's 24-bit significand, an error of at most 6e-8 of the largest
component. A job that encodes after every event adds one such
rounding per event. The direction error stays far below the cosine tolerance of
1e-6 used in the tests (checked there for 2,000 encodes in a row), because a
direction error of e radians lowers the cosine by only about e**2 / 2. The total
weight is stored as float64 because it enters the tolerance linearly. Rounding it
to float32 after each of 10,000 events with weights up to 0.2 gave a relative error
of 1.2e-6 in one trial with uniform random weights, above the 1e-6 the tests allow.

Byte format, version 1, all little-endian, ``40 + 4 * dimension`` bytes:

====== ==== =========================================================
offset size field
====== ==== =========================================================
0      2    magic ``b"DU"``
2      1    format version (1)
3      1    flags: bit 0 is set when ``last_event_time_ms`` is present
4      4    dimension, uint32
8      8    event count, int64
16     8    total weight, float64
24     8    scale (maximum absolute component of the sum), float64
32     8    last event time in epoch ms, int64 (0 when absent)
40     4*d  vector sum divided by scale, float32
====== ==== =========================================================
"""

from __future__ import annotations

import logging
import math
import operator
import struct

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["FORMAT_VERSION", "HEADER_SIZE", "InterestAccumulator", "cosine", "normalise"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_MAGIC = b"DU"
_HEADER = struct.Struct("<2sBBIqddq")
HEADER_SIZE = _HEADER.size
"""Size in bytes of the fixed header that precedes the float32 vector."""

_FLAG_HAS_LAST_EVENT_TIME = 0x01
_KNOWN_FLAGS = _FLAG_HAS_LAST_EVENT_TIME
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def normalise(vector: ArrayLike, dtype: DTypeLike = np.float32) -> NDArray[np.floating] | None:
    """Scale a vector to unit L2 norm, or return None when it has no direction.

    Returns None when the vector is all zeros or has a NaN or infinite component.
    The norm is computed after dividing by the largest absolute component, so
    vectors with subnormal or near-maximal float64 components are normalised
    correctly. The result has ``dtype``, float32 by default, and is computed in
    float64 before the conversion.
    """
    values = np.asarray(vector, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"normalise expects a non-empty 1-D vector, got shape {values.shape}")
    if not np.isfinite(values).all():
        return None

    scale = float(np.max(np.abs(values)))
    if scale == 0.0:
        return None

    # Components much smaller than the largest one may underflow to 0, which does
    # not change the direction at float64 precision.
    with np.errstate(under="ignore"):
        scaled = values / scale
        unit = scaled / math.sqrt(float(np.dot(scaled, scaled)))
        return unit.astype(dtype)


def normalise_rows(
    matrix: ArrayLike, dtype: DTypeLike = np.float32
) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
    """Scale every row of a matrix to unit L2 norm, the vectorised form of ``normalise``.

    Returns the normalised rows and a mask of the rows that have a direction. Rows that
    are all zeros or have a NaN or infinite component are left as zeros and are False in
    the mask, where ``normalise`` would return None.
    """
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"normalise_rows expects a 2-D matrix with columns, got shape {values.shape}")
    finite = np.isfinite(values).all(axis=1)
    scales = np.max(np.abs(np.where(finite[:, None], values, 0.0)), axis=1)
    valid = finite & (scales > 0.0)
    units = np.zeros(values.shape, dtype=np.float64)
    with np.errstate(under="ignore"):
        scaled = values[valid] / scales[valid, None]
        units[valid] = scaled / np.sqrt(np.einsum("ij,ij->i", scaled, scaled))[:, None]
    return units.astype(dtype), valid


def cosine(a: ArrayLike, b: ArrayLike) -> float:
    """Return the cosine similarity of two vectors, computed in float64.

    Raises:
        ValueError: if either vector is all zeros or not finite, or the shapes differ.
    """
    unit_a = normalise(a, dtype=np.float64)
    unit_b = normalise(b, dtype=np.float64)
    if unit_a is None or unit_b is None:
        argument = "a" if unit_a is None else "b"
        raise ValueError(f"cosine is undefined: vector {argument} is all zeros or not finite")
    if unit_a.shape != unit_b.shape:
        raise ValueError(f"cosine needs vectors of equal shape, got {unit_a.shape} and {unit_b.shape}")
    return min(1.0, max(-1.0, float(np.dot(unit_a, unit_b))))


def _check_event_time(event_time_ms: int) -> int:
    try:
        time_ms = operator.index(event_time_ms)
    except TypeError:
        raise TypeError(
            f"event_time_ms must be an integer (epoch milliseconds), got {event_time_ms!r}"
        ) from None
    if not _INT64_MIN <= time_ms <= _INT64_MAX:
        raise ValueError(f"event_time_ms must fit in int64, got {time_ms}")
    return time_ms


class InterestAccumulator:
    """Running DreamUMM state of one user: weighted embedding sum and counters.

    Embeddings are used as given, so callers pass unit vectors, because DreamUMM
    weights L2-normalised video embeddings. ``event_count``
    counts every added event, including those with weight 0. ``last_event_time_ms``
    is the latest event time seen, not the time of the latest call, so events
    that arrive out of order do not move it back.
    """

    __slots__ = ("_dimension", "_vector_sum", "_total_weight", "_event_count", "_last_event_time_ms")

    def __init__(self, dimension: int) -> None:
        dim = operator.index(dimension)
        if dim < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension!r}")
        self._dimension = dim
        self._vector_sum: NDArray[np.float64] = np.zeros(dim, dtype=np.float64)
        self._total_weight = 0.0
        self._event_count = 0
        self._last_event_time_ms: int | None = None

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return self._dimension

    @property
    def vector_sum(self) -> NDArray[np.float64]:
        """Copy of the float64 weighted sum of embeddings."""
        return self._vector_sum.copy()

    @property
    def total_weight(self) -> float:
        """Sum of the preference weights added so far."""
        return self._total_weight

    @property
    def event_count(self) -> int:
        """Number of events added so far."""
        return self._event_count

    @property
    def last_event_time_ms(self) -> int | None:
        """Latest event time added, in epoch ms, or None before the first event."""
        return self._last_event_time_ms

    def __repr__(self) -> str:
        return (
            f"InterestAccumulator(dimension={self._dimension}, event_count={self._event_count}, "
            f"total_weight={self._total_weight!r}, last_event_time_ms={self._last_event_time_ms})"
        )

    def _update_last_event_time(self, time_ms: int) -> None:
        if self._last_event_time_ms is None or time_ms > self._last_event_time_ms:
            self._last_event_time_ms = time_ms

    def add(self, weight: float, embedding: ArrayLike, event_time_ms: int) -> None:
        """Add one event with preference ``weight`` and video ``embedding``.

        Raises:
            ValueError: if the weight is negative or not finite, or the embedding
                has the wrong shape or a non-finite component. The state is
                unchanged when this raises.
            TypeError: if ``event_time_ms`` is not an integer.
        """
        weight_value = float(weight)
        if not 0.0 <= weight_value < math.inf:
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        vector = np.asarray(embedding)
        if vector.shape != (self._dimension,):
            raise ValueError(
                f"embedding must have shape ({self._dimension},), got {vector.shape}"
            )
        if not np.isfinite(vector).all():
            raise ValueError("embedding has a NaN or infinite component; fix the embedding table")
        time_ms = _check_event_time(event_time_ms)

        # The product is float64 even for a float32 embedding, so that the sum
        # keeps float64 precision. A tiny weight may underflow to 0, which is harmless.
        with np.errstate(under="ignore"):
            self._vector_sum += vector.astype(np.float64, copy=False) * weight_value
        self._total_weight += weight_value
        self._event_count += 1
        self._update_last_event_time(time_ms)

    def add_many(self, weights: ArrayLike, embeddings: ArrayLike, event_times_ms: ArrayLike) -> None:
        """Add n events at once: weights (n,), embeddings (n, d), integer times (n,).

        Gives the same state as calling ``add`` n times, up to float64 rounding.

        Raises:
            ValueError: on shape mismatch, a negative or non-finite weight, a
                non-finite embedding component, or non-integer event times. The
                state is unchanged when this raises.
        """
        weight_values = np.asarray(weights, dtype=np.float64)
        vectors = np.asarray(embeddings)
        times = np.asarray(event_times_ms)
        if weight_values.ndim != 1:
            raise ValueError(f"weights must be 1-D, got shape {weight_values.shape}")
        count = weight_values.shape[0]
        if vectors.shape != (count, self._dimension):
            raise ValueError(
                f"embeddings must have shape ({count}, {self._dimension}) to match "
                f"{count} weights, got {vectors.shape}"
            )
        if times.shape != (count,):
            raise ValueError(f"event_times_ms must have shape ({count},), got {times.shape}")
        if count == 0:
            return
        if times.dtype.kind not in "iu":
            raise ValueError(
                f"event_times_ms must be an integer array (epoch ms), got dtype {times.dtype}"
            )
        bad_weights = ~((weight_values >= 0.0) & np.isfinite(weight_values))
        if bad_weights.any():
            index = int(np.flatnonzero(bad_weights)[0])
            raise ValueError(
                f"weights must be finite and >= 0, got {float(weight_values[index])!r} at index {index}"
            )
        if not np.isfinite(vectors).all():
            row = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
            raise ValueError(
                f"embedding at row {row} has a NaN or infinite component; fix the embedding table"
            )
        latest = _check_event_time(int(times.max()))

        with np.errstate(under="ignore"):
            self._vector_sum += weight_values @ vectors.astype(np.float64, copy=False)
        self._total_weight += float(weight_values.sum())
        self._event_count += count
        self._update_last_event_time(latest)

    def merge(self, other: InterestAccumulator) -> None:
        """Add the state of ``other`` into this one, as if its events were added here."""
        if other._dimension != self._dimension:
            raise ValueError(
                f"cannot merge accumulators of dimension {other._dimension} into {self._dimension}"
            )
        self._vector_sum += other._vector_sum
        self._total_weight += other._total_weight
        self._event_count += other._event_count
        if other._last_event_time_ms is not None:
            self._update_last_event_time(other._last_event_time_ms)

    def normalised(self) -> NDArray[np.float32] | None:
        """Return the float32 unit interest vector, or None when it is undefined.

        None means the total weight is 0 (no events, or every weight underflowed
        to 0) or the vector sum is 0 or not finite. The result never contains
        NaN or infinity. Callers count the None results in a metric.
        """
        if not self._total_weight > 0.0:
            return None
        unit = normalise(self._vector_sum, dtype=np.float32)
        if unit is None:
            logger.debug(
                "interest vector sum has no direction despite total weight %s over %s events",
                self._total_weight,
                self._event_count,
            )
        return unit

    def to_bytes(self) -> bytes:
        """Encode the state in format version 1 (see the module docstring)."""
        scale = float(np.max(np.abs(self._vector_sum)))
        if not math.isfinite(scale):
            raise ValueError(
                "cannot encode an interest vector sum with a non-finite component"
            )
        flags = 0 if self._last_event_time_ms is None else _FLAG_HAS_LAST_EVENT_TIME
        header = _HEADER.pack(
            _MAGIC,
            FORMAT_VERSION,
            flags,
            self._dimension,
            self._event_count,
            self._total_weight,
            scale,
            0 if self._last_event_time_ms is None else self._last_event_time_ms,
        )
        if scale == 0.0:
            body = np.zeros(self._dimension, dtype="<f4")
        else:
            with np.errstate(under="ignore"):
                body = (self._vector_sum / scale).astype("<f4")
        return header + body.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> InterestAccumulator:
        """Decode a state written by ``to_bytes``.

        Raises:
            ValueError: if the data is truncated, has the wrong magic or an
                unsupported format version, or contains values that ``to_bytes``
                never writes (negative count, non-finite weight or vector).
        """
        raw = bytes(data)
        if len(raw) < HEADER_SIZE:
            raise ValueError(
                f"interest state is {len(raw)} bytes, shorter than the {HEADER_SIZE}-byte header"
            )
        magic, version, flags, dimension, event_count, total_weight, scale, last_time = (
            _HEADER.unpack_from(raw)
        )
        if magic != _MAGIC:
            raise ValueError(
                f"interest state starts with {magic!r}, expected magic {_MAGIC!r}; "
                "the bytes were not written by InterestAccumulator.to_bytes"
            )
        if version != FORMAT_VERSION:
            raise ValueError(
                f"interest state has format version {version}, but this code reads only "
                f"version {FORMAT_VERSION}; upgrade the reader or rebuild the state"
            )
        if flags & ~_KNOWN_FLAGS:
            raise ValueError(f"interest state has unknown flag bits {flags:#04x}")
        if dimension < 1:
            raise ValueError(f"interest state has invalid dimension {dimension}")
        expected_size = HEADER_SIZE + 4 * dimension
        if len(raw) != expected_size:
            raise ValueError(
                f"interest state of dimension {dimension} must be {expected_size} bytes, "
                f"got {len(raw)}"
            )
        if event_count < 0:
            raise ValueError(f"interest state has negative event count {event_count}")
        if not 0.0 <= total_weight < math.inf:
            raise ValueError(f"interest state has invalid total weight {total_weight!r}")
        if not 0.0 <= scale < math.inf:
            raise ValueError(f"interest state has invalid scale {scale!r}")

        body = np.frombuffer(raw, dtype="<f4", count=dimension, offset=HEADER_SIZE)
        if not np.isfinite(body).all() or float(np.max(np.abs(body))) > 1.0:
            raise ValueError("interest state vector has components outside [-1, 1] or not finite")

        state = cls(dimension)
        with np.errstate(under="ignore"):
            state._vector_sum = body.astype(np.float64) * scale
        state._total_weight = total_weight
        state._event_count = event_count
        state._last_event_time_ms = last_time if flags & _FLAG_HAS_LAST_EVENT_TIME else None
        return state
