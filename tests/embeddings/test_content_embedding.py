"""Tests for the content-feature embeddings in embeddings.content."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from embeddings.content import (
    ContentEmbeddingConfig,
    _unit_or_fallback,
    build_content_embeddings,
    model_version,
    tag_vectors,
    video_tokens,
)
from embeddings.sample_data import VIDEO_FEATURES_PATH
from embeddings.video_table import VIDEO_TABLE_COLUMNS, load_video_table
from operators.interest import cosine

COLUMNS = list(VIDEO_TABLE_COLUMNS)


def video(video_id: int, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "video_id": video_id,
        "video_type": "NORMAL",
        "upload_type": "Web",
        "video_duration": 30_000.0,
        "server_width": 720.0,
        "server_height": 1280.0,
        "music_type": 9.0,
        "tag": "39",
    }
    row.update(fields)
    return row


def table(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=COLUMNS)


@pytest.fixture(scope="module")
def real_videos() -> pd.DataFrame:
    return load_video_table(VIDEO_FEATURES_PATH)


@pytest.fixture(scope="module")
def real_embeddings(real_videos: pd.DataFrame) -> dict[int, np.ndarray]:
    return build_content_embeddings(real_videos, ContentEmbeddingConfig())


def test_every_real_video_has_unit_vector(real_videos: pd.DataFrame, real_embeddings: dict[int, np.ndarray]) -> None:
    assert set(real_embeddings) == set(real_videos["video_id"])
    matrix = np.vstack(list(real_embeddings.values()))
    assert matrix.dtype == np.float32
    assert matrix.shape == (len(real_videos), 64)
    assert np.isfinite(matrix).all()
    np.testing.assert_allclose(np.linalg.norm(matrix.astype(np.float64), axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("dimension", [2, 16, 128])
def test_dimension_respected(dimension: int) -> None:
    config = ContentEmbeddingConfig(dimension=dimension, hashes_per_feature=min(4, dimension))

    vectors = build_content_embeddings(table(video(1), video(2, tag="5")), config)

    assert all(vector.shape == (dimension,) for vector in vectors.values())
    assert all(abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6 for vector in vectors.values())


def test_deterministic_within_process() -> None:
    rows = table(video(1), video(2, tag="3,20", upload_type="Kmovie"))

    first = build_content_embeddings(rows, ContentEmbeddingConfig())
    second = build_content_embeddings(rows, ContentEmbeddingConfig())

    for video_id in first:
        assert np.array_equal(first[video_id], second[video_id])


def test_deterministic_across_processes() -> None:
    # Python's hash() of a string changes between processes (PYTHONHASHSEED), so
    # vectors built in two fresh interpreters must still be equal.
    script = (
        "import pandas as pd; from embeddings.content import build_content_embeddings;"
        "rows = pd.DataFrame([{'video_id': 1, 'video_type': 'AD', 'upload_type': 'Web',"
        "'video_duration': 12000.0, 'server_width': 1280.0, 'server_height': 720.0,"
        "'music_type': 4.0, 'tag': '3,20'}]);"
        "print(build_content_embeddings(rows)[1].tobytes().hex())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": ":".join(sys.path)},
        ).stdout.strip()
        for seed in ("1", "2")
    }

    local = build_content_embeddings(
        table(video(1, video_type="AD", video_duration=12_000.0, server_width=1280.0, server_height=720.0, music_type=4.0, tag="3,20"))
    )[1]
    assert outputs == {local.tobytes().hex()}


def test_same_tags_closer_than_different_tags() -> None:
    # Video 2 shares the tag of video 1 but differs in upload type, video 3 has
    # the same other features as video 1 but a different tag.
    rows = table(video(1, tag="39"), video(2, tag="39", upload_type="Kmovie"), video(3, tag="68"))

    vectors = build_content_embeddings(rows)

    assert cosine(vectors[1], vectors[2]) > cosine(vectors[1], vectors[3])
    assert cosine(vectors[2], vectors[1]) > cosine(vectors[2], vectors[3])


def test_real_table_tag_similarity_on_average(real_videos: pd.DataFrame, real_embeddings: dict[int, np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    tags = real_videos.set_index("video_id")["tag"].dropna()
    ids = tags.index.to_numpy()
    first = rng.choice(ids, size=3000)
    second = rng.choice(ids, size=3000)
    same, different = [], []
    for a, b in zip(first, second):
        if a == b:
            continue
        similarity = float(np.dot(real_embeddings[a], real_embeddings[b]))
        (same if tags[a] == tags[b] else different).append(similarity)

    # Videos with the same tag list are on average much closer than the rest.
    assert len(same) > 50
    assert np.mean(same) > np.mean(different) + 0.3


def test_tag_order_and_spaces_ignored() -> None:
    vectors = build_content_embeddings(table(video(1, tag="3,20"), video(2, tag="20, 3")))

    assert cosine(vectors[1], vectors[2]) == pytest.approx(1.0, abs=1e-6)


def test_missing_values_handled() -> None:
    empty = {column: np.nan for column in COLUMNS}
    empty["video_id"] = 5
    rows = table(
        video(1, tag=np.nan),
        video(2, video_duration=np.nan),
        video(3, music_type=np.nan),
        video(4, server_width=0.0, server_height=np.nan),
        empty,
        video(6, video_type="", upload_type="  "),
    )

    vectors = build_content_embeddings(rows)

    assert sorted(vectors) == [1, 2, 3, 4, 5, 6]
    for vector in vectors.values():
        assert np.isfinite(vector).all()
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6


def test_missing_value_tokens() -> None:
    config = ContentEmbeddingConfig()
    row = {column: np.nan for column in COLUMNS}

    tokens = dict(video_tokens(row, config))

    assert tokens == {
        "tag=<missing>": 3.0,
        "video_type=<missing>": 1.0,
        "upload_type=<missing>": 1.0,
        "duration_bucket=<missing>": 1.0,
        "music_type=<missing>": 0.5,
        "aspect=<missing>": 0.5,
    }


def test_feature_tokens_of_real_row() -> None:
    config = ContentEmbeddingConfig()
    row = video(1, tag="39,68", video_duration=87_433.0, server_width=1280.0, server_height=720.0)

    tokens = video_tokens(row, config)

    assert tokens == [
        ("tag=39", 3.0 / math.sqrt(2)),
        ("tag=68", 3.0 / math.sqrt(2)),
        ("video_type=NORMAL", 1.0),
        ("upload_type=Web", 1.0),
        ("duration_bucket=6", 1.0),  # 87.4 s lies in [64 s, 128 s)
        ("music_type=9", 0.5),
        ("aspect=landscape", 0.5),
    ]


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(720.0, 1280.0, "aspect=portrait"), (1000.0, 1000.0, "aspect=square"), (1920.0, 1080.0, "aspect=landscape")],
)
def test_aspect_classes(width: float, height: float, expected: str) -> None:
    tokens = [token for token, _ in video_tokens(video(1, server_width=width, server_height=height), ContentEmbeddingConfig())]

    assert expected in tokens


def test_zero_weight_field_left_out() -> None:
    config = ContentEmbeddingConfig(music_type_weight=0.0)

    tokens = [token for token, _ in video_tokens(video(1), config)]

    assert not any(token.startswith("music_type=") for token in tokens)


def test_fallback_for_cancelled_features() -> None:
    config = ContentEmbeddingConfig(dimension=8)

    vector = _unit_or_fallback(np.zeros(8), 42, config)

    assert vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6


def test_tag_vectors_are_units_and_match_video_tags() -> None:
    config = ContentEmbeddingConfig()

    vectors = tag_vectors(config, ["39", 68, "3"])
    videos = build_content_embeddings(table(video(1, tag="39"), video(2, tag="68")), config)

    assert sorted(vectors) == ["3", "39", "68"]
    for vector in vectors.values():
        assert vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6
    assert cosine(videos[1], vectors["39"]) > cosine(videos[1], vectors["68"])
    assert cosine(videos[2], vectors["68"]) > cosine(videos[2], vectors["39"])


def test_model_version_changes_with_config() -> None:
    base = ContentEmbeddingConfig()
    variants = [
        dataclasses.replace(base, dimension=32),
        dataclasses.replace(base, salt="other"),
        dataclasses.replace(base, tag_weight=2.0),
        dataclasses.replace(base, hashes_per_feature=3),
        dataclasses.replace(base, duration_bucket_base=10.0),
    ]

    version = model_version(base)

    assert version.startswith("content-hash-v1-d64-")
    assert model_version(ContentEmbeddingConfig()) == version
    assert model_version(ContentEmbeddingConfig(tag_weight=3, duration_bucket_base=2)) == version
    assert len({version, *(model_version(variant) for variant in variants)}) == len(variants) + 1
    assert model_version(variants[0]).startswith("content-hash-v1-d32-")


def test_salt_changes_vectors() -> None:
    rows = table(video(1))

    first = build_content_embeddings(rows, ContentEmbeddingConfig())[1]
    second = build_content_embeddings(rows, ContentEmbeddingConfig(salt="other"))[1]

    assert not np.array_equal(first, second)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dimension": 1}, "dimension must be an integer >= 2, got 1"),
        ({"hashes_per_feature": 0}, "hashes_per_feature"),
        ({"dimension": 4, "hashes_per_feature": 5}, r"from 1 to dimension \(4\)"),
        ({"tag_weight": -1.0}, "tag_weight must be a finite number >= 0, got -1.0"),
        ({"aspect_weight": math.nan}, "aspect_weight"),
        (
            {
                "tag_weight": 0.0,
                "video_type_weight": 0.0,
                "upload_type_weight": 0.0,
                "duration_weight": 0.0,
                "music_type_weight": 0.0,
                "aspect_weight": 0.0,
            },
            "all are 0",
        ),
        ({"duration_bucket_base": 1.0}, "duration_bucket_base"),
    ],
)
def test_invalid_config_raises(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContentEmbeddingConfig(**fields)  # type: ignore[arg-type]


def test_missing_column_and_duplicate_id_raise() -> None:
    with pytest.raises(ValueError, match=r"missing column\(s\) \['tag'\]"):
        build_content_embeddings(table(video(1)).drop(columns=["tag"]))
    with pytest.raises(ValueError, match="video_id 1 more than once"):
        build_content_embeddings(table(video(1), video(1)))


def test_empty_table_gives_empty_mapping() -> None:
    assert build_content_embeddings(table()) == {}
