"""The ``dreamumm materialise`` command: run the materialiser until a signal, or until it has caught up."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from confluent_kafka import KafkaException

from dreamumm.config import Settings
from infra.topics import TopicError
from store.errors import StoreError
from store.materialiser import Materialiser, MaterialiserStats

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def materialise(settings: Settings, until_caught_up: bool, *, rebuild: bool = False) -> int:
    """Fill the store at ``settings.store.path`` from the feature and embeddings topics, and return the exit code.

    Runs until SIGTERM or SIGINT, after which it finishes the current batch and returns 0.
    With ``until_caught_up`` it returns 0 as soon as every partition has reached its end, and 1 if
    a signal stopped it before that. With ``rebuild`` it first replaces the store with a new,
    empty one (see ``Materialiser``). It returns 1 when the store is locked by another
    materialiser or unusable, a topic is missing or was recreated, the store folder is removed
    while it runs, or Kafka fails. The signal handlers are set for the duration of the call, so
    it must run in the main thread.
    """
    stop = threading.Event()

    def request_stop(signal_number: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping after the current batch", signal.Signals(signal_number).name)
        stop.set()

    previous_handlers = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    try:
        with Materialiser(settings, rebuild=rebuild) as materialiser:
            stats = materialiser.run(stop, until_caught_up=until_caught_up)
    except (StoreError, TopicError, KafkaException) as error:
        logger.error("materialise failed: %s", error)
        return 1
    finally:
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)

    logger.info("materialised into %s: %s", settings.store.path, describe(stats))
    if until_caught_up and not stats.caught_up:
        logger.error("stopped before reaching the end of %s and %s. Run `dreamumm materialise --until-caught-up` "
                     "again to continue from the stored offsets", settings.kafka.features_topic,
                     settings.kafka.embeddings_topic)
        return 1
    return 0


def describe(stats: MaterialiserStats) -> str:
    """Return a one-line summary of a run."""
    return (f"{stats.feature_records} feature records ({stats.users_written} users written, {stats.users_deleted} "
            f"deleted), {stats.embedding_records} embedding records ({stats.videos_written} videos written), "
            f"{stats.bad_records} skipped as bad, {stats.batches} write batches in {stats.seconds:.1f} s, "
            f"{'caught up' if stats.caught_up else 'not caught up'}")
