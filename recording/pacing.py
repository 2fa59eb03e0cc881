"""Pacing a replay by record timestamps at a multiple of real time."""

from __future__ import annotations

import math
import time
from typing import Callable


def parse_speed(text: str) -> float | None:
    """Parse ``max`` (None, no pacing) or a factor K > 0, raising ValueError that names the text."""
    if text == "max":
        return None
    message = f"invalid speed {text!r}: use max or a number greater than 0, such as 1 or 10"
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(message) from None
    if not math.isfinite(speed) or speed <= 0:
        raise ValueError(message)
    return speed


def validate_speed(speed: float | None) -> None:
    if speed is not None and (not math.isfinite(speed) or speed <= 0):
        raise ValueError(f"invalid speed {speed}: use a finite number greater than 0, or None for max speed")


class Pacer:
    """Schedule that sends each record ``speed`` times faster than the gaps between timestamps.

    The first record goes at once. A record whose timestamp is t ms after the first one's is
    due t / speed ms after the first was sent. Records due in the past, including records
    with an earlier timestamp than one already sent, go at once.
    """

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        validate_speed(speed)
        self.speed = speed
        self.clock = clock
        self._origin: tuple[float, int] | None = None

    def delay_s(self, timestamp_ms: int) -> float:
        """Return the seconds to wait before sending a record with ``timestamp_ms`` (0 if it is due)."""
        now = self.clock()
        if self._origin is None:
            self._origin = (now, timestamp_ms)
            return 0.0
        origin_time, origin_timestamp_ms = self._origin
        due = origin_time + (timestamp_ms - origin_timestamp_ms) / 1000.0 / self.speed
        return max(0.0, due - now)
