"""The Java event-time function's WatchEvent fingerprints match the shipped schema files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas import WATCH_EVENT, WATCH_EVENT_V2, load_schema
from schemas.codec import single_object_header

JAVA_SOURCE = Path(__file__).resolve().parents[2] / "jvm/src/main/java/dev/dreamumm/flink/WatchEventTime.java"


@pytest.mark.parametrize(("schema_name", "constant"), [
    (WATCH_EVENT, "WATCH_EVENT_V1_FINGERPRINT"),
    (WATCH_EVENT_V2, "WATCH_EVENT_V2_FINGERPRINT"),
])
def test_java_fingerprint_matches_schema(schema_name: str, constant: str) -> None:
    source = JAVA_SOURCE.read_text(encoding="utf-8")
    match = re.search(rf"static final long {constant} = 0x([0-9a-fA-F]{{16}})L;", source)
    assert match, f"{constant} not found as a 16-digit hex long in {JAVA_SOURCE}"

    header = single_object_header(load_schema(schema_name))
    expected = int.from_bytes(header[2:], "little")
    assert int(match.group(1), 16) == expected, (
        f"{constant} in WatchEventTime.java is 0x{match.group(1)}, but {schema_name}.avsc has fingerprint "
        f"0x{expected:016x}; update the constant and the golden values in WatchEventTimeTest.java"
    )
