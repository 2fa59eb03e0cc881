"""Per-user interest state of the baselines: its bytes in RocksDB, its update, and the output records.

The state and its update follow the Flink job's ``WeightedVectorSum``
(``jvm/src/main/java/dev/dreamumm/flink/WeightedVectorSum.java``): a float32 sum of
``weight * unit vector``, the float64 total weight, the event count, the latest event time and
the embedding model version. An event of another model version restarts the sum with that
event, and the events summed before move to the superseded count.

``operators.InterestAccumulator`` does not fit, because its encoding has no model version and
no superseded count. The stored value is therefore this layout, little-endian,
``32 + 4 * dimension`` bytes plus the model version:

====== ==== ==============================================================
offset size field
====== ==== ==============================================================
0      8    total weight, float64
8      8    event count since the last model version change, int64
16     8    latest event time in epoch ms, int64
24     8    superseded event count, int64
32     4*d  sum of weight * unit vector, float32
32+4d  rest embedding model version, UTF-8
====== ==== ==============================================================
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benchmarks.baselines.embedding_table import EmbeddingTable
from operators import normalise, normalise_rows
from schemas.user_interest_encoder import UserInterestEncoder

_HEADER = struct.Struct("<dqqq")
_INT64_MIN = -(2**63)


def state_dtype(dimension: int) -> np.dtype:
    """Return the numpy structured type of the fixed-size part of a stored state."""
    return np.dtype([
        ("total_weight", "<f8"),
        ("event_count", "<i8"),
        ("last_event_time_ms", "<i8"),
        ("superseded_event_count", "<i8"),
        ("vector_sum", "<f4", (dimension,)),
    ])


@dataclass(slots=True)
class InterestState:
    """The running state of one user, updated one event at a time."""

    vector_sum: NDArray[np.float32]
    total_weight: float
    event_count: int
    last_event_time_ms: int
    superseded_event_count: int
    model_version: str

    @classmethod
    def empty(cls, dimension: int) -> InterestState:
        """Return the state of a user without events, whose first event sets the model version."""
        return cls(np.zeros(dimension, dtype=np.float32), 0.0, 0, _INT64_MIN, 0, "")

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int) -> InterestState:
        """Decode a state written by ``to_bytes``, raising ValueError when ``data`` is too short."""
        fixed_size = _HEADER.size + 4 * dimension
        if len(data) < fixed_size:
            raise ValueError(f"interest state of {len(data)} bytes is shorter than the {fixed_size} bytes "
                             f"of dimension {dimension}")
        total_weight, event_count, last_event_time_ms, superseded = _HEADER.unpack_from(data)
        vector_sum = np.frombuffer(data, dtype="<f4", count=dimension, offset=_HEADER.size)
        return cls(vector_sum, total_weight, event_count, last_event_time_ms, superseded,
                   data[fixed_size:].decode("utf-8"))

    def to_bytes(self) -> bytes:
        """Encode the state in the module's layout."""
        header = _HEADER.pack(self.total_weight, self.event_count, self.last_event_time_ms,
                              self.superseded_event_count)
        return header + self.vector_sum.astype("<f4", copy=False).tobytes() + self.model_version.encode("utf-8")

    def encode(self, encoder: UserInterestEncoder, user_id: str, emit_time_ms: int) -> bytes | None:
        """Encode the user's UserInterest value, or return None (a tombstone) when the sum has no direction.

        The single-vector form of ``encode_user_interests``: ``normalise`` is the scalar form of
        ``normalise_rows``, and costs less for one vector.
        """
        unit = normalise(self.vector_sum) if self.total_weight > 0 else None
        if unit is None:
            return None
        return encoder.encode_many([user_id], unit[None, :], [self.total_weight], [self.event_count],
                                   [self.last_event_time_ms], emit_time_ms, [self.model_version],
                                   [self.superseded_event_count])[0]

    def add(self, weight: float, unit_vector: NDArray[np.float32], event_time_ms: int, model_version: str) -> None:
        """Add one event, restarting the sum first when its model version differs from the state's."""
        if model_version != self.model_version:
            self.superseded_event_count += self.event_count
            self.vector_sum = np.zeros_like(self.vector_sum)
            self.total_weight = 0.0
            self.event_count = 0
            self.last_event_time_ms = _INT64_MIN
            self.model_version = model_version
        # WeightedVectorSum computes (float) (sum + a * x) in double, one rounding per event.
        with np.errstate(under="ignore"):
            self.vector_sum = (self.vector_sum.astype(np.float64) + weight * unit_vector.astype(np.float64)).astype(
                np.float32)
        self.total_weight += weight
        self.event_count += 1
        self.last_event_time_ms = max(self.last_event_time_ms, event_time_ms)


@dataclass
class StateBatch:
    """The states of the distinct users of one batch, in the order of ``user_ids``."""

    user_ids: list[str]
    fields: NDArray[np.void]
    """One ``state_dtype`` row per user, all zeros for a user without stored state."""
    version_codes: NDArray[np.int64]
    """Per user, the index of its model version in the embedding table, -1 when none or unknown."""
    new_users: int
    """Users without stored state before this batch."""


