"""Unit tests of the progress line."""

from __future__ import annotations

import io
import logging

import pytest

import recording.progress as progress_module
from recording.progress import Progress, format_progress


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_progress() -> None:
    line = format_progress("record t", 50, 200, 1204)

    assert line == "record t: [========                      ]  25.0%, 1,204 records"


def test_format_progress_empty_range() -> None:
    assert "100.0%, 0 records" in format_progress("record t", 0, 0, 0)


def test_progress_redraws_on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter([0.0, 1.0, 1.1, 2.0, 2.1])
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(times))
    stream = TerminalStream()
    progress = Progress("replay", 10, stream=stream)

    for done in (1, 5, 6, 9, 10):
        progress.update(done, done)
    progress.finish()

    # The first update only starts the clock, updates within 0.2 s of a redraw are skipped,
    # and finish draws the latest counts.
    lines = stream.getvalue().split("\r")
    assert lines == ["", format_progress("replay", 5, 10, 5), format_progress("replay", 9, 10, 9),
                     format_progress("replay", 10, 10, 10) + "\n"]


def test_progress_logs_off_terminal(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    times = iter([0.0, 5.0, 11.0])
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(times))
    stream = io.StringIO()
    progress = Progress("record t", 10, stream=stream)

    with caplog.at_level(logging.INFO, logger="recording.progress"):
        for done in (1, 2, 3):
            progress.update(done, done)
        progress.finish()

    assert stream.getvalue() == ""
    assert caplog.messages == [format_progress("record t", 3, 10, 3)]


def test_disabled_progress_shows_nothing() -> None:
    stream = TerminalStream()
    progress = Progress("record t", 10, enabled=False, stream=stream)

    progress.update(5, 5)
    progress.update(10, 10)
    progress.finish()

    assert stream.getvalue() == ""
