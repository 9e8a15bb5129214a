"""The harness's input: producing it under faults, and reading back what the topics hold.

The oracle is computed from the input topics as read back after the live phase, not from what
the producer was asked to send. Under broker stops a produce request can fail in the delivery
report and still be in the log (or time out in librdkafka while the broker wrote it), and an
idempotent producer can be cut off by a fatal error; the topics are what every instance reads,
so they are the truth the result must match. Delivery trouble is kept in the details, and a
fatally failed producer is replaced so that the rest of the input still goes out.

Malformed records carry a header naming their kind, so that the read-back knows them by their
coordinates for the dead-letter check.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from tests.chaos.kafka_io import Record, read_topic
from tests.chaos.plan import Malformed
from tests.chaos.topologies import Event

log = logging.getLogger(__name__)

MALFORMED_HEADER = "chaos-malformed"
MESSAGE_TIMEOUT_MS = 120_000  # a record not acknowledged by then is a delivery error, not a hang
FLUSH_TIMEOUT_S = 150.0
READ_BACK_TIMEOUT_S = 120.0


@dataclass
class Produced:
    """The input as read back (``events``, ``malformed``), and how producing it went."""

    events: list[Event] = field(default_factory=list)  # valid input, per topic and partition
    malformed: dict[tuple[str, int, int], str] = field(default_factory=dict)  # coords -> kind
    sent: int = 0  # records handed to a producer
    errors: list[str] = field(default_factory=list)  # delivery reports with an error
    replaced: int = 0  # producers replaced after a fatal error
    read_back: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivery_errors": len(self.errors),
            "first_errors": self.errors[:3],
            "producers_replaced": self.replaced,
            "valid_read_back": len(self.events),
            "malformed_read_back": len(self.malformed),
        }


class InputProducer:
    """An idempotent producer that is replaced when librdkafka declares it fatally failed."""

    def __init__(self, bootstrap: str, produced: Produced) -> None:
        self._bootstrap = bootstrap
        self._produced = produced
        self._fatal: KafkaError | None = None
        self._producer = self._open()

    def _open(self) -> Producer:
        self._fatal = None
        return Producer(
            {
                "bootstrap.servers": self._bootstrap,
                "partitioner": "murmur2_random",
                "enable.idempotence": True,  # order per key survives retries and broker bounces
                "linger.ms": 5,
                "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                "error_cb": self._on_error,
            }
        )

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error

    def _on_delivery(self, error: Any, msg: Any) -> None:
        if error is not None:
            self._produced.errors.append(f"{msg.topic()}: {error}")

    def _replace(self, why: object) -> None:
        log.warning("chaos input: replacing the producer after %s", why)
        self._produced.errors.append(f"producer replaced: {why}")
        self._produced.replaced += 1
        self._producer.purge()
        self._producer.flush(0)
        self._producer = self._open()

    def send(self, topic: str, value: bytes | None, key: bytes | None, timestamp: int,
             headers: list[tuple[str, str | bytes | None]] | None = None) -> None:  # fmt: skip
        """Hand one record to the producer: waits while its queue is full, and sends it on a
        new producer if this one has failed fatally."""
        while True:
            if self._fatal is not None:
                self._replace(self._fatal)
            try:
                self._producer.produce(topic, value, key, on_delivery=self._on_delivery,
                                       timestamp=timestamp, headers=headers)  # fmt: skip
            except BufferError:
                self._producer.poll(0.5)  # the local queue is full: serve delivery reports
                continue
            except KafkaException as exc:
                self._replace(exc)
                continue
            self._produced.sent += 1
            self._producer.poll(0)
            return

    def finish(self) -> None:
        left = self._producer.flush(FLUSH_TIMEOUT_S)
        if left:
            self._produced.errors.append(f"{left} records unacknowledged after {FLUSH_TIMEOUT_S}s")
            self._producer.purge()
            self._producer.flush(0)


def produce(
    producer: InputProducer,
    topics: dict[str, str],
    plan: tuple[list[Event], list[Malformed], int | None],
    times: list[int],
    seed: int,
) -> None:
    """Produce ``events`` (at ``rate`` per second, or at once) with ``malformed`` records
    spread among them (at the end when pre-loading), each at its time in ``times``."""
    events, malformed, rate = plan
    rng = random.Random(seed * 7919 + len(events))
    bad_at = (
        sorted(rng.randrange(len(events) + 1) for _ in malformed)
        if rate is not None
        else [len(events)] * len(malformed)
    )
    started = time.monotonic()
    b = 0
    for n, (role, key, value) in enumerate([*events, ("", "", None)]):
        while b < len(malformed) and bad_at[b] <= n:
            bad = malformed[b]
            producer.send(topics["positions"], bad.value, bad.key, times[n],
                          [(MALFORMED_HEADER, bad.kind.encode())])  # fmt: skip
            b += 1
        if not role:
            break
        payload = None if value is None else json.dumps(value).encode()
        producer.send(topics[role], payload, key.encode(), times[n])
        if rate is not None and n % 50 == 0:
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)  # pacing the input rate, not waiting for an event
    producer.finish()


def _read(bootstrap: str, topic: str, count: Callable[[str], int]) -> list[Record]:
    """``topic`` read to its end, asked again while the broker is not ready (just restarted:
    not leader, transport errors) for up to :data:`READ_BACK_TIMEOUT_S`."""
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    while True:
        try:
            return read_topic(bootstrap, topic, count(topic), read_committed=False)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise
            log.info("chaos input: reading %s back: %s; again", topic, exc)
            time.sleep(1.0)  # the broker is coming back: ask again


def read_back(
    bootstrap: str, topics: dict[str, str], roles: list[str], count: Callable[[str], int]
) -> Produced:
    """The input topics of ``roles`` as they are: valid records as events, in offset order per
    partition, and malformed ones by their coordinates."""
    out = Produced(read_back=True)
    for role in roles:
        topic = topics[role]
        for record in _read(bootstrap, topic, count):
            kind = record.headers.get(MALFORMED_HEADER)
            if kind is not None:
                out.malformed[(topic, record.partition, record.offset)] = kind.decode()
                continue
            if record.key is None:
                raise AssertionError(f"{topic}[{record.partition}]@{record.offset}: no key")
            value = None if record.value is None else json.loads(record.value)
            out.events.append((role, record.key.decode(), value))
    return out
