"""The materialise command's exit codes and signal handlers, for failures that need no broker."""

from __future__ import annotations

import logging
import signal

from dreamumm.config import Settings, load_settings
from store.command import materialise


def settings_for(store_settings) -> Settings:
    base = load_settings(environ={})
    data = base.model_dump()
    data["store"].update({"path": store_settings.path, "secondary_dir": store_settings.secondary_dir})
    data["embedding"]["dimension"] = 4
    # No broker listens here; the command must fail on the lock before it connects.
    data["kafka"]["bootstrap_servers"] = "127.0.0.1:9"
    return Settings.model_validate(data)


def test_locked_store_exits_1_and_restores_handlers(writer, store_settings, caplog) -> None:
    before = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    with caplog.at_level(logging.ERROR, logger="store.command"):
        exit_code = materialise(settings_for(store_settings), until_caught_up=True)
    assert exit_code == 1
    assert any("another materialiser is writing it" in record.getMessage() for record in caplog.records)
    assert {number: signal.getsignal(number) for number in before} == before


def test_rebuild_of_locked_store_exits_1(writer, records, store_settings, caplog) -> None:
    writer.write([records.user("a", 1)])
    with caplog.at_level(logging.ERROR, logger="store.command"):
        exit_code = materialise(settings_for(store_settings), until_caught_up=True, rebuild=True)
    assert exit_code == 1
    assert any("writer lock" in record.getMessage() for record in caplog.records)
    assert (store_settings.path / "CURRENT").is_file()
    assert writer.offsets == {("features", 0): 1}
