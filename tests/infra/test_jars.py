"""Unit tests for the jar cache logic in infra.jars.

They never reach Maven Central: the pom is a stand-in file, and the download
tests put a fake mvn script first on PATH that writes empty jar files.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from infra.jars import (
    CACHE_DIR_ENV,
    MARKER_NAME,
    JarDownloadError,
    RuntimeJars,
    default_cache_dir,
    ensure_jars,
    load_cached_jars,
    pom_digest,
)
from infra.tools import MissingToolError

KAFKA_JARS = ("kafka_2.13-4.1.1.jar", "kafka-clients-4.1.1.jar", "slf4j-api-2.0.17.jar")
CONNECTOR_JAR = "flink-sql-connector-kafka-5.0.0-2.2.jar"
FUNCTIONS_JAR = "dreamumm-flink-functions-0.1.0.jar"

# Writes one empty jar per profile into -DoutputDirectory, or the functions jar into the
# target folder beside the -f pom for `package`, and logs its arguments.
FAKE_MVN = """#!/bin/sh
PATH=/usr/bin:/bin
echo "$@" >> "{calls}"
previous=""
for argument in "$@"; do
  case "$argument" in
    -Pbroker) profile=broker ;;
    -Pflink) profile=flink ;;
    -DoutputDirectory=*) out="${{argument#-DoutputDirectory=}}" ;;
    package) profile=functions ;;
  esac
  if [ "$previous" = "-f" ]; then pom_file="$argument"; fi
  previous="$argument"
done
if [ "$profile" = functions ]; then
  mkdir -p "$(dirname "$pom_file")/target"
  touch "$(dirname "$pom_file")/target/dreamumm-flink-functions-0.1.0.jar"
  exit 0
fi
mkdir -p "$out"
if [ "$profile" = broker ]; then
  touch "$out/kafka_2.13-4.1.1.jar" "$out/kafka-clients-4.1.1.jar"
else
  touch "$out/{connector}"
fi
"""

FAILING_MVN = """#!/bin/sh
echo "[ERROR] Could not resolve dependencies for project dev.dreamumm:dreamumm-runtime-jars"
exit 1
"""


@pytest.fixture
def pom(tmp_path: Path) -> Path:
    path = tmp_path / "pom.xml"
    path.write_text("<project>stand-in</project>\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def functions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for jvm/, so that no test builds or hashes the real Java sources."""
    folder = tmp_path / "jvm"
    (folder / "src").mkdir(parents=True)
    (folder / "pom.xml").write_text("<project>functions</project>\n", encoding="utf-8")
    monkeypatch.setattr("infra.jars.FUNCTIONS_DIR", folder)
    return folder


@pytest.fixture
def no_tools_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Leave PATH with an empty folder only, so neither mvn nor java can be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def fill_cache(cache_dir: Path, pom: Path, *, with_connector: bool = True) -> None:
    jars_dir = cache_dir / "jars"
    (jars_dir / "kafka").mkdir(parents=True)
    (jars_dir / "flink").mkdir(parents=True)
    for name in KAFKA_JARS:
        (jars_dir / "kafka" / name).touch()
    if with_connector:
        (jars_dir / "flink" / CONNECTOR_JAR).touch()
    (jars_dir / "functions").mkdir(parents=True)
    (jars_dir / "functions" / FUNCTIONS_JAR).touch()
    functions_dir = pom.parent / "jvm"
    (jars_dir / MARKER_NAME).write_text(pom_digest(pom, functions_dir) + "\n", encoding="utf-8")


