"""Integration tests: record topics of a real broker and replay them into other topics."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Consumer, Producer, TopicPartition

from dreamumm.cli import main
from infra import LocalBroker, TopicSpec, ensure_topics
from recording import (
    Manifest,
    PartitionRecording,
    ReplayError,
    ReplayResult,
    StartPosition,
    StopPosition,
    parse_start,
    read_record_file,
    record_topic,
    replay_recording,
)
from recording.record_file import RecordFileWriter
from schemas import WATCH_EVENT, AvroCodec

pytestmark = pytest.mark.integration

# Recent enough that no retention rule deletes the records, old enough to differ from append times.
BASE_MS = (int(time.time() * 1000) - 600_000) // 1000 * 1000
Header = tuple[str, bytes | None]


@dataclass(frozen=True)
class Sent:
    """A record as the test produced it, or as a consumer read it back."""

    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    timestamp_ms: int


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(broker: LocalBroker, partitions: int, config: dict[str, str] | None = None) -> str:
    name = unique_topic("recorded")
    ensure_topics(broker.bootstrap_servers, [TopicSpec(name, partitions, config=config or {})])
    return name


def produce(producer: Producer, topic: str, records: list[tuple[int, Sent]]) -> None:
    for partition, record in records:
        producer.produce(topic, key=record.key, value=record.value, partition=partition,
                         headers=list(record.headers), timestamp=record.timestamp_ms)
    assert producer.flush(30) == 0


def plain_producer(broker: LocalBroker) -> Producer:
    return Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True, "linger.ms": 0})


def transactional_producer(broker: LocalBroker) -> Producer:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": unique_topic("tx"),
                         "linger.ms": 0})
    producer.init_transactions(30)
    return producer


def read_all(broker: LocalBroker, topic: str, timeout_s: float = 30.0) -> dict[int, list[tuple[int, Sent]]]:
    """Read every committed record of ``topic``: {partition: [(timestamp type, record), ...]} in offset order."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": unique_topic("reader"),
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: dict[int, list[tuple[int, Sent]]] = {p: [] for p in partitions}
        deadline = time.monotonic() + timeout_s
        # Before the first fetch a partition's position is negative, so empty partitions are left out.
        unread = [TopicPartition(topic, p) for p in partitions if ends[p] > 0]
        while any(position.offset < ends[position.partition] for position in consumer.position(unread)):
            assert time.monotonic() < deadline, f"reading {topic} timed out"
            for message in consumer.consume(100, 0.2):
                assert message.error() is None, message.error()
                timestamp_type, timestamp_ms = message.timestamp()
                sent = Sent(message.key(), message.value(), tuple(message.headers() or ()), timestamp_ms)
                records[message.partition()].append((timestamp_type, sent))
        return records
    finally:
        consumer.close()


def records_of(read: dict[int, list[tuple[int, Sent]]]) -> dict[int, list[Sent]]:
    return {partition: [record for _type, record in items] for partition, items in read.items()}


