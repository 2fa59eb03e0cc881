"""Content-feature video embeddings built by signed feature hashing.

The KuaiRand sample has no content vectors, so these vectors stand in for the
output of a multimodal model. Each video is described by tokens of the form
``field=value``:

- ``tag=<id>`` for each tag id in the comma-separated ``tag`` column,
- ``video_type=<value>`` (NORMAL, AD, UNKNOWN) and ``upload_type=<value>``,
- ``duration_bucket=<k>`` with ``k = floor(log_b(duration in seconds))``, so the
  buckets are log-spaced with base ``b = duration_bucket_base``,
- ``music_type=<value>``,
- ``aspect=portrait|square|landscape`` from width / height (below 0.95 is
  portrait, above 1.05 is landscape).

A missing or unusable value gives the token ``field=<missing>``, so every field
contributes and every video gets a non-zero vector. In KuaiRand a missing
duration marks an image post.

Each token maps to a fixed unit vector: ``hashes_per_feature`` positions of a
``dimension``-long vector, each set to +1 or -1, chosen by BLAKE2b of the salt,
the position number and the token. Python's ``hash()`` is not used because it
changes between processes. A video's vector is the weighted sum of its token
vectors, L2-normalised and stored as float32. The ``n`` tags of a video each get
weight ``tag_weight / sqrt(n)``, so the tag part has about the same length
whatever the number of tags. Other fields get their field weight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from embeddings.video_table import VIDEO_TABLE_COLUMNS, check_columns

__all__ = [
    "ContentEmbeddingConfig",
    "build_content_embeddings",
    "model_version",
    "tag_vectors",
    "video_tokens",
]

logger = logging.getLogger(__name__)

MISSING = "<missing>"
"""Value part of the token for a missing field, as in ``tag=<missing>``."""

_PORTRAIT_BELOW = 0.95
_LANDSCAPE_ABOVE = 1.05
_WEIGHT_FIELDS = (
    "tag_weight",
    "video_type_weight",
    "upload_type_weight",
    "duration_weight",
    "music_type_weight",
    "aspect_weight",
)


@dataclass(frozen=True)
class ContentEmbeddingConfig:
    """Settings of the content embedding. Every field enters ``model_version``."""

    dimension: int = 64
    salt: str = "dreamumm-content"
    hashes_per_feature: int = 4
    tag_weight: float = 3.0
    video_type_weight: float = 1.0
    upload_type_weight: float = 1.0
    duration_weight: float = 1.0
    music_type_weight: float = 0.5
    aspect_weight: float = 0.5
    duration_bucket_base: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.dimension, int) or self.dimension < 2:
            raise ValueError(f"dimension must be an integer >= 2, got {self.dimension!r}")
        if not isinstance(self.hashes_per_feature, int) or not 1 <= self.hashes_per_feature <= self.dimension:
            raise ValueError(
                f"hashes_per_feature must be an integer from 1 to dimension ({self.dimension}), "
                f"got {self.hashes_per_feature!r}"
            )
        for name in _WEIGHT_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= float(value) < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            # Store floats, so that 3 and 3.0 give the same model_version.
            object.__setattr__(self, name, float(value))
        if all(float(getattr(self, name)) == 0.0 for name in _WEIGHT_FIELDS):
            raise ValueError("at least one feature weight must be > 0, but all are 0")
        if not 1.0 < float(self.duration_bucket_base) < math.inf:
            raise ValueError(
                f"duration_bucket_base must be a finite number > 1, got {self.duration_bucket_base!r}"
            )
        object.__setattr__(self, "duration_bucket_base", float(self.duration_bucket_base))


def model_version(config: ContentEmbeddingConfig) -> str:
    """Return an id such as ``content-hash-v1-d64-1a2b3c4d`` that changes with the config.

    The last part is a BLAKE2b digest of all config fields, so vectors built with
    different settings never share a version.
    """
    canonical = json.dumps(dataclasses.asdict(config), sort_keys=True)
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=4).hexdigest()
    return f"content-hash-v1-d{config.dimension}-{digest}"


def _token_vector(token: str, config: ContentEmbeddingConfig) -> NDArray[np.float64]:
    """Return the float64 unit vector of one token."""
    vector = np.zeros(config.dimension, dtype=np.float64)
    position = 0
    # Repeated indices with opposite signs can cancel, so positions are drawn
    # until the vector is non-zero. With distinct indices the first k suffice.
    while position < config.hashes_per_feature or not vector.any():
        digest = hashlib.blake2b(
            f"{config.salt}\x1f{position}\x1f{token}".encode("utf-8"), digest_size=8
        ).digest()
        value = int.from_bytes(digest, "little")
        sign = 1.0 if value & 1 else -1.0
        vector[(value >> 1) % config.dimension] += sign
        position += 1
    return vector / np.linalg.norm(vector)


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _category_text(value: object) -> str:
    """Format a category value: 9.0 becomes "9", text is stripped."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _tag_ids(value: object) -> list[str]:
    if _is_missing(value):
        return []
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [_category_text(float(value))]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _positive_number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if 0.0 < number < math.inf else None


