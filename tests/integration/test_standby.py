"""Standby replicas: each task's stores are kept warm on another instance, so a fail-over
restores only the tail past the standby's checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

import streamtable as st
from streamtable.errors import StoreNotReady
from streamtable.runtime._metadata import InstanceRecord
from streamtable.runtime._standby import standby_placement
from tests.support.kafka import TopicFactory, delete_topics, unique_name, wait_until
from tests.support.positions import generate, oracle, produce_positions, seed_topology
from tests.support.runtime import stream_thread

pytestmark = pytest.mark.integration

TIMEOUT_S = 90.0


def record(instance: str, active: dict[int, tuple[int, ...]]) -> InstanceRecord:
    return InstanceRecord(instance, None, active, 1, 0, 0, 5000, "RUNNING")


def test_standbys_follow_the_active_owner_in_the_ring() -> None:
    records = [record("a", {0: (0, 1)}), record("b", {0: (2,)}), record("c", {0: (3,)})]
    assert standby_placement(records, "b", 1) == {(0, 0), (0, 1)}
    assert standby_placement(records, "c", 1) == {(0, 2)}
    assert standby_placement(records, "a", 1) == {(0, 3)}
    assert standby_placement(records, "a", 2) == {(0, 2), (0, 3)}
    assert standby_placement(records[:1], "a", 1) == set()  # alone: nowhere else to copy to


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("stb")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def contents(app: st.StreamsApp) -> dict[Any, Any] | None:
    try:
        return dict(app.store("us-share-holders").all())
    except StoreNotReady:
        return None


def test_failover_to_a_standby_restores_only_the_tail(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(partitions=4, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate(seed=3, count=20_000, ids=3_000)
    produce_positions(bootstrap_servers, topic, events)
    expected = oracle(events)

    def make(name: str) -> st.StreamsApp:
        return st.StreamsApp(
            seed_topology(topic),
            st.StreamsConfig(
                application_id=app_id,
                bootstrap_servers=bootstrap_servers,
                state_dir=tmp_path / name,
                commit_interval_ms=200,
                session_timeout_ms=6000,
                num_standby_replicas=1,
            ),
        )

    first, second = make("a"), make("b")
    first.start()
    second.start()
    try:

        def split_and_warm() -> bool:
            union: dict[Any, Any] = {}
            for app in (first, second):
                part = contents(app)
                if part is None:
                    return False
                union.update(part)
            standby = next(m for m in second.all_metadata() if m.is_local).standby
            return union == expected and any(standby.values())

        wait_until(split_and_warm, "both instances RUNNING with standbys", TIMEOUT_S)
        standbys = stream_thread(second).clients.standbys
        assert standbys is not None
        offsets = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": unique_name("wm")})

        def caught_up() -> bool:
            # Every changelog partition the standbys follow is applied to its end (the first
            # instance has committed the whole input, so the source changelogs are complete).
            positions = standbys.positions()
            ends = {
                tp: offsets.get_watermark_offsets(TopicPartition(*tp), timeout=10)[1]
                for tp in positions
            }
            return bool(positions) and all(positions[tp] >= end for tp, end in ends.items())

        try:
            wait_until(caught_up, "the standby to catch up with the changelogs", TIMEOUT_S)
        finally:
            offsets.close()
        assert standbys.applied_records > 0
        before = second.restored_records
        first.close()
        wait_until(
            lambda: contents(second) == expected, "the survivor to hold everything", TIMEOUT_S
        )
        restored = second.restored_records - before
        print(f"fail-over restored {restored} records")
        assert restored < 2_000, f"restored {restored} records: the standbys were not used"
    finally:
        first.close()
        second.close()
