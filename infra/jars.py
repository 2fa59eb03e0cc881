"""Download of the runtime jars (Kafka broker, Flink Kafka connector) and build of the job's
Java functions, with Maven.

The jars land in the project cache, which is ``<repo root>/.cache`` unless the
DREAMUMM_CACHE_DIR environment variable names another directory:

    <cache_dir>/m2/            Maven's local repository, so nothing is written to ~/.m2
    <cache_dir>/jars/kafka/    the broker classpath (profile ``broker`` in infra/pom.xml)
    <cache_dir>/jars/flink/    the connector jar (profile ``flink``)
    <cache_dir>/jars/functions/  the job's Flink SQL functions, built from jvm/
    <cache_dir>/jars/pom.sha256  SHA-256 of the pom files and Java sources the jars came from
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from infra.locks import exclusive_lock
from infra.tools import find_java, find_maven

logger = logging.getLogger(__name__)

INFRA_DIR = Path(__file__).resolve().parent
# NOTE: this is the repository root only for a source checkout or an editable install.
# Elsewhere it is site-packages, so set DREAMUMM_CACHE_DIR and DREAMUMM_KAFKA_DIR.
REPO_ROOT = INFRA_DIR.parent
POM_PATH = INFRA_DIR / "pom.xml"
FUNCTIONS_DIR = REPO_ROOT / "jvm"
CACHE_DIR_ENV = "DREAMUMM_CACHE_DIR"

MARKER_NAME = "pom.sha256"
KAFKA_PROFILE = "broker"
FLINK_PROFILE = "flink"
KAFKA_BROKER_JAR_GLOB = "kafka_2.13-*.jar"
FLINK_CONNECTOR_JAR_GLOB = "flink-sql-connector-kafka-*.jar"
FUNCTIONS_JAR_GLOB = "dreamumm-flink-functions-*.jar"
MAVEN_TIMEOUT_S = 1800.0
OUTPUT_TAIL_LINES = 40


class JarDownloadError(RuntimeError):
    """Maven failed, or its output is not the set of jars that infra/pom.xml describes."""


@dataclass(frozen=True)
class RuntimeJars:
    """Jars that the local broker and the PyFlink jobs load."""

    kafka_classpath: list[Path]
    flink_kafka_connector: Path
    flink_functions: Path

    @property
    def flink_job_jars(self) -> list[Path]:
        """Return the jars a feature job loads: the Kafka connector and the job's functions."""
        return [self.flink_kafka_connector, self.flink_functions]

    def kafka_classpath_arg(self) -> str:
        """Return the broker classpath joined for ``java -cp``."""
        return os.pathsep.join(str(jar) for jar in self.kafka_classpath)


def default_cache_dir() -> Path:
    """Return $DREAMUMM_CACHE_DIR if set, else ``<repo root>/.cache``."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / ".cache"


def pom_digest(pom_path: Path = POM_PATH, functions_dir: Path = FUNCTIONS_DIR) -> str:
    """Return the SHA-256 hex digest of the pom file and of the Java functions' pom, sources and resources."""
    digest = hashlib.sha256(pom_path.read_bytes())
    sources = [path for path in functions_dir.glob("src/**/*") if path.is_file()]
    for path in sorted([functions_dir / "pom.xml", *sources]):
        digest.update(path.relative_to(functions_dir).as_posix().encode("utf-8"))
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_cached_jars(jars_dir: Path) -> RuntimeJars | None:
    """Return the jars under ``jars_dir``, or None unless both profiles' jars are there."""
    kafka_dir = jars_dir / "kafka"
    flink_dir = jars_dir / "flink"

    kafka_classpath = sorted(kafka_dir.glob("*.jar"))
    if not any(kafka_dir.glob(KAFKA_BROKER_JAR_GLOB)):
        return None

    connectors = sorted(flink_dir.glob(FLINK_CONNECTOR_JAR_GLOB))
    if len(connectors) != 1:
        return None

    functions = sorted((jars_dir / "functions").glob(FUNCTIONS_JAR_GLOB))
    if len(functions) != 1:
        return None

    return RuntimeJars(
        kafka_classpath=kafka_classpath, flink_kafka_connector=connectors[0], flink_functions=functions[0]
    )


