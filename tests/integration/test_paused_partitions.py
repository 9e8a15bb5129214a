"""librdkafka keeps a partition paused by the application across ``assign()`` until the
application resumes it. The changelog reader (restores, standbys, global tables) pauses a
partition at its limit and assigns again whenever a partition is added or removed; it used to
take every partition of the new assignment as fetched again, so one paused at its limit stayed
paused, unknown to it, and a raised limit never resumed it: standbys handed nothing over until
their consumer was replaced 30 s later (chaos seed 888458). Now it resumes a paused partition
before it assigns again."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer

from streamtable.runtime._changelog import ChangelogPartition, ChangelogReader
from tests.support.kafka import TopicFactory, unique_name, wait_until

pytestmark = pytest.mark.integration


class Store:
    name = "s"

    def __init__(self) -> None:
        self.applied: list[bytes] = []

    def restore_batch(self, records: list[tuple[bytes, bytes | None, int]]) -> None:
        self.applied += [key for key, _, _ in records]


def test_a_partition_paused_at_its_limit_reads_on_after_another_is_added(
    new_topic: TopicFactory, bootstrap_servers: str
) -> None:
    topic = new_topic(partitions=2, config={"cleanup.policy": "compact"}, prefix="paused")
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 0})
    for i in range(10):
        producer.produce(topic, key=b"k%d" % i, value=b"v", partition=0)
    producer.produce(topic, key=b"other", value=b"v", partition=1)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": unique_name("paused"),  # assign-only: never joins it
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        reader = ChangelogReader(consumer, "standby")
        first, second = Store(), Store()
        reader.add([ChangelogPartition((topic, 0), cast(Any, first), OFFSET_BEGINNING, limit=5)])

        def read_until(done: Any, what: str) -> None:
            def step() -> bool:
                reader.read(100, 0.2)
                return bool(done())

            wait_until(step, what, timeout=30)

        read_until(lambda: reader.parts[(topic, 0)].paused, "partition 0 paused at its limit")
        assert len(first.applied) == 5
        # Another partition: the reader assigns both again.
        reader.add([ChangelogPartition((topic, 1), cast(Any, second), OFFSET_BEGINNING)])
        read_until(lambda: second.applied, "partition 1 read")
        reader.set_limit((topic, 0), 10)
        read_until(lambda: reader.parts[(topic, 0)].position == 10, "partition 0 read to 10")
        assert first.applied == [b"k%d" % i for i in range(10)]
    finally:
        consumer.close()
