"""The service's long-lived parts: the store reader, opened as soon as the store exists, and the ranker."""

from __future__ import annotations

import logging
import threading
import time

from dreamumm.config import Settings
from ranking import Ranker, build_ranker
from ranking.factory import check_model_space, load_configured_long_view_model
from ranking.long_view import LongViewModel
from store import FeatureStoreReader, StoreError, StoreNotFoundError

logger = logging.getLogger(__name__)

_OPEN_RETRY_S = 1.0


class ServiceState:
    """Holds the store reader and the ranker of one server process.

    The long-view model loads at construction, so a bad model file stops the server at start.
    The store may not exist yet when the server starts, for example before the materialiser's
    first run, so a thread retries opening it every second and the service stays not ready
    until it opens.
    """

    def __init__(self, settings: Settings, long_view_model: LongViewModel | None = None) -> None:
        self.settings = settings
        self.long_view_model = (long_view_model if long_view_model is not None
                                else load_configured_long_view_model(settings))
        # Checked here, so a model of another space stops the server at start, not the store opener later.
        check_model_space(settings, self.long_view_model)
        self._lock = threading.Lock()
        self._reader: FeatureStoreReader | None = None
        self._ranker: Ranker | None = None
        self._store_problem = "not opened yet"
        self._closed = threading.Event()
        self._opener = threading.Thread(target=self._open_store_until_closed, name="store-opener", daemon=True)

    def start(self) -> None:
        """Open the store now if it exists, else keep trying in the background."""
        if not self._try_open():
            self._opener.start()

    def close(self) -> None:
        """Stop retrying and close the store reader."""
        self._closed.set()
        if self._opener.is_alive():
            self._opener.join()
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
                self._ranker = None

    @property
    def reader(self) -> FeatureStoreReader | None:
        """The open store reader, or None while the store is not open."""
        return self._reader

    @property
    def ranker(self) -> Ranker | None:
        """The ranker over the open store, or None while the store is not open."""
        return self._ranker

    @property
    def store_problem(self) -> str:
        """Why the store is not open, or "ok"."""
        return self._store_problem

    def _try_open(self) -> bool:
        try:
            reader = FeatureStoreReader.open(self.settings.store)
        except StoreNotFoundError as error:
            self._store_problem = str(error)
            return False
        except StoreError as error:
            self._store_problem = str(error)
            logger.warning("opening the feature store at %s failed, retrying in %s s: %s",
                           self.settings.store.path, _OPEN_RETRY_S, error)
            return False
        try:
            ranker = build_ranker(self.settings, reader, self.long_view_model)
            reader.start_background_catch_up(self.settings.store.catch_up_interval_ms)
        except BaseException:
            reader.close()
            raise
        with self._lock:
            if self._closed.is_set():
                reader.close()
                return False
            self._ranker = ranker
            self._reader = reader
            self._store_problem = "ok"
        logger.info("opened the feature store at %s", self.settings.store.path)
        return True

    def _open_store_until_closed(self) -> None:
        while not self._closed.wait(_OPEN_RETRY_S):
            if self._try_open():
                return

    def readiness(self) -> dict[str, str]:
        """Return each readiness check's state: "ok" or what is wrong."""
        checks = {"long_view_model": "ok", "store": self._store_problem}
        reader = self._reader
        if reader is None:
            return checks
        status = reader.status()
        if status.problem is not None:
            checks["store"] = status.problem
        now_ms = time.time_ns() // 1_000_000
        limit_ms = self.settings.serving.max_materialiser_silence_ms
        if status.heartbeat_ms is None:
            checks["materialiser_heartbeat"] = "the materialiser has not written a heartbeat yet"
        elif now_ms - status.heartbeat_ms > limit_ms:
            checks["materialiser_heartbeat"] = (
                f"the materialiser's last heartbeat is {now_ms - status.heartbeat_ms} ms old, more than "
                f"serving.max_materialiser_silence_ms ({limit_ms}): it stopped or cannot reach Kafka")
        else:
            checks["materialiser_heartbeat"] = "ok"
        checks["materialiser_caught_up"] = ("ok" if status.caught_up_ms is not None else
                                            "the materialiser has not yet reached the end of its topics")
        return checks
