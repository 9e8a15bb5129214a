"""The record collector without a broker: after an aborted transaction (exactly_once_v2), the
delivery reports of its records, which librdkafka hands out at a later poll (purged records
fail with ``_PURGE_QUEUE``), must not fail the next commit. Found by the service's chaos
harness: after a broker bounce aborted a transaction, the next transaction committed and then
its commit raised "22 record(s) could not be delivered: _PURGE_QUEUE", and the app failed."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import KafkaError as ClientError
from confluent_kafka import Producer

from streamtable.errors import KafkaError
from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._commit import Committer
from streamtable.runtime._producer import StreamsProducer
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.runtime.topics import TopicPlan

pytestmark = pytest.mark.unit


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._coords = (topic, partition, offset)

    def topic(self) -> str:
        return self._coords[0]

    def partition(self) -> int:
        return self._coords[1]

    def offset(self) -> int:
        return self._coords[2]


class FakeProducer:
    """Keeps each record's delivery callback; the test decides when reports arrive."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, int, Any]] = []

    def produce(self, topic: str, _value: Any, _key: Any, partition: int, **kw: Any) -> None:
        self.pending.append((topic, partition, kw["on_delivery"]))


def collector() -> tuple[KafkaRecordCollector, FakeProducer]:
    producer = FakeProducer()
    plan = TopicPlan({"out": 1, "app-store-changelog": 1}, {})
    streams_producer = StreamsProducer(lambda: cast(Producer, producer), transactional=False)
    return KafkaRecordCollector(streams_producer, plan), producer


def test_reports_of_an_abandoned_transaction_do_not_fail_the_next_commit() -> None:
    c, producer = collector()
    for n in range(3):
        c.send("out", b"k", str(n).encode(), 0, 0, None)
    c.send_changelog("app-store-changelog", 0, b"k", b"v", 0)
    c.abandon_sent()  # the transaction was aborted: the app rebuilds its state
    purged = ClientError(ClientError._PURGE_QUEUE)
    for _topic, _partition, report in producer.pending[:3]:
        report(purged, None)  # the purge reports arrive at a later poll
    producer.pending[3][2](None, FakeMessage("app-store-changelog", 0, 7))
    c.raise_delivery_errors()  # the next commit: nothing of the aborted transaction counts
    assert c.changelog_offsets == {}


def test_a_record_sent_after_the_abort_still_reports_its_error() -> None:
    c, producer = collector()
    c.send("out", b"k", b"old", 0, 0, None)
    c.abandon_sent()
    c.send("out", b"k", b"new", 0, 0, None)
    c.send_changelog("app-store-changelog", 0, b"k", b"v", 0)
    producer.pending[0][2](ClientError(ClientError._PURGE_QUEUE), None)
    producer.pending[1][2](ClientError(ClientError.MSG_SIZE_TOO_LARGE), None)
    producer.pending[2][2](None, FakeMessage("app-store-changelog", 0, 7))
    with pytest.raises(KafkaError, match="1 record"):
        c.raise_delivery_errors()
    assert c.changelog_offsets == {("app-store-changelog", 0): 8}


class TransactionalProducer(FakeProducer):
    def begin_transaction(self) -> None:
        pass

    def abort_transaction(self, _timeout: float) -> None:
        pass


def test_an_abort_on_its_own_abandons_what_its_transaction_sent() -> None:
    """The abort of lost partitions (exactly_once_v2) comes without a rebuild of the tasks: the
    committer's abort itself abandons the transaction's records. Their purge reports failed the
    next transaction, which had gone through, and the app with it (chaos seed 747451: "452
    record(s) could not be delivered: Local: Purged in queue")."""
    producer = TransactionalProducer()
    plan = TopicPlan({"out": 1}, {})
    streams_producer = StreamsProducer(lambda: cast(Producer, producer), transactional=True)
    c = KafkaRecordCollector(streams_producer, plan)
    committer = Committer(
        cast(Any, None), streams_producer, c, True, StreamsMetrics("abort-abandons")
    )
    c.send("out", b"k", b"v", 0, 0, None)  # begins the transaction
    assert streams_producer.in_transaction
    committer.abort()  # the partitions were lost
    producer.pending[0][2](ClientError(ClientError._PURGE_QUEUE), None)  # at a later poll
    c.raise_delivery_errors()  # the next commit
