"""Helpers of the fault tests: the feature job as a child process, a paced producer, and a reader
of one topic as read_committed and read_uncommitted consumers see it."""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from dreamumm.config import REPO_ROOT
from dreamumm.kafka_io import KafkaRecord
from jobs.checkpoints import METADATA_FILE

logger = logging.getLogger(__name__)

DREAMUMM_COMMAND = Path(sys.executable).parent / "dreamumm"
"""The `dreamumm` entry point of the interpreter that runs the tests."""


def job_environment(bootstrap_servers: str, topic_suffix: str, work_dir: Path,
                    checkpoint_interval_ms: int) -> dict[str, str]:
    """Return an environment that points `dreamumm run-job` at a test's own topics and work folder.

    Every DREAMUMM variable of the calling environment is dropped, so that ``load_settings`` with
    this environment gives the settings of the child process and nothing else leaks in.
    """
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("DREAMUMM")}
    overrides = {
        "KAFKA__BOOTSTRAP_SERVERS": bootstrap_servers,
        "KAFKA__EVENTS_TOPIC": f"events-{topic_suffix}",
        "KAFKA__EMBEDDINGS_TOPIC": f"embeddings-{topic_suffix}",
        "KAFKA__FEATURES_TOPIC": f"features-{topic_suffix}",
        "KAFKA__DEAD_LETTER_TOPIC": f"dead-letters-{topic_suffix}",
        "KAFKA__DELETIONS_TOPIC": f"deletions-{topic_suffix}",
        # The exactly-once sinks derive their transactional id prefix from the consumer group.
        "KAFKA__CONSUMER_GROUP": f"job-{topic_suffix}",
        "JOB__WORK_DIR": str(work_dir),
        "JOB__CHECKPOINT_INTERVAL_MS": str(checkpoint_interval_ms),
    }
    env.update({f"DREAMUMM__{name}": value for name, value in overrides.items()})
    return env


def completed_checkpoints(work_dir: Path) -> set[Path]:
    """Return the folders of every completed checkpoint under ``work_dir``, of every job id.

    Flink writes ``_metadata`` last, so a folder that contains it contains a complete checkpoint.
    Flink 2.2.1 writes it through a RecoverableWriter, which renames a temporary file on commit,
    so a crash never leaves a partial ``_metadata``.
    """
    return {metadata.parent for metadata in (work_dir / "checkpoints").glob(f"*/chk-*/{METADATA_FILE}")}


class JobExitedError(AssertionError):
    """The job's child process exited while a test expected it to run."""


