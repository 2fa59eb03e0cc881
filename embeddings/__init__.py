"""Video embeddings and the bundled KuaiRand sample data.

- ``content``: content-feature vectors by signed feature hashing of the video table.
- ``video_table``: loading and column checks for the KuaiRand video feature table.
- ``sample_data``: paths to the files in ``data/kuairand/`` and the event loader.
"""

from embeddings.content import (
    ContentEmbeddingConfig,
    build_content_embeddings,
    model_version,
    tag_vectors,
    video_tokens,
)
from embeddings.sample_data import (
    EVENT_COLUMNS,
    SAMPLE_DATA_DIR,
    SAMPLE_EVENTS_PATH,
    VIDEO_FEATURES_PATH,
    load_events,
)
from embeddings.video_table import VIDEO_TABLE_COLUMNS, load_video_table

__all__ = [
    "EVENT_COLUMNS",
    "SAMPLE_DATA_DIR",
    "SAMPLE_EVENTS_PATH",
    "VIDEO_FEATURES_PATH",
    "VIDEO_TABLE_COLUMNS",
    "ContentEmbeddingConfig",
    "build_content_embeddings",
    "load_events",
    "load_video_table",
    "model_version",
    "tag_vectors",
    "video_tokens",
]
