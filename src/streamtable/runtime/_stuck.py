"""Telling a consumer that is stuck from one that has nothing to read, and replacing it.

After a broker restart a client can lose every broker (librdkafka issue 5301, see
:func:`_clients.cut_off`): an assign-only consumer then hands nothing over for good, and its
own offset requests fail, while the broker serves every other client (chaos seeds 341488,
714731, 509821). A partition that has handed nothing over for a while is stuck when the
consumer has not fetched up to the broker's last stable offset (its high watermark under
read_uncommitted), or cannot ask for it while a new client reaches the cluster; a consumer that
stands at that offset waits, for writes or for an open transaction to end, and a new one would
wait too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import KafkaException as ClientException

from streamtable.runtime._clients import cut_off

log = logging.getLogger("streamtable.runtime.clients")

TP = tuple[str, int]

# How long a partition may hand nothing over before its consumer is looked at.
STALL_S = 30.0


def stable_offsets(
    consumer: Consumer, positions: Mapping[TP, int], settings: dict[str, Any] | None = None
) -> tuple[bool, dict[TP, str]]:
    """Ask ``consumer``'s broker for each partition's last stable offset (one short call each;
    the first failure ends the asking). ``positions`` holds the next offset the caller expects
    of each partition (below zero: from the beginning). Returns whether the consumer is stuck,
    and each partition's offset (or why it could not be read) as text for a log. A consumer
    that cannot ask is stuck when it has lost every broker while a new client with
    ``settings`` reaches the cluster (:func:`_clients.cut_off`; without ``settings``: always):
    while the broker is down for everyone a new consumer would not help."""
    found: dict[TP, str] = {}
    stuck = False
    for (topic, partition), expected in positions.items():
        tp = TopicPartition(topic, partition)
        try:
            low, stable = consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
        except ClientException as exc:
            found[(topic, partition)] = f"not readable: {exc.args[0] if exc.args else exc}"
            return (settings is None or cut_off(consumer, settings)), found
        found[(topic, partition)] = str(stable)
        # The consumer's own position (local, no broker call) is past the control records it
        # never hands over, but unset until it hands a record over: a partition with nothing
        # left to read (all deleted, or its start at the end) has none.
        (fetched,) = consumer.position([tp])
        stuck = stuck or max(fetched.offset, low if expected < 0 else expected) < stable
    return stuck, found


def close_in_background(client: Consumer | Producer, what: str) -> None:
    """Close a replaced client on a thread of its own: a client that has lost its brokers may
    not close (or, a producer, be destroyed) promptly, and its successor works on meanwhile."""

    def close() -> None:
        try:
            if not isinstance(client, Producer):  # a producer has nothing to close
                client.close()
        except (ClientException, RuntimeError) as exc:
            log.info("closing the replaced %s client: %s", what, exc)
        # A producer is destroyed here, when this thread drops the last reference to it.

    threading.Thread(target=close, name=f"streamtable-close-{what}", daemon=True).start()
