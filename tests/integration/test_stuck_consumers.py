"""A restore or global-table consumer that stops fetching while the broker holds its records is
replaced, and reading goes on from where it stood: after a broker restart, librdkafka's
assign-only consumers sometimes never fetched again (chaos seeds 341488, 714731: "0/5723
records" for minutes while the broker served every other client). Here a consumer is made to
stop by pausing its partitions behind the runtime's back, on a real broker."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import streamtable as st
from streamtable.errors import StoreNotReady
from streamtable.runtime import _changelog, _clients, _taskmanager, _thread
from streamtable.runtime._restore import ChangelogRestorer
from streamtable.runtime._task import StreamTask
from tests.support.kafka import TopicFactory, delete_topics, unique_name, wait_until
from tests.support.runtime import stream_thread

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
    monkeypatch.setattr(_changelog, "STALL_S", 3.0)
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
        # (Once, unless a slow machine took its successor as long to fetch.)
        assert len(made) >= 1, f"not replaced; restored {len(store.restored)}"
        assert restorer.replacements == len(made)
        assert sorted(set(store.restored)) == [b"k%05d" % i for i in range(RECORDS)]
        assert len(store.restored) == RECORDS, "a record was restored twice"
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("replacing the restore consumer") for m in messages), messages
    finally:
        restorer.close()


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("stuck")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def test_a_global_table_consumer_that_stops_fetching_is_replaced(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stuck, it would leave the global table behind its topic for good: every join after
    that with stale values, and nothing said."""
    monkeypatch.setattr(_changelog, "STALL_S", 3.0)
    globals_topic = new_topic(partitions=2, prefix="globals")
    events = new_topic(partitions=1, prefix="events")
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 0})
    producer.produce(globals_topic, key=b"g1", value=b'{"v": 1}', partition=0)
    assert producer.flush(30) == 0
    b = st.StreamsBuilder()
    table = b.global_table(
        globals_topic, key_serde=st.serde.STRING, value_serde=st.serde.JSON, store="g"
    )
    b.stream(events, key_serde=st.serde.STRING, value_serde=st.serde.JSON).join(
        table, lambda k, v: k, lambda e, g: g
    ).to(f"{app_id}-out", value_serde=st.serde.JSON)
    config = st.StreamsConfig(
        application_id=app_id,
        bootstrap_servers=bootstrap_servers,
        state_dir=Path(tempfile.mkdtemp(prefix=f"{app_id}-")),
        commit_interval_ms=100,
    )
    app = st.StreamsApp(b.build(), config)

    def value(key: str) -> object:
        assert app.state is not st.AppState.ERROR, f"app failed: {app.error!r}"
        try:
            return app.store("g").get(key)
        except StoreNotReady:
            return None

    app.start()
    try:
        wait_until(lambda: value("g1"), "g1 in the global table", 60)
        # Caught up and idle, it is looked at and kept.
        global_stores = stream_thread(app).clients.globals
        reader = global_stores.reader
        assert reader is not None
        wait_until(lambda: reader._looked or None, "a look", 60)
        stuck = reader.consumer
        stuck.pause([TopicPartition(globals_topic, p) for p in (0, 1)])
        with caplog.at_level(logging.WARNING, logger="streamtable.runtime.global"):
            producer.produce(globals_topic, key=b"g2", value=b'{"v": 2}', partition=1)
            assert producer.flush(30) == 0
            assert wait_until(lambda: value("g2"), "g2 in the global table", 60) == {"v": 2}
        assert value("g1") == {"v": 1}
        assert global_stores.replacements >= 1
        message = next(r.getMessage() for r in caplog.records if "replacing" in r.getMessage())
        assert f"{globals_topic}[1] at beginning: 1" in message, message
        registry = app.metrics.registry
        replaced = registry.get_sample_value(
            "streamtable_consumer_replacements_total", {"consumer": "global"}
        )
        assert replaced == global_stores.replacements
    finally:
        app.close()


def test_a_client_without_brokers_is_cut_off_from_a_reachable_cluster(
    bootstrap_servers: str,
) -> None:
    """On a real broker: a consumer that reaches no broker (here: it was only ever told of a
    closed port) is cut off; one that reaches the cluster is not."""
    settings = {"bootstrap.servers": bootstrap_servers}
    lost = Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": unique_name("lost")})
    fine = Consumer({**settings, "group.id": unique_name("fine")})
    try:
        assert _clients.cut_off(lost, settings)
        assert not _clients.cut_off(fine, settings)
    finally:
        lost.close()
        fine.close()


def test_a_group_consumer_that_lost_every_broker_is_replaced(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of its group with a consumer that knows no broker, an instance never rejoined
    (chaos seed 515885: REBALANCING for minutes while the others ran). Here the consumer is
    made to leave its group behind the app's back and is taken for cut off: a new consumer
    joins, the app runs again with its table whole."""
    # The thread looks at its group consumer, the task manager's restart too, after this long.
    monkeypatch.setattr(_thread, "GROUP_STALL_S", 1.0)
    monkeypatch.setattr(_taskmanager, "GROUP_STALL_S", 1.0)
    taken_for_cut_off: list[object] = []

    def cut_off(client: object, settings: dict[str, Any]) -> bool:
        taken_for_cut_off.append(client)
        return True

    monkeypatch.setattr(_clients, "cut_off", cut_off)
    topic = new_topic(partitions=2, prefix="words")
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 0})
    for i in range(20):
        producer.produce(topic, key=f"k{i % 5}".encode(), value=b"1")
    assert producer.flush(30) == 0
    b = st.StreamsBuilder()
    b.stream(topic, key_serde=st.serde.STRING, value_serde=st.serde.STRING).group_by_key().count(
        store="counts"
    )
    config = st.StreamsConfig(
        application_id=app_id,
        bootstrap_servers=bootstrap_servers,
        state_dir=Path(tempfile.mkdtemp(prefix=f"{app_id}-")),
        commit_interval_ms=100,
        session_timeout_ms=6000,
    )
    app = st.StreamsApp(b.build(), config)

    def counts() -> dict[str, int] | None:
        assert app.state is not st.AppState.ERROR, f"app failed: {app.error!r}"
        if app.state is not st.AppState.RUNNING:
            return None
        try:
            found = dict(app.store("counts").all())
        except StoreNotReady:
            return None
        return found if sum(found.values()) == 20 else None

    app.start()
    try:
        assert wait_until(counts, "the counts", 60) == {f"k{i}": 4 for i in range(5)}
        clients = stream_thread(app).clients
        old = clients.consumer
        with caplog.at_level(logging.WARNING, logger="streamtable.runtime.app"):
            old.unsubscribe()  # out of the group, as the cut-off consumer was
            wait_until(lambda: clients.consumer is not old or None, "a new consumer", 60)
            assert wait_until(counts, "the counts again", 60) == {f"k{i}": 4 for i in range(5)}
        assert taken_for_cut_off[0] is old
        assert any(
            r.getMessage().startswith(f"app {app_id}: replacing the group consumer")
            for r in caplog.records
        )
        replaced = app.metrics.registry.get_sample_value(
            "streamtable_consumer_replacements_total", {"consumer": "group"}
        )
        assert replaced == 1.0
    finally:
        app.close()
