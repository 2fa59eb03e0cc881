"""Facts about the machine and the versions a benchmark ran with, for its report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from dreamumm.config import REPO_ROOT


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    try:
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        return int(match.group(1)) * 1024 if match else 0
    except OSError:
        return 0


def _java_version() -> str:
    try:
        result = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (result.stderr.splitlines() or ["unknown"])[0]


def _pom_property(name: str) -> str:
    match = re.search(rf"<{re.escape(name)}>([^<]+)</", (REPO_ROOT / "infra" / "pom.xml").read_text())
    return match.group(1) if match else "unknown"


def machine_facts(replays: list[Any]) -> dict[str, Any]:
    """Return cores, memory, CPU model and the versions of everything the alternatives ran on."""
    versions = {name: importlib.metadata.version(name)
                for name in ("apache-flink", "confluent-kafka", "fastavro", "numpy")}
    versions["flink-sql-connector-kafka"] = _pom_property("flink.kafka.connector.version")
    versions["kafka broker"] = _pom_property("kafka.version")
    versions["python"] = platform.python_version()
    versions["java"] = _java_version()
    for replay in replays:
        for name, version in replay.details.get("versions", {}).items():
            versions.setdefault(f"{name} (baselines)", version)
    return {"cores": os.cpu_count(), "memory_bytes": _memory_bytes(), "cpu": _cpu_model(),
            "kernel": platform.release(), "versions": versions}