class JobProcess:
    """`dreamumm run-job` (unbounded) in a process group of its own, with its output in ``log_dir``.

    The Flink JVM and its Python workers inherit the process group, so a signal to the group
    reaches every process of the job. Flink's own log goes to ``<log_dir>/<name>-flink/``.
    """

    def __init__(self, env: Mapping[str, str], log_dir: Path, name: str, restore_latest: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.flink_log_dir = log_dir / f"{name}-flink"
        command = [str(DREAMUMM_COMMAND), "run-job"]
        if restore_latest:
            command += ["--restore", "latest"]
        log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # PyFlink's gateway launcher writes the JVM's log4j file into FLINK_LOG_DIR.
            self.process = subprocess.Popen(command, env={**env, "FLINK_LOG_DIR": str(self.flink_log_dir)},
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=REPO_ROOT, start_new_session=True)
        self.started = time.monotonic()
        logger.info("started job %s (pid %s): %s", name, self.process.pid, " ".join(command))

    def is_running(self) -> bool:
        return self.process.poll() is None

    def check_running(self) -> None:
        """Raise JobExitedError, with the ends of the job's logs, if the process has exited."""
        if not self.is_running():
            raise JobExitedError(f"job {self.name} exited with code {self.process.returncode}\n{self.log_tail()}")

    def wait_for_checkpoint(self, work_dir: Path, known: set[Path], timeout_s: float) -> Path:
        """Wait until a checkpoint that is not in ``known`` completes under ``work_dir``, and return its folder.

        Raises JobExitedError if the job exits first, and TimeoutError after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            new = completed_checkpoints(work_dir) - known
            if new:
                return max(new, key=lambda folder: (folder / METADATA_FILE).stat().st_mtime_ns)
            self.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.name} completed no new checkpoint within {timeout_s:.0f} s\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """Send SIGKILL to the job's whole process group, as when its machine or container dies."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            logger.warning("job %s (pid %s) had exited before SIGKILL", self.name, self.process.pid)
        self.process.wait(timeout=10)
        logger.info("killed job %s (pid %s) with SIGKILL", self.name, self.process.pid)

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the job's process group with SIGTERM, then SIGKILL after ``timeout_s``."""
        if not self.is_running():
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("job %s did not stop within %.0f s of SIGTERM; sending SIGKILL", self.name, timeout_s)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            self.process.wait(timeout=10)

    def flink_log_lines(self, pattern: str) -> list[str]:
        """Return the lines of the job's Flink log that match the regular expression ``pattern``."""
        expression = re.compile(pattern)
        lines: list[str] = []
        for path in sorted(self.flink_log_dir.glob("*.log")):
            with path.open(encoding="utf-8", errors="replace") as log:
                lines.extend(line.rstrip("\n") for line in log if expression.search(line))
        return lines

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the job's output and of its Flink log."""
        parts = []
        for path in [self.log_path, *sorted(self.flink_log_dir.glob("*.log"))]:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            parts.append(f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts) or f"(job {self.name} wrote no log yet)"


@dataclass(frozen=True)
class OutgoingRecord:
    """A record to produce: key, value, timestamp in epoch ms, and a partition or None to hash the key."""

    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    partition: int | None = None


class PacedProducer(threading.Thread):
    """Produces records to a topic at a steady rate in a background thread.

    The producer is idempotent and retries for up to ``message_timeout_ms``, so it rides out a
    broker restart.

    NOTE: it can still write a record twice when the broker is killed with SIGKILL. One run with
    librdkafka 2.16.0 and Kafka 4.1.1 wrote two records twice, right after the first copies, and
    which side lost track of the first copies is not known. Tests count the copies in the topic.
    """

    def __init__(self, bootstrap_servers: str, topic: str, records: Sequence[OutgoingRecord], rate_per_s: float,
                 message_timeout_ms: int = 180_000) -> None:
        super().__init__(name=f"producer-{topic}", daemon=True)
        self._config = {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 20,
            "message.timeout.ms": message_timeout_ms,
            "logger": logging.getLogger(f"{__name__}.librdkafka"),
        }
        self._topic = topic
        self._records = records
        self._rate_per_s = rate_per_s
        self._flush_timeout_s = message_timeout_ms / 1000 + 10
        self.failures: list[str] = []
        self.handed_over = 0
        """Records passed to the producer so far."""
        self.error: BaseException | None = None
        self.seconds: float | None = None
        self._cancelled = threading.Event()

    def run(self) -> None:
        try:
            self._produce()
        except BaseException as error:  # noqa: BLE001, reported to the test by wait()
            self.error = error

    def _produce(self) -> None:
        producer = Producer(self._config)
        started = time.monotonic()
        for index, record in enumerate(self._records):
            if self._cancelled.is_set():
                producer.purge()
                raise RuntimeError(f"producing to {self._topic} was cancelled after {index} records")
            delay = started + index / self._rate_per_s - time.monotonic()
            producer.poll(max(0.0, delay))
            options = {} if record.partition is None else {"partition": record.partition}
            while True:
                try:
                    producer.produce(self._topic, key=record.key, value=record.value, timestamp=record.timestamp_ms,
                                     on_delivery=functools.partial(self._delivered, index), **options)
                    break
                except BufferError:
                    producer.poll(0.1)  # The local queue is full: serve acknowledgements first.
            self.handed_over = index + 1
        remaining = producer.flush(self._flush_timeout_s)
        self.seconds = time.monotonic() - started
        if remaining or self.failures:
            raise KafkaException(f"{remaining} records to {self._topic} were not acknowledged and "
                                 f"{len(self.failures)} failed; first failure: {self.failures[:1]}")

    def _delivered(self, index: int, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failures.append(f"record {index}: {error}")

    def cancel(self) -> None:
        """Stop handing over records and drop the unsent ones, for a test that fails early."""
        self._cancelled.set()
        if self.is_alive():
            self.join(10)

    def wait(self, timeout_s: float) -> None:
        """Wait until every record is acknowledged.

        Re-raises the thread's error, and raises TimeoutError if the records are not acknowledged in time.
        """
        self.join(timeout_s)
        if self.is_alive():
            raise TimeoutError(f"producing {len(self._records)} records to {self._topic} did not finish within "
                               f"{timeout_s:.0f} s ({self.handed_over} handed over)")
        if self.error is not None:
            raise self.error


@dataclass(frozen=True)
class TopicView:
    """The records of a topic as a consumer with one isolation level reads them."""

    isolation_level: str
    records: list[KafkaRecord]
    end_offsets: dict[int, int]
    """Per partition, the offset at which the consumer reached the end: the high watermark for
    read_uncommitted, the last stable offset for read_committed."""


def read_view(bootstrap_servers: str, topic: str, isolation_level: str, timeout_s: float = 60.0) -> TopicView:
    """Read every partition of ``topic`` from the beginning to its end with isolation level ``isolation_level``.

    A read_committed consumer skips the records of aborted transactions and stops at the first
    record of a transaction that is still open.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers,
        "group.id": f"fault-test-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": isolation_level,
        "enable.partition.eof": True,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
        records: list[KafkaRecord] = []
        end_offsets: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(end_offsets) < len(partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} ({isolation_level}) timed out after {timeout_s:.0f} s, "
                                   f"with only partitions {sorted(end_offsets)} read to their end")
            message = consumer.poll(0.5)
            if message is None or message.partition() in end_offsets:
                continue
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(message.error())
                end_offsets[message.partition()] = message.offset()
                continue
            records.append(KafkaRecord(topic, message.partition(), message.offset(), message.key(), message.value(),
                                       message.timestamp()[1]))
        return TopicView(isolation_level, records, end_offsets)
    finally:
        consumer.close()