def ensure_jars(
    cache_dir: Path | None = None,
    *,
    pom_path: Path = POM_PATH,
    functions_dir: Path = FUNCTIONS_DIR,
) -> tuple[RuntimeJars, bool]:
    """Download the runtime jars into ``cache_dir`` unless a matching copy is there.

    Returns the jars and True if the cached copy was reused without running Maven.
    The cache is reused when its marker contains the digest of ``pom_path`` and of the
    Java functions in ``functions_dir``, and all three jar folders are complete. Otherwise both folders are downloaded again.
    ``cache_dir`` defaults to default_cache_dir().

    Raises MissingToolError if mvn or java is not installed, and JarDownloadError
    if Maven fails.
    """
    cache_dir = (cache_dir or default_cache_dir()).resolve()
    jars_dir = cache_dir / "jars"
    marker = jars_dir / MARKER_NAME
    expected_digest = pom_digest(pom_path, functions_dir)

    jars_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(jars_dir / ".lock"):
        cached = _reusable_jars(jars_dir, marker, expected_digest)
        if cached is not None:
            logger.info("Reusing runtime jars in %s (pom digest %s)", jars_dir, expected_digest[:12])
            return cached, True

        mvn = find_maven()
        find_java()  # Maven needs a JDK too. Failing here gives the install hint.

        # The marker goes first, so an interrupted download is never taken as complete.
        marker.unlink(missing_ok=True)
        started = time.monotonic()
        for profile, folder in ((KAFKA_PROFILE, "kafka"), (FLINK_PROFILE, "flink")):
            _copy_profile_jars(mvn, pom_path, profile, cache_dir / "m2", jars_dir / folder)
        _build_functions(mvn, functions_dir, cache_dir / "m2", jars_dir / "functions")

        jars = load_cached_jars(jars_dir)
        if jars is None:
            raise JarDownloadError(
                f"Maven finished, but {jars_dir} lacks {KAFKA_BROKER_JAR_GLOB} in kafka/, "
                f"exactly one {FLINK_CONNECTOR_JAR_GLOB} in flink/ "
                f"or exactly one {FUNCTIONS_JAR_GLOB} in functions/. "
                f"Check the profiles in {pom_path}."
            )
        marker.write_text(expected_digest + "\n", encoding="utf-8")
        logger.info(
            "Downloaded %d broker jars and %s into %s in %.1f s",
            len(jars.kafka_classpath),
            jars.flink_kafka_connector.name,
            jars_dir,
            time.monotonic() - started,
        )
        return jars, False


def _reusable_jars(jars_dir: Path, marker: Path, expected_digest: str) -> RuntimeJars | None:
    try:
        recorded_digest = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        logger.debug("No jar marker at %s", marker)
        return None

    if recorded_digest != expected_digest:
        logger.info(
            "pom.xml changed since the last download (digest %s, cached %s), downloading again",
            expected_digest[:12],
            recorded_digest[:12],
        )
        return None

    jars = load_cached_jars(jars_dir)
    if jars is None:
        logger.info("The jar cache in %s is incomplete, downloading again", jars_dir)
    return jars


def _copy_profile_jars(mvn: Path, pom_path: Path, profile: str, maven_repo: Path, target: Path) -> None:
    """Run ``mvn dependency:copy-dependencies`` for one profile and swap ``target`` for the result."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    command = _maven_command(
        mvn,
        pom_path,
        maven_repo,
        f"-P{profile}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    )
    logger.info("Downloading the %s jars with Maven into %s", profile, target)
    _run_maven(command, pom_path.parent, f"profile {profile!r} of {pom_path}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _build_functions(mvn: Path, functions_dir: Path, maven_repo: Path, target: Path) -> None:
    """Build the Java functions in ``functions_dir`` with ``mvn package`` and copy the jar to ``target``."""
    command = _maven_command(mvn, functions_dir / "pom.xml", maven_repo, "-DskipTests", "clean", "package")
    logger.info("Building the job's Java functions in %s with Maven", functions_dir)
    _run_maven(command, functions_dir, f"the Java functions in {functions_dir}")
    built = sorted((functions_dir / "target").glob(FUNCTIONS_JAR_GLOB))
    if len(built) != 1:
        raise JarDownloadError(f"Maven built {len(built)} jars matching {FUNCTIONS_JAR_GLOB} in {functions_dir}/target, expected 1")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy2(built[0], target / built[0].name)


def _maven_command(mvn: Path, pom_path: Path, maven_repo: Path, *arguments: str) -> list[str]:
    """Return a quiet, non-interactive Maven command line on ``pom_path`` with the project's repository."""
    return [
        str(mvn),
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom_path),
        f"-Dmaven.repo.local={maven_repo}",
        *arguments,
    ]


def _run_maven(command: list[str], cwd: Path, description: str) -> None:
    """Run one Maven command, raising JarDownloadError with the output's tail if it fails."""
    logger.debug("Running %s", command)
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise JarDownloadError(
            f"Maven did not finish {description} within {MAVEN_TIMEOUT_S:.0f} s. "
            f"Check network access to Maven Central and run again. Command: {' '.join(command)}"
        ) from error

    if result.returncode != 0:
        output = (result.stdout + result.stderr).splitlines()
        tail = "\n".join(output[-OUTPUT_TAIL_LINES:])
        raise JarDownloadError(
            f"Maven failed with exit code {result.returncode} for {description}. "
            f"Fix the error below and run again. Command: {' '.join(command)}\n{tail}"
        )