@pytest.fixture(scope="module")
def transactional_topic(kafka_broker: LocalBroker) -> tuple[str, dict[int, list[Sent]]]:
    """A 3-partition topic with nulls, headers, an Avro value, and aborted and committed transactions.

    Returns the topic and the committed records per partition in offset order. Tests only read it.
    """
    topic = create_topic(kafka_broker, 3)
    expected: dict[int, list[Sent]] = {0: [], 1: [], 2: []}
    event = AvroCodec.for_schema(WATCH_EVENT).encode(
        {"user_id": "7", "video_id": "9", "watch_time_ms": 1500.0, "duration_ms": 9000, "event_time_ms": BASE_MS})
    plain = [
        (0, Sent(b"user-1", b"v1", (("trace", b"a"), ("trace", b"b"), ("empty", None)), BASE_MS + 10)),
        (0, Sent(None, b"no key", (), BASE_MS + 5)),
        (1, Sent(b"user-2", None, (), BASE_MS + 20)),
        (1, Sent(b"", b"", (("h", b""),), BASE_MS + 30)),
        (2, Sent(b"user-7", event, (), BASE_MS + 40)),
        (2, Sent(b"user-7", event, (("source", b"test"),), BASE_MS + 50)),
    ]
    producer = plain_producer(kafka_broker)
    produce(producer, topic, plain)
    for partition, record in plain:
        expected[partition].append(record)

    transactions = transactional_producer(kafka_broker)
    transactions.begin_transaction()
    produce(transactions, topic, [(p, Sent(b"k", b"aborted", (), BASE_MS + 60)) for p in (0, 0, 1, 1)])
    transactions.abort_transaction(30)

    committed = [(0, Sent(b"k0", b"committed-0", (), BASE_MS + 70)), (2, Sent(b"k2", b"committed-2", (), BASE_MS + 80))]
    transactions.begin_transaction()
    produce(transactions, topic, committed)
    transactions.commit_transaction(30)
    for partition, record in committed:
        expected[partition].append(record)

    after = [(1, Sent(b"user-3", b"after the aborted batch", (), BASE_MS + 90))]
    produce(producer, topic, after)
    expected[1].append(after[0][1])

    # Partition 2 ends with aborted records and the abort marker, which a read-committed reader never receives.
    transactions.begin_transaction()
    produce(transactions, topic, [(2, Sent(b"k", b"aborted", (), BASE_MS + 100))] * 2)
    transactions.abort_transaction(30)
    return topic, expected


def test_record_keeps_committed_records(
    kafka_broker: LocalBroker, transactional_topic: tuple[str, dict[int, list[Sent]]], tmp_path: Path
) -> None:
    topic, expected = transactional_topic

    manifest = record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")

    assert manifest.topic == topic
    assert manifest.partition_count == 3
    assert manifest.record_count == sum(len(records) for records in expected.values())
    for recorded in manifest.partitions:
        records = list(read_record_file(tmp_path / "rec" / recorded.file))
        assert [record["value"] for record in records] == [sent.value for sent in expected[recorded.partition]]
        assert recorded.record_count == len(expected[recorded.partition])
        assert recorded.start_offset == 0
        assert recorded.first_timestamp_ms == expected[recorded.partition][0].timestamp_ms
        assert recorded.last_timestamp_ms == expected[recorded.partition][-1].timestamp_ms
        assert all(record["timestamp_type"] == "CREATE_TIME" for record in records)
    # Aborted records and transaction markers take offsets, so every partition's range exceeds its count.
    assert all(recorded.end_offset > recorded.record_count for recorded in manifest.partitions)
    assert Manifest.load(tmp_path / "rec") == manifest


def test_record_counts_value_schemas(
    kafka_broker: LocalBroker, transactional_topic: tuple[str, dict[int, list[Sent]]], tmp_path: Path
) -> None:
    topic, _expected = transactional_topic

    manifest = record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")

    assert len(manifest.value_schemas) == 1
    assert manifest.value_schemas[0].schema_file == "watch_event.avsc"
    assert manifest.value_schemas[0].record_count == 2
    assert manifest.null_value_count == 1
    assert manifest.unmarked_value_count == manifest.record_count - 3


def test_replay_round_trip(
    kafka_broker: LocalBroker, transactional_topic: tuple[str, dict[int, list[Sent]]], tmp_path: Path
) -> None:
    topic, expected = transactional_topic
    record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")
    target = unique_topic("replayed")

    result = replay_recording(kafka_broker.bootstrap_servers, tmp_path / "rec", target)

    replayed = read_all(kafka_broker, target)
    assert records_of(replayed) == expected
    assert {timestamp_type for items in replayed.values() for timestamp_type, _ in items} == {TIMESTAMP_CREATE_TIME}
    assert result.source_topic == topic
    assert result.target_topic == target
    assert result.start_offsets() == {0: 0, 1: 0, 2: 0}
    assert result.end_offsets() == {partition: len(records) for partition, records in expected.items()}
    assert result.replaced_timestamp_count == 0
    assert ReplayResult.load(tmp_path / "rec" / "replay-manifest.json") == result