def install_script(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_reuses_cache_when_marker_matches(
    tmp_path: Path, pom: Path, no_tools_path: None, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "cache"
    fill_cache(cache_dir, pom)

    with caplog.at_level(logging.INFO, logger="infra.jars"):
        jars, reused = ensure_jars(cache_dir, pom_path=pom, functions_dir=pom.parent / "jvm")

    assert reused is True
    assert [path.name for path in jars.kafka_classpath] == sorted(KAFKA_JARS)
    assert jars.flink_kafka_connector == cache_dir / "jars" / "flink" / CONNECTOR_JAR
    assert "Reusing runtime jars" in caplog.text


def test_changed_pom_needs_download(tmp_path: Path, pom: Path, no_tools_path: None) -> None:
    cache_dir = tmp_path / "cache"
    fill_cache(cache_dir, pom)
    pom.write_text("<project>changed</project>\n", encoding="utf-8")

    # The stale cache is not reused, so ensure_jars looks for mvn, which PATH lacks.
    with pytest.raises(MissingToolError, match="mvn was not found on PATH"):
        ensure_jars(cache_dir, pom_path=pom, functions_dir=pom.parent / "jvm")


def test_incomplete_cache_needs_download(tmp_path: Path, pom: Path, no_tools_path: None) -> None:
    cache_dir = tmp_path / "cache"
    fill_cache(cache_dir, pom, with_connector=False)

    with pytest.raises(MissingToolError, match="apt-get install maven"):
        ensure_jars(cache_dir, pom_path=pom, functions_dir=pom.parent / "jvm")


def test_missing_java_is_named(
    tmp_path: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    install_script(bin_dir, "mvn", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    with pytest.raises(MissingToolError, match="java was not found on PATH") as error:
        ensure_jars(tmp_path / "cache", pom_path=pom, functions_dir=pom.parent / "jvm")
    assert "Java 17" in str(error.value)


def test_invalid_java_home_is_named(
    tmp_path: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    install_script(bin_dir, "mvn", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))

    with pytest.raises(MissingToolError, match="JAVA_HOME is set to"):
        ensure_jars(tmp_path / "cache", pom_path=pom, functions_dir=pom.parent / "jvm")


def test_download_writes_marker_then_reuses(
    tmp_path: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    calls = tmp_path / "mvn-calls.txt"
    install_script(bin_dir, "mvn", FAKE_MVN.format(calls=calls, connector=CONNECTOR_JAR))
    install_script(bin_dir, "java", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    cache_dir = tmp_path / "cache"

    jars, reused = ensure_jars(cache_dir, pom_path=pom, functions_dir=pom.parent / "jvm")

    assert reused is False
    assert [path.name for path in jars.kafka_classpath] == ["kafka-clients-4.1.1.jar", "kafka_2.13-4.1.1.jar"]
    assert jars.flink_kafka_connector.name == CONNECTOR_JAR
    marker = cache_dir / "jars" / MARKER_NAME
    assert jars.flink_functions.name == FUNCTIONS_JAR
    assert marker.read_text(encoding="utf-8").strip() == pom_digest(pom, pom.parent / "jvm")
    invocations = calls.read_text(encoding="utf-8").splitlines()
    assert len(invocations) == 3
    assert all(f"-Dmaven.repo.local={cache_dir.resolve() / 'm2'}" in line for line in invocations)
    assert not list((cache_dir / "jars").glob("*.partial"))

    jars_again, reused_again = ensure_jars(cache_dir, pom_path=pom, functions_dir=pom.parent / "jvm")

    assert reused_again is True
    assert jars_again == jars
    assert len(calls.read_text(encoding="utf-8").splitlines()) == 3


def test_download_replaces_old_jars(
    tmp_path: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    fill_cache(cache_dir, pom)
    pom.write_text("<project>new version</project>\n", encoding="utf-8")
    bin_dir = tmp_path / "bin"
    install_script(bin_dir, "mvn", FAKE_MVN.format(calls=tmp_path / "calls.txt", connector=CONNECTOR_JAR))
    install_script(bin_dir, "java", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    jars, reused = ensure_jars(cache_dir, pom_path=pom, functions_dir=pom.parent / "jvm")

    assert reused is False
    # slf4j-api was only in the old cache, so a leftover would show up here.
    assert "slf4j-api-2.0.17.jar" not in [path.name for path in jars.kafka_classpath]


def test_maven_failure_shows_output(
    tmp_path: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    install_script(bin_dir, "mvn", FAILING_MVN)
    install_script(bin_dir, "java", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    cache_dir = tmp_path / "cache"

    with pytest.raises(JarDownloadError, match="exit code 1") as error:
        ensure_jars(cache_dir, pom_path=pom, functions_dir=pom.parent / "jvm")

    assert "Could not resolve dependencies" in str(error.value)
    assert not (cache_dir / "jars" / MARKER_NAME).exists()


def test_load_cached_jars_needs_both_profiles(tmp_path: Path, pom: Path) -> None:
    fill_cache(tmp_path, pom, with_connector=False)

    assert load_cached_jars(tmp_path / "jars") is None


def test_default_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "elsewhere"))

    assert default_cache_dir() == (tmp_path / "elsewhere").resolve()


def test_default_cache_dir_in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)

    cache_dir = default_cache_dir()

    assert cache_dir.name == ".cache"
    assert (cache_dir.parent / "infra" / "pom.xml").is_file()


def test_kafka_classpath_arg_joins_jars() -> None:
    jars = RuntimeJars(
        kafka_classpath=[Path("/a/x.jar"), Path("/a/y.jar")],
        flink_kafka_connector=Path("/b/c.jar"),
        flink_functions=Path("/b/f.jar"),
    )

    assert jars.kafka_classpath_arg() == f"/a/x.jar{os.pathsep}/a/y.jar"