def decode_states(user_ids: list[str], stored: Sequence[bytes | None], dimension: int,
                  table: EmbeddingTable) -> StateBatch:
    """Decode the stored states of a batch's users (None for a user without state) in one numpy call."""
    dtype = state_dtype(dimension)
    present = [index for index, value in enumerate(stored) if value is not None]
    fields = np.zeros(len(user_ids), dtype=dtype)
    version_codes = np.full(len(user_ids), -1, dtype=np.int64)
    if present:
        fixed_part = b"".join(stored[index][:dtype.itemsize] for index in present)
        fields[present] = np.frombuffer(fixed_part, dtype=dtype)
        code_of = {version: code for code, version in enumerate(table.model_versions)}
        for index in present:
            version_codes[index] = code_of.get(stored[index][dtype.itemsize:].decode("utf-8"), -1)
    return StateBatch(user_ids, fields, version_codes, len(user_ids) - len(present))


def encode_states(batch: StateBatch, table: EmbeddingTable) -> list[bytes]:
    """Encode every state of ``batch`` in the module's layout."""
    fixed_part = batch.fields.tobytes()
    size = batch.fields.dtype.itemsize
    versions = [version.encode("utf-8") for version in table.model_versions]
    return [fixed_part[row * size:(row + 1) * size] + versions[code]
            for row, code in enumerate(batch.version_codes.tolist())]


def add_events(batch: StateBatch, user_indices: NDArray[np.int64], weights: NDArray[np.float64],
               embedding_rows: NDArray[np.int64], event_times_ms: NDArray[np.int64], table: EmbeddingTable) -> None:
    """Add a batch of events, given in arrival order, to the users' states in place.

    ``user_indices`` maps each event to its user's row of ``batch``, and every row has at least
    one event. The result equals adding the events one by one, as ``InterestState.add`` does,
    except that each user's vector sum is rounded to float32 once per batch instead of once per
    event. Only the events after a user's last change of model version in the batch are summed.
    The sum restarts when there is such a change, or when the stored state has another version.
    """
    users_count = len(batch.user_ids)
    order = np.argsort(user_indices, kind="stable")
    users = user_indices[order]
    versions = table.version_codes[embedding_rows[order]]

    user_starts = np.ones(len(users), dtype=bool)
    user_starts[1:] = users[1:] != users[:-1]
    run_starts = user_starts.copy()
    run_starts[1:] |= versions[1:] != versions[:-1]
    run_ids = np.cumsum(run_starts)
    first_positions = np.flatnonzero(user_starts)
    if len(first_positions) != users_count:
        raise ValueError(f"{users_count} users in the batch but events for {len(first_positions)} of them")
    last_positions = np.append(first_positions[1:], len(users)) - 1

    # The events of each user's last version run are a contiguous suffix of its sorted events.
    in_last_run = run_ids == run_ids[last_positions][users]
    events_per_user = last_positions - first_positions + 1
    last_run_counts = np.bincount(users[in_last_run], minlength=users_count)
    final_versions = versions[last_positions]
    restarted = (last_run_counts < events_per_user) | (batch.version_codes != final_versions)

    summed = order[in_last_run]
    segment_starts = np.cumsum(last_run_counts) - last_run_counts
    with np.errstate(under="ignore"):
        contributions = table.vectors[embedding_rows[summed]] * weights[summed, None]
        vector_sums = np.add.reduceat(contributions, segment_starts, axis=0)
    weight_sums = np.add.reduceat(weights[summed], segment_starts)
    latest_times = np.maximum.reduceat(event_times_ms[summed], segment_starts)

    fields = batch.fields
    fields["superseded_event_count"] += np.where(
        restarted, fields["event_count"] + events_per_user - last_run_counts, 0)
    kept_sums = np.where(restarted[:, None], 0.0, fields["vector_sum"].astype(np.float64))
    with np.errstate(under="ignore"):
        fields["vector_sum"] = (kept_sums + vector_sums).astype(np.float32)
    fields["total_weight"] = np.where(restarted, 0.0, fields["total_weight"]) + weight_sums
    fields["event_count"] = np.where(restarted, 0, fields["event_count"]) + last_run_counts
    fields["last_event_time_ms"] = np.maximum(np.where(restarted, _INT64_MIN, fields["last_event_time_ms"]),
                                              latest_times)
    batch.version_codes = final_versions


def encode_user_interests(
    encoder: UserInterestEncoder,
    user_ids: Sequence[str],
    vector_sums: NDArray[np.float32],
    total_weights: NDArray[np.float64],
    event_counts: Sequence[int],
    last_event_times_ms: Sequence[int],
    model_versions: Sequence[str],
    superseded_event_counts: Sequence[int],
    emit_time_ms: int,
) -> list[bytes | None]:
    """Normalise the sums and encode one UserInterest value per user, as the Flink job's ``encode_user_interest``.

    A user whose sum has no direction (zero total weight, or a sum that cancels out) gets None,
    which the caller writes as a tombstone.
    """
    units, has_direction = normalise_rows(vector_sums)
    has_direction &= np.asarray(total_weights) > 0
    rows = np.flatnonzero(has_direction).tolist()
    encoded = encoder.encode_many(
        [user_ids[row] for row in rows],
        units[rows],
        [float(total_weights[row]) for row in rows],
        [event_counts[row] for row in rows],
        [last_event_times_ms[row] for row in rows],
        emit_time_ms,
        [model_versions[row] for row in rows],
        [superseded_event_counts[row] for row in rows],
    )
    values: list[bytes | None] = [None] * len(user_ids)
    for row, value in zip(rows, encoded):
        values[row] = value
    return values
