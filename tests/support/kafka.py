"""Helpers for tests against a real Kafka broker.

The broker is either the one named by ``KAFKA_BOOTSTRAP_SERVERS`` or a local Apache Kafka started
with ``tools/kafka/kafka-local``. Everything here waits on an observable condition with a deadline
(never a fixed sleep), and every expired deadline fails with a message saying what was awaited.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

# confluent_kafka.admin re-exports NewTopic without listing it in __all__, which mypy strict
# (no_implicit_reexport) rejects; the type itself still resolves.
from confluent_kafka.admin import AdminClient, NewTopic

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = REPO_ROOT / "tools" / "kafka" / "kafka-local"

# Generous: the first topic on a fresh broker, or a busy 2-core CI box, can take seconds.
DEFAULT_TIMEOUT_S = 60.0

T = TypeVar("T")


def unique_name(prefix: str) -> str:
    """A fresh name, valid as a topic, group or transactional id (``[a-zA-Z0-9._-]``)."""
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class Deadline:
    """A point in (monotonic) time after which a wait has failed."""

    seconds: float
    _end: float = field(init=False)

    def __post_init__(self) -> None:
        self._end = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._end


class WaitTimeout(AssertionError):
    """A condition a test waited for did not happen in time."""


def wait_until(
    condition: Callable[[], T | None],
    what: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.1,
) -> T:
    """Call ``condition`` until it returns something other than None or False; return that.

    ``what`` describes the awaited state; it is the failure message when ``timeout`` expires.
    """
    deadline = Deadline(timeout)
    while True:
        result = condition()
        if result is not None and result is not False:
            return result
        if deadline.expired():
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(min(interval, deadline.remaining()))


# --- the broker ---------------------------------------------------------------------------------


@dataclass
class LocalKafka:
    """A broker started by kafka-local for this test session; ``stop`` ends it."""

    bootstrap_servers: str
    started_here: bool

    def stop(self) -> None:
        if self.started_here:
            subprocess.run([str(KAFKA_LOCAL), "stop"], check=True, capture_output=True, text=True)


def start_kafka_local() -> LocalKafka:
    """Start kafka-local (a no-op if it already runs) and return its bootstrap address.

    ``started_here`` is False when a broker from the same home was already running: that one
    belongs to someone else (a developer's ``make kafka-start``) and must outlive the session.
    """
    status = subprocess.run([str(KAFKA_LOCAL), "status"], capture_output=True, text=True)
    already_running = status.returncode == 0
    started = subprocess.run([str(KAFKA_LOCAL), "start"], capture_output=True, text=True)
    lines = started.stdout.strip().splitlines()
    if started.returncode != 0 or not lines or not lines[-1].startswith("bootstrap="):
        raise RuntimeError(
            f"{KAFKA_LOCAL} start failed (exit {started.returncode}):\n"
            f"{started.stdout}\n{started.stderr}"
        )
    return LocalKafka(lines[-1].removeprefix("bootstrap="), started_here=not already_running)


# --- topics -------------------------------------------------------------------------------------


class TopicFactory(Protocol):
    """Creates a uniquely named topic, waits until it is usable and returns its name."""

    def __call__(
        self,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        prefix: str = "topic",
    ) -> str: ...


def admin_client(bootstrap_servers: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap_servers})


def _topic_ready(admin: AdminClient, topic: str, partitions: int) -> bool:
    """True once metadata lists ``topic`` without error and every partition has a leader."""
    try:
        metadata = admin.list_topics(topic=topic, timeout=5)
    except KafkaException:
        return False
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return False
    parts = described.partitions
    return len(parts) == partitions and all(p.leader >= 0 for p in parts.values())


def create_topic(
    admin: AdminClient,
    name: str,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Create ``name`` and return once its metadata (all partitions, with leaders) is visible."""
    new = NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
    futures = admin.create_topics([new], operation_timeout=timeout, request_timeout=timeout)
    futures[name].result(timeout=timeout)  # raises KafkaException on failure
    wait_until(
        lambda: _topic_ready(admin, name, partitions),
        f"topic {name!r} with {partitions} partition(s) to appear in metadata",
        timeout,
    )


def delete_topics(
    admin: AdminClient, names: Iterable[str], timeout: float = DEFAULT_TIMEOUT_S
) -> None:
    """Delete topics; ones that are already gone are fine."""
    names = list(names)
    if not names:
        return
    futures = admin.delete_topics(names, operation_timeout=timeout, request_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (
                isinstance(error, KafkaError) and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            ):
                raise


def first_record(bootstrap: str, topic: str, timeout: float = DEFAULT_TIMEOUT_S) -> Message:
    """The first record of partition 0 of ``topic`` (e.g. a dead-letter topic), awaited."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": unique_name("g"), "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

        def arrived() -> Message | None:
            for msg in consumer.consume(10, timeout=0.5):
                if msg.error() is None:
                    return msg
            return None

        return wait_until(arrived, f"a record on {topic}", timeout)
    finally:
        consumer.close()


def header(msg: Message, name: str) -> bytes:
    """A record header's value as bytes (empty when absent)."""
    raw = msg.headers() or []
    for key, value in raw.items() if isinstance(raw, dict) else raw:
        if key == name:
            return value.encode() if isinstance(value, str) else (value or b"")
    return b""
