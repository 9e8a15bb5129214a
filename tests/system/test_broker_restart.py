"""A broker restart mid-stream, under both processing guarantees: the seed topology runs in a
child process while input arrives at a steady rate, the broker stops for about 15 s and comes
back on the same data dir and port, input keeps coming; once the input stops and the group has
committed everything (committed offsets == end offsets of the input and repartition topics, past
the transaction markers under exactly_once_v2), the store equals the oracle and SIGTERM closes
the app. The test runs its OWN broker (own home and ports): it stops and starts it at will."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.support.kafka import (
    KAFKA_LOCAL,
    Deadline,
    create_topic,
    unique_name,
    wait_until,
)
from tests.support.positions import generate, oracle
from tests.system.test_runtime_faults import AppProcess, seed_args

pytestmark = pytest.mark.system

RATE = 800  # input records per second, throughout (also while the broker is down)
OUTAGE_S = 15.0
AFTER_RESTART_S = 8.0  # input keeps coming this long after the broker is back
PARTITIONS = 4
# What a broker answers about a group while its coordinator starts or moves: ask again.
_NOT_YET = (
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OwnBroker:
    """A kafka-local broker with its own home and ports, for tests that stop and start it."""

    def __init__(self, home: Path) -> None:
        self.env = {
            **os.environ,
            "KAFKA_LOCAL_HOME": str(home),
            "KAFKA_LOCAL_PORT": str(_free_port()),
            "KAFKA_LOCAL_CONTROLLER_PORT": str(_free_port()),
        }
        self.bootstrap = f"127.0.0.1:{self.env['KAFKA_LOCAL_PORT']}"

    def _run(self, command: str) -> None:
        done = subprocess.run(
            [str(KAFKA_LOCAL), command], env=self.env, capture_output=True, text=True, timeout=150
        )
        assert done.returncode == 0, f"kafka-local {command}: {done.stdout}\n{done.stderr}"

    def start(self) -> None:
        self._run("start")  # returns once a client can fetch metadata; a no-op if it runs

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    own = OwnBroker(tmp_path_factory.mktemp("kafka-home"))
    own.start()
    try:
        yield own
    finally:
        own.stop()


class PacedProducer(threading.Thread):
    """Produces ``events`` in order at ``RATE`` records/s until ``stop()``; an idempotent
    producer, so retries across the outage keep each partition's order and lose nothing."""

    def __init__(self, bootstrap: str, topic: str, events: list[tuple[str, bytes | None]]):
        super().__init__(name="paced-producer", daemon=True)
        self.topic = topic
        self.events = events
        self.sent = 0
        self.failed: list[str] = []
        self._stop_event = threading.Event()
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "partitioner": "murmur2_random",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 180_000,  # outlives the outage
            }
        )

    def _report(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))

    def run(self) -> None:
        started = time.monotonic()
        for key, value in self.events:
            if self._stop_event.is_set():
                break
            due = started + self.sent / RATE
            if self._stop_event.wait(max(due - time.monotonic(), 0.0)):
                break
            self._producer.produce(
                self.topic, key=key.encode(), value=value, on_delivery=self._report
            )
            self._producer.poll(0)
            self.sent += 1
        assert self._producer.flush(120) == 0

    def stop(self) -> int:
        self._stop_event.set()
        self.join(150)
        assert not self.is_alive(), "the producer did not finish"
        assert not self.failed, self.failed[:5]
        return self.sent


def committed_vs_end(
    bootstrap: str, group: str, topics: list[str]
) -> dict[str, tuple[int, int]] | None:
    """``{"topic[p]": (committed, end)}`` for every partition of ``topics``; None while the
    broker cannot say (the group coordinator is still loading, e.g. just after a start)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        result = {}
        for tp in consumer.committed(parts, timeout=10):
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            result[f"{tp.topic}[{tp.partition}]"] = (tp.offset, high)
        return result
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and (error.retriable() or error.code() in _NOT_YET):
            return None
        raise
    finally:
        consumer.close()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_broker_restart_mid_stream_keeps_the_table_exact(
    broker: OwnBroker, guarantee: str, tmp_path: Path
) -> None:
    broker.start()  # running unless a previous case failed with it stopped
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = unique_name("positions")
    create_topic(admin, topic, PARTITIONS, {"cleanup.policy": "compact"})
    app_id = unique_name("bounce")
    repartition = f"{app_id}-us-share-holders-repartition"
    events = generate(seed=11, count=60_000, ids=3_000)
    encoded = [(k, None if v is None else json.dumps(v).encode()) for k, v in events]

    app = AppProcess(tmp_path, "app", seed_args(broker.bootstrap, app_id, topic, guarantee))
    app.start(tmp_path / "state")
    producer = PacedProducer(broker.bootstrap, topic, encoded)
    try:
        producer.start()

        def alive() -> None:
            assert app.proc is not None
            assert app.proc.poll() is None, app.tail()

        def committed_some() -> bool:
            alive()
            offsets = committed_vs_end(broker.bootstrap, app_id, [topic]) or {}
            return sum(max(c, 0) for c, _ in offsets.values()) > 0

        wait_until(committed_some, "the app to commit some input", 60.0)
        broker.stop()
        outage = Deadline(OUTAGE_S)  # the broker stays down this long, input keeps coming
        wait_until(lambda: outage.expired() or not producer.is_alive(), "the outage", 60.0)
        broker.start()
        back = Deadline(AFTER_RESTART_S)
        wait_until(lambda: back.expired() or not producer.is_alive(), "more input", 60.0)
        sent = producer.stop()
        expected = oracle(events[:sent])

        last: list[dict[str, tuple[int, int]] | None] = [None]

        def all_committed() -> bool:
            alive()
            last[0] = committed_vs_end(broker.bootstrap, app_id, [topic, repartition])
            return last[0] is not None and all(c == end for c, end in last[0].values())

        try:
            wait_until(all_committed, "committed == end offsets (input, repartition)", 60.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {last[0]}\n{app.tail()}") from None

        def running_store() -> dict[str, list[str]] | None:
            store: dict[str, list[str]] | None = app.dump()["store"]
            return store

        store = wait_until(running_store, "the app RUNNING", 30.0)
        got = {k: frozenset(v) for k, v in store.items()}
        diff = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
        extra = sum(len(got.get(k, frozenset()) - expected.get(k, frozenset())) for k in diff)
        missing = sum(len(expected.get(k, frozenset()) - got.get(k, frozenset())) for k in diff)
        assert not diff, (
            f"{len(diff)} of {len(expected)} clients differ ({extra} extra ids, {missing} "
            f"missing), {sent} records sent"
        )
        assert app.terminate() == 0, app.tail()
    finally:
        if producer.is_alive():
            producer.stop()
        if app.proc is not None and app.proc.poll() is None:
            app.kill9()