def _duration_token(value: object, base: float) -> str:
    duration_ms = _positive_number(value)
    if duration_ms is None:
        return f"duration_bucket={MISSING}"
    bucket = math.floor(math.log(duration_ms / 1000.0) / math.log(base))
    return f"duration_bucket={bucket}"


def _aspect_token(width: object, height: object) -> str:
    width_px = _positive_number(width)
    height_px = _positive_number(height)
    if width_px is None or height_px is None:
        return f"aspect={MISSING}"
    ratio = width_px / height_px
    if ratio < _PORTRAIT_BELOW:
        return "aspect=portrait"
    if ratio > _LANDSCAPE_ABOVE:
        return "aspect=landscape"
    return "aspect=square"


def _category_token(field: str, value: object) -> str:
    return f"{field}={MISSING}" if _is_missing(value) else f"{field}={_category_text(value)}"


def video_tokens(row: Mapping[str, object], config: ContentEmbeddingConfig) -> list[tuple[str, float]]:
    """Return the weighted ``(token, weight)`` features of one video-table row.

    Tokens of fields whose weight is 0 are left out.
    """
    tokens: list[tuple[str, float]] = []

    tags = _tag_ids(row["tag"])
    if tags:
        tag_weight = config.tag_weight / math.sqrt(len(tags))
        tokens.extend((f"tag={tag}", tag_weight) for tag in tags)
    else:
        tokens.append((f"tag={MISSING}", config.tag_weight))

    tokens.append((_category_token("video_type", row["video_type"]), config.video_type_weight))
    tokens.append((_category_token("upload_type", row["upload_type"]), config.upload_type_weight))
    tokens.append(
        (_duration_token(row["video_duration"], config.duration_bucket_base), config.duration_weight)
    )
    tokens.append((_category_token("music_type", row["music_type"]), config.music_type_weight))
    tokens.append(
        (_aspect_token(row["server_width"], row["server_height"]), config.aspect_weight)
    )
    return [(token, weight) for token, weight in tokens if weight > 0.0]


def build_content_embeddings(
    videos: pd.DataFrame, config: ContentEmbeddingConfig | None = None
) -> dict[int, NDArray[np.float32]]:
    """Build a float32 unit vector for every video in the table.

    ``videos`` needs the columns in ``embeddings.video_table.VIDEO_TABLE_COLUMNS``.
    The result maps ``video_id`` to a vector of length ``config.dimension``. Ids
    must be unique.

    Raises:
        ValueError: if a column is missing or a video id is repeated.
    """
    settings = config or ContentEmbeddingConfig()
    check_columns(videos, VIDEO_TABLE_COLUMNS, "video table")
    if videos["video_id"].duplicated().any():
        repeated = videos.loc[videos["video_id"].duplicated(), "video_id"].iloc[0]
        raise ValueError(f"video table has video_id {repeated} more than once; pass one row per video")
    if len(videos) == 0:
        return {}

    token_rows: dict[str, int] = {}
    row_of_entry: list[int] = []
    token_of_entry: list[int] = []
    weight_of_entry: list[float] = []
    records = videos[list(VIDEO_TABLE_COLUMNS)].to_dict("records")
    for position, row in enumerate(records):
        for token, weight in video_tokens(row, settings):
            token_id = token_rows.setdefault(token, len(token_rows))
            row_of_entry.append(position)
            token_of_entry.append(token_id)
            weight_of_entry.append(weight)

    token_matrix = np.vstack([_token_vector(token, settings) for token in token_rows])
    sums = np.zeros((len(videos), settings.dimension), dtype=np.float64)
    np.add.at(
        sums,
        np.array(row_of_entry, dtype=np.intp),
        np.array(weight_of_entry)[:, None] * token_matrix[np.array(token_of_entry, dtype=np.intp)],
    )

    result: dict[int, NDArray[np.float32]] = {}
    video_ids = videos["video_id"].to_numpy()
    for position, video_id in enumerate(video_ids):
        result[int(video_id)] = _unit_or_fallback(sums[position], int(video_id), settings)
    logger.info(
        "built %s content embeddings from %s distinct tokens, model version %s",
        len(result),
        len(token_rows),
        model_version(settings),
    )
    return result


def _unit_or_fallback(
    vector: NDArray[np.float64], video_id: int, config: ContentEmbeddingConfig
) -> NDArray[np.float32]:
    """Normalise a video vector, using the token ``video_id=<id>`` if the features cancel out."""
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        logger.warning(
            "features of video %s cancel to a zero vector; using its video_id token instead", video_id
        )
        return _token_vector(f"video_id={video_id}", config).astype(np.float32)
    return (vector / norm).astype(np.float32)


def tag_vectors(config: ContentEmbeddingConfig, tags: Iterable[str | int]) -> dict[str, NDArray[np.float32]]:
    """Return the float32 unit vector of each single tag, keyed by tag id as text.

    A user vector's cosine with these shows which tags it leans towards.
    """
    vectors: dict[str, NDArray[np.float32]] = {}
    for tag in tags:
        tag_id = _category_text(tag)
        vectors[tag_id] = _token_vector(f"tag={tag_id}", config).astype(np.float32)
    return vectors
