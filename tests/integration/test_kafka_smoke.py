"""Smoke tests: the test broker is a real Kafka with the features streamtable relies on.

Plain confluent-kafka, no project code: if these fail, the environment is broken, not the library.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

# confluent_kafka.admin re-exports these without listing them in __all__, which mypy's strict
# no_implicit_reexport rejects; the types themselves still resolve.
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ResourceType,
)

from tests.support.kafka import Deadline, TopicFactory, WaitTimeout, unique_name

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0


def consumer_config(
    bootstrap_servers: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A consumer in a fresh group, with short timeouts so a test never waits long for a group."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": unique_name("group"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
    }
    return config | dict(extra or {})


def read_to_end(
    consumer: Consumer,
    partitions: int,
    what: str,
    done: Callable[[list[Message]], bool] = lambda _: True,
    timeout: float = TIMEOUT_S,
) -> list[Message]:
    """Consume until every one of ``partitions`` reported end-of-partition (the consumer needs
    ``enable.partition.eof``) after ``done(records)`` became true; return all records read."""
    deadline = Deadline(timeout)
    records: list[Message] = []
    at_end: set[int] = set()
    while len(at_end) < partitions or not done(records):
        if deadline.expired():
            raise WaitTimeout(
                f"timed out after {timeout:.0f}s reading {what}: {len(records)} record(s) read, "
                f"end reached on partitions {sorted(at_end)} of {partitions}, "
                f"done={done(records)}"
            )
        for message in consumer.consume(num_messages=1000, timeout=min(1.0, deadline.remaining())):
            error = message.error()
            partition = message.partition()
            assert partition is not None
            if error is None:
                records.append(message)
                at_end.discard(partition)  # more data after an earlier end: not at the end now
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(partition)
            else:
                raise KafkaException(error)
    return records


def assign_from_beginning(consumer: Consumer, topic: str, partitions: int) -> None:
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])


def test_compacted_topic_with_four_partitions(
    new_topic: TopicFactory, kafka_admin: AdminClient
) -> None:
    topic = new_topic(partitions=4, config={"cleanup.policy": "compact"})

    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = kafka_admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    assert configs["cleanup.policy"].value == "compact"

    metadata = kafka_admin.list_topics(topic=topic, timeout=TIMEOUT_S)
    assert sorted(metadata.topics[topic].partitions) == [0, 1, 2, 3]


def test_produce_and_consume_10000_keyed_records(
    new_topic: TopicFactory, bootstrap_servers: str
) -> None:
    topic = new_topic(partitions=4)
    count, distinct_keys = 10_000, 500

    delivered_to: defaultdict[bytes | None, set[int | None]] = defaultdict(set)
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
        else:
            delivered_to[message.key()].add(message.partition())

    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all", "linger.ms": 5})
    for i in range(count):  # 10,000 is far below the default local queue limit (100,000)
        key = f"key-{i % distinct_keys}".encode()
        producer.produce(topic, key=key, value=str(i).encode(), on_delivery=on_delivery)
        producer.poll(0)
    unsent = producer.flush(TIMEOUT_S)
    assert unsent == 0, f"{unsent} record(s) not delivered within {TIMEOUT_S:.0f}s"
    assert failures == []
    assert len(delivered_to) == distinct_keys
    assert all(len(partitions) == 1 for partitions in delivered_to.values())

    consumer = Consumer(consumer_config(bootstrap_servers, {"enable.partition.eof": True}))
    try:
        assign_from_beginning(consumer, topic, 4)
        records = read_to_end(
            consumer, 4, f"{count} records", done=lambda records: len(records) >= count
        )
    finally:
        consumer.close()

    assert len(records) == count
    assert sorted(int(r.value() or b"") for r in records) == list(range(count))
    consumed_from: defaultdict[bytes | None, set[int | None]] = defaultdict(set)
    for record in records:
        consumed_from[record.key()].add(record.partition())
    assert consumed_from == delivered_to  # each key in exactly one partition, the same both ways
    assert len({p for partitions in consumed_from.values() for p in partitions}) > 1


def test_read_committed_consumer_skips_aborted_transaction(
    new_topic: TopicFactory, bootstrap_servers: str
) -> None:
    topic = new_topic(partitions=1)
    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "transactional.id": unique_name("txn")}
    )
    producer.init_transactions(TIMEOUT_S)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"committed")
    producer.commit_transaction(TIMEOUT_S)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"aborted")
    # Flush first, so the aborted record really is in the log (abort would otherwise just drop
    # it from the local queue and the test would prove nothing).
    assert producer.flush(TIMEOUT_S) == 0
    producer.abort_transaction(TIMEOUT_S)

    # commit/abort return before the broker has written the transaction markers; a committed
    # record after the aborted one proves the end of the aborted transaction is in the log.
    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"sentinel")
    producer.commit_transaction(TIMEOUT_S)

    def values(isolation: str) -> list[bytes | None]:
        consumer = Consumer(
            consumer_config(
                bootstrap_servers, {"enable.partition.eof": True, "isolation.level": isolation}
            )
        )
        try:
            assign_from_beginning(consumer, topic, 1)
            records = read_to_end(
                consumer,
                1,
                f"{topic} with isolation.level={isolation}",
                done=lambda records: any(r.value() == b"sentinel" for r in records),
            )
        finally:
            consumer.close()
        return [r.value() for r in records]

    assert values("read_committed") == [b"committed", b"sentinel"]
    # The aborted record is in the log; only the isolation level hides it.
    assert values("read_uncommitted") == [b"committed", b"aborted", b"sentinel"]


def test_two_consumers_in_a_group_split_four_partitions(
    new_topic: TopicFactory, bootstrap_servers: str
) -> None:
    topic = new_topic(partitions=4)
    config = consumer_config(bootstrap_servers)
    consumers = [Consumer(dict(config)) for _ in range(2)]
    try:
        for consumer in consumers:
            consumer.subscribe([topic])
        deadline = Deadline(TIMEOUT_S)
        while True:
            for consumer in consumers:
                consumer.poll(0.2)  # serves the group protocol (rebalance callbacks)
            assigned = [{tp.partition for tp in consumer.assignment()} for consumer in consumers]
            if all(assigned) and set().union(*assigned) == {0, 1, 2, 3}:
                break
            if deadline.expired():
                raise WaitTimeout(
                    f"timed out after {TIMEOUT_S:.0f}s waiting for both consumers of group "
                    f"{config['group.id']} to share partitions 0-3; last assignments: {assigned}"
                )
        assert assigned[0].isdisjoint(assigned[1]), f"overlapping assignments: {assigned}"
    finally:
        for consumer in consumers:
            consumer.close()
