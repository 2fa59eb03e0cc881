"""Errors of the feature store. Each message names the store folder and what to do."""

from __future__ import annotations


class StoreError(RuntimeError):
    """Base class of the feature store's errors."""


class StoreLockedError(StoreError):
    """Raised when another process already has the store open for writing."""


class StoreNotFoundError(StoreError):
    """Raised when a reader opens a store folder that no materialiser has created yet."""


class StoreLayoutError(StoreError):
    """Raised when the store's column families or value layout are not the ones this version uses."""


class TopicRecreatedError(StoreError):
    """Raised when a topic's Kafka topic id differs from the one the store recorded, because the topic
    was deleted and created again. The stored offsets then point into the old topic."""


class StoreFolderRemovedError(StoreError):
    """Raised when the store folder was removed or replaced while the materialiser was writing it."""