def test_record_stops_at_open_transaction(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    topic = create_topic(kafka_broker, 1)
    produce(plain_producer(kafka_broker), topic, [(0, Sent(b"k", b"committed", (), BASE_MS))] * 3)
    transactions = transactional_producer(kafka_broker)
    transactions.begin_transaction()
    produce(transactions, topic, [(0, Sent(b"k", b"open", (), BASE_MS))])
    produce(plain_producer(kafka_broker), topic, [(0, Sent(b"k", b"after the open transaction", (), BASE_MS))])

    try:
        # The last stable offset stops before the open transaction, so recording ends by itself.
        manifest = record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec", idle_timeout_s=5)
    finally:
        transactions.abort_transaction(30)

    assert manifest.end_offsets() == {0: 3}
    assert manifest.record_count == 3


def test_record_between_timestamps_and_continue(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    topic = create_topic(kafka_broker, 1)
    producer = plain_producer(kafka_broker)
    produce(producer, topic, [(0, Sent(b"k", str(i).encode(), (), BASE_MS + i * 1000)) for i in range(10)])

    window = record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "window",
                          StartPosition.at_timestamp(BASE_MS + 3000), StopPosition.at_timestamp(BASE_MS + 7000))
    produce(producer, topic, [(0, Sent(b"k", str(i).encode(), (), BASE_MS + i * 1000)) for i in range(10, 13)])
    rest = record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rest",
                        parse_start(f"offsets:{tmp_path / 'window' / 'manifest.json'}"))

    assert (window.partitions[0].start_offset, window.partitions[0].end_offset) == (3, 7)
    assert [r["value"] for r in read_record_file(tmp_path / "window" / "partition-0.avro")] == [b"3", b"4", b"5", b"6"]
    assert (rest.partitions[0].start_offset, rest.partitions[0].end_offset) == (7, 13)
    assert rest.record_count == 6


