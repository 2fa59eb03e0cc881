"""The materialiser's check of contact with Kafka before a heartbeat, with a stand-in consumer."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException

from store import materialiser
from store.materialiser import _KafkaContact


class StandInConsumer:
    """Stand-in for a Consumer whose list_topics succeeds or fails like a broker that is up or down."""

    def __init__(self) -> None:
        self.broker_up = True
        self.requests = 0

    def list_topics(self, topic: str, timeout: float) -> object:
        self.requests += 1
        if not self.broker_up:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))
        return object()


def test_contact_check_follows_broker(caplog) -> None:
    consumer = StandInConsumer()
    contact = _KafkaContact("127.0.0.1:9", "features")
    with caplog.at_level(logging.INFO, logger="store.materialiser"):
        assert contact.check(consumer)
        consumer.broker_up = False
        assert not contact.check(consumer)
        assert not contact.check(consumer)
        consumer.broker_up = True
        assert contact.check(consumer)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("no contact with Kafka at 127.0.0.1:9: a metadata request for topic features failed")
    assert messages[1].startswith("contact with Kafka at 127.0.0.1:9 restored after")


def test_outage_warning_is_rate_limited(caplog, monkeypatch) -> None:
    consumer = StandInConsumer()
    consumer.broker_up = False
    contact = _KafkaContact("127.0.0.1:9", "features")
    clock = [1_000.0]
    monkeypatch.setattr(materialiser.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="store.materialiser"):
        for _ in range(100):
            clock[0] += 1.0
            contact.check(consumer)
    messages = [record.getMessage() for record in caplog.records]
    # The first warning, then one per KAFKA_OUTAGE_LOG_INTERVAL_S (60 s) of the 100 s.
    assert len(messages) == 2
    assert messages[1].startswith("still no contact with Kafka at 127.0.0.1:9 after 60 s")
    assert consumer.requests == 100


def test_message_from_broker_confirms_contact(caplog) -> None:
    consumer = StandInConsumer()
    consumer.broker_up = False
    contact = _KafkaContact("127.0.0.1:9", "features")
    with caplog.at_level(logging.INFO, logger="store.materialiser"):
        contact.check(consumer)
        contact.confirmed()
    assert caplog.records[-1].getMessage().startswith("contact with Kafka at 127.0.0.1:9 restored")
