"""Malformed positions into a running service: each goes to the DLQ once, with its reason; the
logs name the record (topic, partition, offset) and the reason, never the value, stay bounded,
and carry no raw librdkafka lines; the valid positions all reach the table."""

from __future__ import annotations

import json
import logging
import random
import re
import socket
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

import streamtable as st
from tests.support.kafka import delete_topics, header, unique_name, wait_until
from tests.support.malformed import KINDS, PII_MARKER, malformed_positions
from us_shareholders import logs
from us_shareholders.config import ServiceSettings
from us_shareholders.digest import HOLDERS_STORE
from us_shareholders.service import Service

pytestmark = pytest.mark.integration

TIMEOUT_S = 120.0
MAX_LINE_BYTES = 4096
VALID = 40


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    app = unique_name("ush-bad")
    yield app
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(app)]
    delete_topics(kafka_admin, topics)


@pytest.fixture
def json_logs(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The service's own log setup (JSON lines on stderr, captured by ``capfd``: set up
    after it), undone afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.configure("INFO", "json")
    for handler in root.handlers:  # to file descriptor 2, as in a process, which capfd reads
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.__stderr__)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _valid(i: int) -> tuple[bytes, bytes]:
    pos = {"id": f"v{i}", "client": f"client{i}", "ticker": "AAPL", "exchange": "NYSE", "amount": i}
    return f"v{i}".encode(), json.dumps(pos).encode()


def _read_all(bootstrap: str, topic: str) -> list[Message]:
    """Every committed record of ``topic`` up to its current end offsets (which, after
    transactions, count the commit markers too: done when the position reaches them)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("g"),
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in parts]
        ends = [consumer.get_watermark_offsets(tp, 30)[1] for tp in tps]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        found: list[Message] = []

        def all_read() -> bool:
            found.extend(m for m in consumer.consume(100, timeout=0.5) if m.error() is None)
            positions = [tp.offset for tp in consumer.position(tps)]
            return all(at >= end for at, end in zip(positions, ends, strict=True))

        wait_until(all_read, f"{topic} read to its end offsets {ends}", TIMEOUT_S)
        return found
    finally:
        consumer.close()


def test_malformed_positions_go_to_the_dlq_once_and_never_into_the_logs(
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
    json_logs: None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    positions = f"{app_id}-positions"
    settings = ServiceSettings(
        bootstrap_servers=bootstrap_servers,
        application_id=app_id,
        state_dir=tmp_path / "state",
        http_port=free_port(),
        positions_topic=positions,
        clients_topic=f"{app_id}-clients",
        commit_interval_ms=200,
    )
    bad = malformed_positions(random.Random(20261130), len(KINDS))
    assert {kind for _, _, kind in bad} == set(KINDS)
    service = Service(settings)
    service.ensure_topics(partitions=2)
    # One record per produce request: the broker rejects a null key on a compacted topic with
    # the whole batch it came in, which would take valid records down with it.
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 0})
    rejected: list[tuple[bytes | None, bytes | None]] = []

    def send(key: bytes | None, value: bytes | None) -> None:
        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                rejected.append((key, value))

        producer.produce(positions, key=key, value=value, on_delivery=delivered)
        assert producer.flush(30) == 0

    valid = [_valid(i) for i in range(VALID)]
    for i in range(max(VALID, len(bad))):
        if i < VALID:
            send(*valid[i])
        if i < len(bad):
            send(bad[i][0], bad[i][1])
    # The positions topic is compacted: the broker itself refuses records without a key.
    assert sorted(kind for k, v, kind in bad if (k, v) in rejected) == sorted(
        kind for k, _, kind in bad if k is None
    )
    accepted = [(k, v) for k, v, _ in bad if (k, v) not in rejected]

    dlq = f"{app_id}-dlq"
    service.start()
    try:

        def table_complete() -> bool:
            try:
                store = service.app.store(HOLDERS_STORE)
                return all(store.get(f"client{i}") is not None for i in range(VALID))
            except st.StoreNotReady:
                return False

        wait_until(table_complete, f"all {VALID} valid positions in the table", TIMEOUT_S)
        wait_until(
            lambda: service.app.metrics.dlq_records._value.get() >= len(accepted),
            f"{len(accepted)} records sent to {dlq}",
            TIMEOUT_S,
        )
    finally:
        service.close()

    dead = _read_all(bootstrap_servers, dlq)
    assert Counter((m.key(), m.value()) for m in dead) == Counter(accepted)
    reasons = [header(m, "x-error") for m in dead]
    assert all(reasons), "every DLQ record carries its reason"
    assert max(len(r) for r in reasons) <= 1024

    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    raw = [line[:200] for line in lines if re.match(r"%\d\|", line)]
    assert raw == [], "librdkafka wrote to stderr directly"
    too_long = [len(line.encode()) for line in lines if len(line.encode()) > MAX_LINE_BYTES]
    assert too_long == [], f"log lines over {MAX_LINE_BYTES} bytes"
    leaks = [line[:300] for line in lines if PII_MARKER in line]
    assert leaks == [], f"{len(leaks)} log lines echo a record value"
    unstructured = [line[:200] for line in lines if not line.startswith('{"ts":')]
    assert unstructured == [], "every stderr line is a JSON log entry"
    entries = [orjson.loads(line) for line in lines]
    messages = "\n".join(e["message"] for e in entries)
    for msg in dead:
        where = f"{header(msg, 'x-topic').decode()}[{header(msg, 'x-partition').decode()}]"
        assert f"{where}@{header(msg, 'x-offset').decode()}" in messages
