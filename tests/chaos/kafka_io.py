"""Reading what a chaos run left on the broker: committed offsets against end offsets, and whole
topics (read_committed where exactly-once is claimed)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.support.kafka import Deadline


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def partition_count(admin: AdminClient, topic: str) -> int:
    described = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
    if described is None or described.error is not None:
        return 0
    return len(described.partitions)


def group_lag(bootstrap: str, group: str, topics: dict[str, int]) -> dict[tuple[str, int], int]:
    """``{(topic, partition): end offset - committed offset}`` of ``group``; a partition with no
    committed offset counts its whole end offset. The end is the high watermark: under
    exactly_once_v2 that includes the last transaction marker, which a caught-up group's
    committed offset must have passed (lag 0, as ``kafka-consumer-groups`` shows it)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            # librdkafka's default, read_committed, reports the last stable offset as the end
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        tps = [TopicPartition(t, p) for t, n in topics.items() for p in range(n)]
        committed = consumer.committed(tps, timeout=15)
        lag: dict[tuple[str, int], int] = {}
        for tp in committed:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=15, cached=False
            )
            lag[(tp.topic, tp.partition)] = high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()


def unstable_partitions(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """``{partition: (last stable offset, log end offset)}`` where an open transaction holds the
    last stable offset back (a read_committed reader cannot pass it yet)."""
    ends: list[dict[int, int]] = []
    for level in ("read_committed", "read_uncommitted"):
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "chaos-ends", "isolation.level": level}
        )
        try:
            ends.append(
                {
                    p: consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=15, cached=False
                    )[1]
                    for p in range(partitions)
                }
            )
        finally:
            consumer.close()
    stable, end = ends
    return {p: (stable[p], end[p]) for p in range(partitions) if stable[p] != end[p]}


def read_topic(
    bootstrap: str, topic: str, partitions: int, read_committed: bool, timeout: float = 90.0
) -> list[Record]:
    """Every record of ``topic`` up to its end, partition by partition in offset order. Read
    committed, it first waits (up to ``timeout``) until no open transaction holds the end back:
    a killed producer's transaction is aborted by the broker after the transaction timeout."""
    if read_committed:
        wait = Deadline(timeout)
        while unstable := unstable_partitions(bootstrap, topic, partitions):
            if wait.expired():
                raise AssertionError(
                    f"{topic}: open transactions hold partitions back for over {timeout:.0f}s: "
                    f"{{partition: (last stable, log end)}} = {unstable}"
                )
            time.sleep(0.5)  # polling for the broker to end the transaction
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        }
    )
    records: list[Record] = []
    try:
        pending = set()
        assignment = []
        for p in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            if high > low:
                pending.add(p)
                assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        consumer.assign(assignment)
        deadline = Deadline(timeout)
        while pending:
            if deadline.expired():
                raise AssertionError(f"reading {topic}: partitions {sorted(pending)} never ended")
            for msg in consumer.consume(500, timeout=0.5):
                error = msg.error()
                partition = msg.partition()
                if partition is None:
                    continue
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                        continue
                    raise AssertionError(f"reading {topic}: {error}")
                offset = msg.offset()
                assert offset is not None
                records.append(
                    Record(partition, offset, msg.key(), msg.value(), _headers(msg.headers()))
                )
        return records
    finally:
        consumer.close()


def _headers(
    raw: dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None,
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    items = raw.items() if isinstance(raw, dict) else raw or []
    for key, value in items:
        out[key] = value.encode() if isinstance(value, str) else (value or b"")
    return out
