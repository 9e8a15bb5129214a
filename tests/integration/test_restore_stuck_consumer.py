"""A restore consumer that stops fetching while the broker holds its records is replaced, and
the restore goes on from where it stood: after a broker restart, librdkafka's assign-only
consumers sometimes never fetched again (chaos seeds 341488, 714731: "0/5723 records" for
minutes while the broker served every other client). Here the consumer is made to stop by
pausing its partition behind the restorer's back, on a real broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streamtable.runtime import _restore
from streamtable.runtime._restore import ChangelogRestorer
from streamtable.runtime._task import StreamTask
from tests.support.kafka import TopicFactory, unique_name, wait_until

pytestmark = pytest.mark.integration

RECORDS = 2000


@dataclass
class Store:
    name: str = "store"
    restored: list[bytes] = field(default_factory=list)

    def restore_batch(self, records: list[tuple[bytes, bytes | None, int]]) -> None:
        self.restored.extend(key for key, _, _ in records)


@dataclass
class Task:
    changelogs: dict[tuple[str, int], Store]
    task_id: str = "0_0"
    source_changelogs: frozenset[tuple[str, int]] = frozenset()
    restored_to: dict[tuple[str, int], int] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=lambda: {"store": None})

    def restore_start(self, tp: tuple[str, int]) -> int | None:
        return None


def test_a_restore_consumer_that_stops_fetching_is_replaced(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_restore, "STALL_WARN_S", 2.0)
    changelog = new_topic(partitions=1, config={"cleanup.policy": "compact"}, prefix="changelog")
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce(changelog, key=b"k%05d" % i, value=b"v" * 200, partition=0)
    assert producer.flush(30) == 0

    def consumer() -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": unique_name("restore"),
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                # A few records per fetch, and no fetching ahead: paused part-way through.
                "max.partition.fetch.bytes": 4096,
                "queued.min.messages": 1,
            }
        )

    first = consumer()
    made: list[Consumer] = []

    def renew() -> Consumer:
        made.append(consumer())
        return made[-1]

    restorer = ChangelogRestorer(first, timeout_s=30, renew=renew)
    store = Store()
    restorer.add(cast(StreamTask, Task({(changelog, 0): store})), {})
    tp = TopicPartition(changelog, 0)
    wait_until(lambda: restorer.step(max_records=50) or store.restored or None, "a batch", 60)
    first.pause([tp])  # from here on the first consumer hands nothing over
    assert len(store.restored) < RECORDS, "restored before the consumer could be paused"

    done: list[StreamTask] = []

    def restored() -> bool:
        done.extend(restorer.step())
        return bool(done)

    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.restore"):
        wait_until(restored, "the restore", 60)
    try:
        assert len(made) == 1, f"replaced {len(made)} times; restored {len(store.restored)}"
        assert restorer.replacements == 1
        assert sorted(set(store.restored)) == [b"k%05d" % i for i in range(RECORDS)]
        assert len(store.restored) == RECORDS, "a record was restored twice"
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("replacing the restore consumer") for m in messages), messages
    finally:
        restorer.close()
