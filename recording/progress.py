"""Progress of a long record or replay run: a bar on a terminal, otherwise a log line now and then."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

logger = logging.getLogger(__name__)

BAR_WIDTH = 30
REDRAW_INTERVAL_S = 0.2
LOG_INTERVAL_S = 10.0


class Progress:
    """Progress of ``done`` out of ``total`` units, with ``records`` counted alongside.

    On a terminal it redraws one line on ``stream``. On anything else, such as a pipe or a
    CI log, it logs a line every ``LOG_INTERVAL_S`` seconds instead. ``total`` is the size
    of an offset range when recording, so ``done`` counts offsets, not records. With
    ``enabled`` false it shows nothing.
    """

    def __init__(self, label: str, total: int, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.is_terminal = self.stream.isatty()
        self._last_shown: float | None = None
        self._latest = (0, 0)
        self._drawn = False

    def update(self, done: int, records: int) -> None:
        """Show the progress if enough time has passed since it was last shown."""
        if not self.enabled:
            return
        self._latest = (done, records)
        now = time.monotonic()
        interval = REDRAW_INTERVAL_S if self.is_terminal else LOG_INTERVAL_S
        if self._last_shown is None:
            # Skip the first interval, so a run that ends quickly shows nothing.
            self._last_shown = now
            return
        if now - self._last_shown < interval:
            return
        self._last_shown = now
        if self.is_terminal:
            self.stream.write("\r" + format_progress(self.label, done, self.total, records))
            self.stream.flush()
            self._drawn = True
        else:
            logger.info("%s", format_progress(self.label, done, self.total, records))

    def finish(self) -> None:
        """Redraw the line with the latest counts and end it, so that the next output starts on a new line."""
        if self._drawn:
            done, records = self._latest
            self.stream.write("\r" + format_progress(self.label, done, self.total, records) + "\n")
            self.stream.flush()
            self._drawn = False


def format_progress(label: str, done: int, total: int, records: int) -> str:
    """Format one progress line, for example ``record t: [=====     ] 50.0%, 1,204 records``."""
    fraction = min(1.0, done / total) if total > 0 else 1.0
    filled = round(fraction * BAR_WIDTH)
    bar = "=" * filled + " " * (BAR_WIDTH - filled)
    return f"{label}: [{bar}] {fraction * 100:5.1f}%, {records:,} records"