def test_record_log_append_time_source(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    topic = create_topic(kafka_broker, 1, {"message.timestamp.type": "LogAppendTime"})
    produce(plain_producer(kafka_broker), topic, [(0, Sent(b"k", b"v", (), BASE_MS))])
    appended = read_all(kafka_broker, topic)[0][0]
    target = unique_topic("replayed")

    record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")
    replay_recording(kafka_broker.bootstrap_servers, tmp_path / "rec", target)

    assert appended[0] == TIMESTAMP_LOG_APPEND_TIME
    assert next(read_record_file(tmp_path / "rec" / "partition-0.avro"))["timestamp_type"] == "LOG_APPEND_TIME"
    # The replay keeps the broker's append time as the record's CreateTime.
    assert read_all(kafka_broker, target)[0] == [(TIMESTAMP_CREATE_TIME, appended[1])]


def test_replay_rejects_append_time_target(
    kafka_broker: LocalBroker, transactional_topic: tuple[str, dict[int, list[Sent]]], tmp_path: Path
) -> None:
    topic, expected = transactional_topic
    record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")
    target = create_topic(kafka_broker, 3, {"message.timestamp.type": "LogAppendTime"})

    with pytest.raises(ReplayError, match=f"topic '{target}' .* message.timestamp.type=LogAppendTime") as error:
        replay_recording(kafka_broker.bootstrap_servers, tmp_path / "rec", target)
    result = replay_recording(kafka_broker.bootstrap_servers, tmp_path / "rec", target, allow_log_append_time=True)

    assert "--allow-log-append-time" in str(error.value)
    assert result.record_count == sum(len(records) for records in expected.values())


def test_replay_fewer_target_partitions(
    kafka_broker: LocalBroker, transactional_topic: tuple[str, dict[int, list[Sent]]], tmp_path: Path
) -> None:
    topic, expected = transactional_topic
    record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")
    target = create_topic(kafka_broker, 1)

    with pytest.raises(ReplayError, match=r"has fewer partitions \(1\) than the recording of .* \(3\)"):
        replay_recording(kafka_broker.bootstrap_servers, tmp_path / "rec", target)
    result = replay_recording(kafka_broker.bootstrap_servers, tmp_path / "rec", target, partitioning="key")

    replayed = records_of(read_all(kafka_broker, target))[0]
    assert result.end_offsets() == {0: sum(len(records) for records in expected.values())}
    # Each source partition's records keep their order among themselves.
    for records in expected.values():
        assert [record for record in replayed if record in records] == records


def test_replay_paces_by_timestamps(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    topic = create_topic(kafka_broker, 2)
    # Six records 200 ms apart, alternating partitions: 1 s from first to last.
    produce(plain_producer(kafka_broker), topic,
            [(i % 2, Sent(b"k", str(i).encode(), (), BASE_MS + i * 200)) for i in range(6)])
    record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")

    started = time.monotonic()
    result = replay_recording(kafka_broker.bootstrap_servers, tmp_path / "rec", unique_topic("replayed"), speed=2.0)
    elapsed = time.monotonic() - started

    # At twice real time the records span 0.5 s, and the margin allows for timer granularity.
    assert elapsed >= 0.45
    assert result.record_count == 6


def test_cli_record_and_replay(
    kafka_broker: LocalBroker,
    transactional_topic: tuple[str, dict[int, list[Sent]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, expected = transactional_topic
    monkeypatch.setenv("DREAMUMM__KAFKA__BOOTSTRAP_SERVERS", kafka_broker.bootstrap_servers)
    target = unique_topic("replayed")
    replay_manifest = tmp_path / "replay.json"

    record_status = main(["record", "--topic", topic, "--out", str(tmp_path / "rec")])
    replay_status = main(["replay", "--in", str(tmp_path / "rec"), "--topic", target,
                          "--manifest-out", str(replay_manifest)])

    total = sum(len(records) for records in expected.values())
    output = capsys.readouterr().out
    assert record_status == 0
    assert replay_status == 0
    assert f"recorded {total} records of {topic} (3 partitions)" in output
    assert "watch_event.avsc (dev.dreamumm.v1.WatchEvent)" in output
    assert f"replayed {total} records of {topic} into {target}" in output
    assert ReplayResult.load(replay_manifest).record_count == total


def test_cli_replay_append_time_error(
    kafka_broker: LocalBroker,
    transactional_topic: tuple[str, dict[int, list[Sent]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, _expected = transactional_topic
    monkeypatch.setenv("DREAMUMM__KAFKA__BOOTSTRAP_SERVERS", kafka_broker.bootstrap_servers)
    record_topic(kafka_broker.bootstrap_servers, topic, tmp_path / "rec")
    target = create_topic(kafka_broker, 3, {"message.timestamp.type": "LogAppendTime"})

    status = main(["replay", "--in", str(tmp_path / "rec"), "--topic", target])

    assert status == 1
    assert f"replay failed: topic '{target}'" in caplog.text


def test_replay_replaces_zero_timestamp(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    # confluent-kafka cannot produce timestamp 0 (it means "now" there), so the recording is written by hand.
    writer = RecordFileWriter(tmp_path / "partition-0.avro", "source", 0)
    writer.write({"partition": 0, "offset": 0, "timestamp_ms": 0, "timestamp_type": "CREATE_TIME",
                  "key": b"k", "value": b"v", "headers": []})
    writer.close()
    Manifest("source", 1, (PartitionRecording(0, "partition-0.avro", 0, 1, 1, 0, 0),), (),
             null_value_count=0, unmarked_value_count=1).save(tmp_path)
    target = unique_topic("replayed")
    before_ms = int(time.time() * 1000)

    result = replay_recording(kafka_broker.bootstrap_servers, tmp_path, target)

    timestamp_type, record = read_all(kafka_broker, target)[0][0]
    assert result.replaced_timestamp_count == 1
    assert timestamp_type == TIMESTAMP_CREATE_TIME
    assert record.timestamp_ms >= before_ms
