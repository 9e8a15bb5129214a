"""The record collector: hands every record a task emits to the app's one Kafka producer.

It remembers, from delivery reports, the last offset written to each changelog partition (the
checkpoint needs it) and any delivery error (the next commit raises it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import KafkaError as ClientError
from confluent_kafka import Message, Producer

from streamtable.errors import KafkaError
from streamtable.runtime._producer import StreamsProducer
from streamtable.runtime.topics import TopicPlan

log = logging.getLogger("streamtable.runtime.collector")


class DeliveryTimedOut(KafkaError):
    """Records were not delivered within ``message.timeout.ms`` (at least once: the session
    timeout): a broker away that long, or this process frozen that long. Nothing past the
    committed offsets is known to have arrived in order: the tasks start again from them."""


Headers = list[tuple[str, bytes | None]] | None


class KafkaRecordCollector:
    """Implements the topology's ``RecordCollector`` and the stores' ``ChangelogWriter``."""

    def __init__(self, producer: StreamsProducer, plan: TopicPlan) -> None:
        self._producer = producer
        self._plan = plan
        self.changelog_offsets: dict[tuple[str, int], int] = {}  # next offset after last write
        self._errors: list[ClientError] = []
        self.before_send: Callable[[], None] | None = None  # begins a transaction under EOS
        self.sent = 0
        self._epoch = 0  # records sent before abandon_sent() belong to an earlier epoch
        self._on_delivery = self._reports_of(self._epoch)

    @property
    def producer(self) -> Producer:
        """The current client of the app's :class:`StreamsProducer` (it may be replaced)."""
        return self._producer.client

    def _reports_of(self, epoch: int) -> Callable[[ClientError | None, Message], None]:
        """The delivery callback of the records sent in ``epoch``: once they are abandoned
        (an aborted transaction), their reports, which may arrive any time later (librdkafka
        fails the purged ones with ``_PURGE_QUEUE``/``_PURGE_INFLIGHT`` at a later poll), are
        ignored."""

        def on_delivery(error: ClientError | None, message: Message) -> None:
            if epoch != self._epoch:
                return
            if error is not None:
                self._errors.append(error)
                return
            topic, partition, at = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or at is None:
                return
            key = (topic, partition)
            offset = at + 1
            if offset > self.changelog_offsets.get(key, -1):
                self.changelog_offsets[key] = offset

        return on_delivery

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        timestamp: int,
        headers: Headers,
    ) -> None:
        if self.before_send is not None:
            self.before_send()
        self.sent += 1
        produce = self.producer.produce
        while True:
            try:
                # partition -1 = the partitioner's choice; timestamp 0 = now.
                produce(
                    topic,
                    value,
                    key,
                    partition,
                    on_delivery=self._on_delivery,
                    timestamp=timestamp,
                    headers=cast(Any, headers),  # the stub's list type is invariant
                )
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: let deliveries drain

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        partition: int | None,
        headers: Headers,
    ) -> None:
        self._produce(
            topic,
            key,
            value,
            -1 if partition is None else partition,
            max(timestamp, 0),
            headers or None,
        )

    def send_changelog(
        self, topic: str, partition: int, key: bytes, value: bytes | None, timestamp: int
    ) -> None:
        self._produce(topic, key, value, partition, max(timestamp, 0), None)

    def partitions_of(self, topic: str) -> int:
        try:
            return self._plan.count(topic)
        except KeyError:
            metadata = self.producer.list_topics(topic, timeout=10)
            described = metadata.topics.get(topic)
            if described is None or not described.partitions:
                raise KafkaError(f"topic {topic} does not exist") from None
            return len(described.partitions)

    def raise_delivery_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            message = f"{len(errors)} record(s) could not be delivered: {errors[0]}"
            if all(e.code() == ClientError._MSG_TIMED_OUT for e in errors):
                raise DeliveryTimedOut(message)
            raise KafkaError(message)

    def abandon_sent(self) -> None:
        """Forget everything sent so far, after its transaction was aborted: the changelog
        offsets it reached and its delivery errors, including the reports still to come. The
        next commit must not fail on a record of an aborted transaction."""
        self._epoch += 1
        self._on_delivery = self._reports_of(self._epoch)
        self._errors = []
        self.changelog_offsets.clear()
