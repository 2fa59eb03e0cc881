"""The feature store: the newest DreamUMM vector per user and the video embeddings, in RocksDB, for serving.

- ``Materialiser`` (``store.materialiser``) is the one writer. It consumes the feature and
  embeddings topics and stores each record with its offset in one atomic write. It holds the
  writer lock ``<store.path>.lock`` (``store.lock``), and ``rebuild=True`` replaces the store.
- ``FeatureStoreReader`` (``store.client``) reads the store from any process beside the writer,
  as a RocksDB secondary instance.
- ``materialise`` (``store.command``) runs the materialiser as the ``dreamumm materialise`` command.

``store.layout`` documents the keys and the byte layout of the stored values.
"""

from store.client import FeatureStoreReader, StoreStatus
from store.errors import (
    StoreError,
    StoreFolderRemovedError,
    StoreLayoutError,
    StoreLockedError,
    StoreNotFoundError,
    TopicRecreatedError,
)
from store.materialiser import Materialiser, MaterialiserStats
from store.vectors import StoredVector, VideoVectors

__all__ = [
    "FeatureStoreReader",
    "Materialiser",
    "MaterialiserStats",
    "StoreError",
    "StoreFolderRemovedError",
    "StoreLayoutError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreStatus",
    "StoredVector",
    "TopicRecreatedError",
    "VideoVectors",
]
