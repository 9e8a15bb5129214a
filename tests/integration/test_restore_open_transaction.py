"""Under exactly_once_v2 a restore reads its changelog up to the end, not only up to the last
stable offset: a killed instance's open transaction holds that offset back while transactions
committed after it (by the task's later owners) already count for the group's offsets."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

import streamtable as st
from streamtable.errors import StoreNotReady
from streamtable.runtime import _changelog
from tests.support.kafka import TopicFactory, create_topic, delete_topics, unique_name, wait_until
from tests.support.positions import seed_topology

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("lso")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def transactional(bootstrap: str) -> Producer:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": unique_name("txn"), "linger.ms": 0}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    return producer


def test_restore_waits_past_an_open_transaction_for_later_committed_ones(
    new_topic: TopicFactory,
    kafka_admin: AdminClient,
    bootstrap_servers: str,
    app_id: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_changelog, "STALL_S", 1.0)
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"}, prefix="positions")
    topology = seed_topology(topic)
    spec = topology.stores["us-share-holders"]
    changelog = f"{app_id}-us-share-holders-changelog"
    create_topic(kafka_admin, changelog, 1, {"cleanup.policy": "compact"})

    def put(producer: Producer, client: str, ids: set[str]) -> None:
        producer.produce(
            changelog,
            value=spec.value_serde.serialize(frozenset(ids)),
            key=spec.key_serde.serialize(client),
            partition=0,
        )
        assert producer.flush(30) == 0

    # What the changelog holds after: an owner committed c1, was killed inside a transaction
    # (c2, never to commit), and the task's next owner committed c3 and closed.
    first = transactional(bootstrap_servers)
    put(first, "c1", {"p1"})
    first.commit_transaction(30)
    killed = transactional(bootstrap_servers)
    put(killed, "c2", {"p2"})  # left open, as by a kill -9
    later = transactional(bootstrap_servers)
    put(later, "c3", {"p3"})
    later.commit_transaction(30)

    config = st.StreamsConfig(
        application_id=app_id,
        bootstrap_servers=bootstrap_servers,
        state_dir=Path(tempfile.mkdtemp(prefix=f"{app_id}-")),
        processing_guarantee="exactly_once_v2",
        commit_interval_ms=100,
    )
    app = st.StreamsApp(topology, config)
    app.start()
    try:
        # The restorer has read what is stable (c1) and stands at the open transaction.
        wait_until(lambda: app.restored_records >= 1, "c1 restored", TIMEOUT_S)
        # A restore that does not move is named, with the offset that holds it back: the open
        # transaction's first record (offset 2: c1, its commit marker, then c2).
        stalled = f"{changelog}[0] at 1 of 5 (last stable offset: 2, "

        def warned() -> bool:
            return any(stalled in r.getMessage() for r in caplog.records)

        wait_until(warned, "a warning naming the stalled changelog partition", TIMEOUT_S)

        def warned_twice() -> bool:
            return sum(stalled in r.getMessage() for r in caplog.records) >= 2

        wait_until(warned_twice, "the warning once more", TIMEOUT_S)
        # It has fetched up to that offset (past c1's commit marker) and waits: it is not
        # replaced. (Judged after 1 s here, before its first fetch it may have been.)
        messages = [r.getMessage() for r in caplog.records]
        since = messages[next(i for i, m in enumerate(messages) if stalled in m) :]
        assert not [m for m in since if m.startswith("replacing the restore")], since
        killed.abort_transaction(30)  # what its timeout (or fencing) would do

        def contents() -> dict[str, Any] | None:
            assert app.state is not st.AppState.ERROR, f"app failed: {app.error!r}"
            if app.state is not st.AppState.RUNNING:
                return None
            try:
                return {k: set(v) for k, v in app.store("us-share-holders").all()}
            except StoreNotReady:
                return None

        store = wait_until(contents, "the app RUNNING", TIMEOUT_S)
        assert store == {"c1": {"p1"}, "c3": {"p3"}}, store
    finally:
        app.close()
