"""Lookup of the external programs that infra runs: java and mvn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

JAVA_INSTALL_HINT = (
    "Install a Java 17 or newer JDK (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless), "
    "or set JAVA_HOME to one. Kafka 4.x brokers need Java 17."
)
MAVEN_INSTALL_HINT = "Install Apache Maven 3.8 or newer (Debian/Ubuntu: apt-get install maven)."


class MissingToolError(RuntimeError):
    """An external program that infra needs is not installed."""


def find_java() -> Path:
    """Return the java executable, from JAVA_HOME if set, else from PATH.

    Raises MissingToolError if neither has one.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
        raise MissingToolError(
            f"JAVA_HOME is set to {java_home!r}, but {candidate} is not an executable file. "
            f"Point JAVA_HOME at a JDK directory or unset it to use java from PATH. {JAVA_INSTALL_HINT}"
        )

    found = shutil.which("java")
    if found is None:
        raise MissingToolError(f"java was not found on PATH. {JAVA_INSTALL_HINT}")
    return Path(found)


def find_maven() -> Path:
    """Return the mvn executable from PATH, or raise MissingToolError."""
    found = shutil.which("mvn")
    if found is None:
        raise MissingToolError(f"mvn was not found on PATH. {MAVEN_INSTALL_HINT}")
    return Path(found)
