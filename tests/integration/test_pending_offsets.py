"""Under exactly_once_v2 a task taken over from an owner whose transaction still holds the
task's input offsets (a process frozen past its session timeout: chaos seed 189807) restores
only once that transaction has ended. Its changelog records may reach the broker after the new
owner has looked at the changelog's end (they were still in the frozen process's producer);
a restore that ended before them would leave their effect out of the store, while the input
resumes at the offsets that transaction committed: the count loses what they counted."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import streamtable as st
from tests.support.kafka import TopicFactory, create_topic, delete_topics, unique_name, wait_until

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("pending")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def counting(topic: str) -> st.Topology:
    builder = st.StreamsBuilder()
    (
        builder.stream(topic, key_serde=st.serde.STRING, value_serde=st.serde.STRING)
        .group_by_key()
        .aggregate(lambda: 0, lambda k, v, agg: agg + 1, store="counts", value_serde=st.serde.JSON)
    )
    return builder.build()


def test_a_task_restores_only_after_the_previous_owners_transaction_ended(
    new_topic: TopicFactory,
    kafka_admin: AdminClient,
    bootstrap_servers: str,
    app_id: str,
) -> None:
    topic = new_topic(partitions=1, prefix="events")
    changelog = f"{app_id}-counts-changelog"
    create_topic(kafka_admin, changelog, 1, {"cleanup.policy": "compact"})
    plain = Producer({"bootstrap.servers": bootstrap_servers})
    for i in range(10):
        plain.produce(topic, key=b"k", value=f"e{i}".encode(), partition=0)
    assert plain.flush(30) == 0

    # The previous owner: a member of the app's group that counted records 0..6 and put their
    # offsets into its transaction, then froze before its changelog record left its producer.
    member = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": app_id,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    member.subscribe([topic])
    wait_until(lambda: member.consume(1, 0.2) is not None and member.assignment(), "joined", 30)
    frozen = Producer(
        {"bootstrap.servers": bootstrap_servers, "transactional.id": unique_name("tx")}
    )
    frozen.init_transactions(30)
    frozen.begin_transaction()
    frozen.send_offsets_to_transaction(
        [TopicPartition(topic, 0, 7)], member.consumer_group_metadata(), 30
    )
    member.close()  # its session ends: the group moves the task on

    config = st.StreamsConfig(
        application_id=app_id,
        bootstrap_servers=bootstrap_servers,
        state_dir=Path(tempfile.mkdtemp(prefix=f"{app_id}-")),
        processing_guarantee="exactly_once_v2",
        commit_interval_ms=100,
    )
    app = st.StreamsApp(counting(topic), config)
    app.start()
    try:
        # Give the new owner the time to take the task (a restore that does not wait for the
        # transaction plans its end now, and the task runs); one that waits stays REBALANCING.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and app.state is not st.AppState.RUNNING:
            assert app.state is not st.AppState.ERROR, f"app failed: {app.error!r}"
            time.sleep(0.05)
        # The frozen owner wakes up: its changelog record reaches the broker, it commits.
        frozen.produce(changelog, key=b"k", value=st.serde.JSON.serialize(7), partition=0)
        frozen.commit_transaction(30)

        group = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": app_id})

        def caught_up() -> bool:
            assert app.state is not st.AppState.ERROR, f"app failed: {app.error!r}"
            done = group.committed([TopicPartition(topic, 0)], 10)[0].offset == 10
            return done and app.state is st.AppState.RUNNING

        wait_until(caught_up, "the app to commit offset 10", TIMEOUT_S)
        group.close()
        # Records 7..9 counted on top of the 7 restored (not on an empty store: 3).
        assert app.store("counts").get("k") == 10
    finally:
        app.close()
