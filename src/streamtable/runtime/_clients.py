"""Settings of the app's Kafka clients.

Partition assignment: ONE consumer per instance, ``group.id = application_id``, subscribed to
every source and repartition topic, with the **range** assignor. Range assigns each topic on its
own: members sorted by id, partitions split into contiguous ranges in that order. All members
subscribe to the same topics, so two topics with the same partition count are split identically
and partition ``p`` of every co-partitioned topic lands on the same member. A task
``(sub-topology, p)`` exists on the member that owns partition ``p`` of all its sub-topology's
source topics; equal counts within a sub-topology are checked at start (``topics.py``), which
is what makes that hold. (A sticky or round-robin assignor would scatter them.)

The producer uses ``murmur2_random`` so keyed records land where Java's producer puts them.
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, Producer

from streamtable.runtime.config import StreamsConfig


def main_consumer(config: StreamsConfig) -> Consumer:
    settings: dict[str, Any] = {
        **config.client_config(),
        "group.id": config.application_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "session.timeout.ms": config.session_timeout_ms,
        "heartbeat.interval.ms": max(config.session_timeout_ms // 4, 250),
    }
    if config.exactly_once:
        settings["isolation.level"] = "read_committed"
    return Consumer(settings)


def restore_consumer(config: StreamsConfig) -> Consumer:
    settings: dict[str, Any] = {
        **config.client_config(),
        # Assign-only: it never joins this group nor commits.
        "group.id": f"{config.application_id}-restore",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    if config.exactly_once:
        settings["isolation.level"] = "read_committed"
    return Consumer(settings)


def log_end_consumer(config: StreamsConfig) -> Consumer | None:
    """Under exactly_once_v2, a read_uncommitted consumer that only asks for log end offsets:
    a read_committed consumer's "high watermark" is the last stable offset, which a killed
    instance's open transaction holds back while committed records already follow it."""
    if not config.exactly_once:
        return None
    return Consumer(
        {
            **config.client_config(),
            "group.id": f"{config.application_id}-restore",  # assign-free: never joins it
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
    )


def producer(config: StreamsConfig, process_id: uuid.UUID) -> Producer:
    """The app's one producer. Under exactly_once_v2 its transactional id is
    ``<application.id>-<process id>``, the process id being kept in the state directory (as
    Kafka Streams does): a restart on the same state directory fences the killed process's
    producer and aborts its open transaction at once, rather than after the transaction
    timeout (10 s here, as Kafka Streams sets it; librdkafka's own default is 60 s), during
    which the partitions that transaction wrote to cannot be read past it (read_committed)."""
    settings: dict[str, Any] = {
        **({"transaction.timeout.ms": 10000} if config.exactly_once else {}),
        **config.client_config(),
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        # As Kafka Streams' producers: batches fill for up to 100 ms (a commit flushes anyway),
        # so the broker sees few large requests instead of many small ones.
        "linger.ms": 100,
    }
    if config.exactly_once:
        settings["transactional.id"] = f"{config.application_id}-{process_id}"
    made = Producer(settings)
    if config.exactly_once:
        made.init_transactions(60.0)
    return made
