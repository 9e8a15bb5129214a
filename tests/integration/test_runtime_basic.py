"""StreamsApp on a real broker: the seed topology converges to a brute-force oracle, restores
from checkpoints, sends bad records to the dead-letter topic, and refuses bad setups."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import streamtable as st
from streamtable.errors import CoPartitioningError, StateDirLocked, StoreNotReady
from streamtable.runtime import _context
from tests.support.kafka import (
    TopicFactory,
    first_record,
    header,
    unique_name,
    wait_until,
)
from tests.support.positions import (
    RecordsRefused,
    generate,
    oracle,
    produce,
    produce_positions,
    seed_topology,
)
from tests.support.runtime import task_states

pytestmark = pytest.mark.integration

TIMEOUT_S = 90.0


def contents(app: st.StreamsApp, store: str) -> dict[Any, Any] | None:
    try:
        return dict(app.store(store).all())
    except StoreNotReady:
        return None


def converge(app: st.StreamsApp, expected: dict[str, frozenset[str]]) -> None:
    last: list[dict[Any, Any] | None] = [None]

    def check() -> bool:
        assert app.state is not st.AppState.ERROR, f"app failed: {app.error!r}"
        last[0] = contents(app, "us-share-holders")
        return last[0] == expected

    try:
        wait_until(check, "the store to equal the oracle", TIMEOUT_S)
    except AssertionError:
        got = last[0] or {}
        diff = {k for k in set(got) | set(expected) if got.get(k) != expected.get(k)}
        tasks = task_states(app)
        raise AssertionError(
            f"store differs from oracle for {len(diff)} keys: {sorted(diff)[:5]} "
            f"(store {'not ready' if last[0] is None else f'has {len(got)} keys'}, "
            f"app {app.state.name}, tasks {tasks})"
        ) from None


def make_app(
    topology: st.Topology, app_id: str, bootstrap: str, state_dir: Path, **settings: Any
) -> st.StreamsApp:
    settings.setdefault("commit_interval_ms", 300)
    config = st.StreamsConfig(
        application_id=app_id,
        bootstrap_servers=bootstrap,
        state_dir=state_dir,
        session_timeout_ms=6000,
        **settings,
    )
    return st.StreamsApp(topology, config)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_seed_topology_matches_oracle(
    guarantee: str,
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
) -> None:
    topic = new_topic(partitions=4, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate(1, 3000, 400)
    produce_positions(bootstrap_servers, topic, events[:1500])
    commit = 300 if guarantee == "at_least_once" else 100
    with make_app(
        seed_topology(topic),
        app_id,
        bootstrap_servers,
        tmp_path,
        processing_guarantee=guarantee,
        commit_interval_ms=commit,
    ) as app:
        converge(app, oracle(events[:1500]))
        produce_positions(bootstrap_servers, topic, events[1500:])
        converge(app, oracle(events))
        assert app.store("us-share-holders").get("c1") == oracle(events).get("c1")

        def gauges() -> dict[str, float] | None:
            found: dict[str, float] = {}
            for family in app.metrics.registry.collect():
                for sample in family.samples:
                    found[sample.name] = found.get(sample.name, 0.0) + sample.value
            lag = found.get("streamtable_consumer_lag")
            return found if lag == 0 and found.get("streamtable_store_entries", 0) > 0 else None

        metrics = wait_until(gauges, "lag 0 and store sizes in the metrics", TIMEOUT_S)
        assert metrics["streamtable_records_processed_total"] >= len(events)
        # The metered layer: every processed position read and wrote the stores.
        assert metrics["streamtable_store_operations_total"] >= len(events)
    assert app.state is st.AppState.NOT_RUNNING


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_restart_restores_from_checkpoint_or_from_scratch(
    guarantee: str, new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(partitions=4, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate(2, 2000, 300)
    expected = oracle(events)
    assert len(expected) > 10
    produce_positions(bootstrap_servers, topic, events)
    topology = seed_topology(topic)
    with make_app(
        topology, app_id, bootstrap_servers, tmp_path / "a", processing_guarantee=guarantee
    ) as app:
        converge(app, expected)
        assert app.restored_records == 0

    started = time.monotonic()
    with make_app(
        topology, app_id, bootstrap_servers, tmp_path / "a", processing_guarantee=guarantee
    ) as app:
        converge(app, expected)
        assert app.restored_records == 0, "a clean restart restores only past the checkpoint"
    warm = time.monotonic() - started

    with make_app(
        topology, app_id, bootstrap_servers, tmp_path / "b", processing_guarantee=guarantee
    ) as app:
        converge(app, expected)
        # Both stores are rebuilt: the table from its input, the aggregate from its changelog.
        assert app.restored_records >= len({k for k, _ in events}) // 2
    assert warm < TIMEOUT_S


def test_malformed_record_goes_to_dlq_and_processing_continues(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(partitions=2, config={"cleanup.policy": "compact"}, prefix="positions")
    good = {"id": "p1", "client": "c1", "ticker": "AAPL", "exchange": "NASDAQ", "amount": 1}
    later = {"id": "p2", "client": "c1", "ticker": "MSFT", "exchange": "NYSE", "amount": 2}
    produce(
        bootstrap_servers,
        topic,
        [
            ("p1", json.dumps(good).encode()),
            ("p9", b"not json {"),
            ("p2", json.dumps(later).encode()),
        ],
    )
    with make_app(seed_topology(topic), app_id, bootstrap_servers, tmp_path) as app:
        converge(app, {"c1": frozenset({"p1", "p2"})})
        msg = first_record(bootstrap_servers, f"{app_id}-dlq", TIMEOUT_S)
        assert msg.key() == b"p9"
        assert msg.value() == b"not json {"
        assert b"SerializationError" in header(msg, "x-error")
        assert header(msg, "x-topic") == topic.encode()
        assert header(msg, "x-offset").isdigit()
        assert app.metrics.dlq_records._value.get() == 1
        assert app.state is st.AppState.RUNNING


def test_a_null_key_on_a_compacted_topic_is_refused_with_every_record_of_its_batch(
    new_topic: TopicFactory, bootstrap_servers: str
) -> None:
    # What lost "valid positions" in a load with a null-key record at its end: the broker
    # refuses the null key (INVALID_RECORD) and, with it, the whole produce batch it is in;
    # those records never reach the topic, so no app can process or dead-letter them. The
    # load helper must say so, not return as if everything was written.
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"}, prefix="positions")
    valid = [(f"p{i}", json.dumps({"id": f"p{i}"}).encode()) for i in range(50)]
    with pytest.raises(RecordsRefused) as refused:
        produce(bootstrap_servers, topic, [*valid, (None, b"{}")])
    keys = [key for key, _, _ in refused.value.refused]
    assert None in keys
    assert len(keys) > 1, "valid records of the same batch are refused too"
    assert all("INVALID_RECORD" in error for _, _, error in refused.value.refused)
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": unique_name("g")})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    assert high - low == len(valid) + 1 - len(keys)


def test_failure_while_the_cache_flushes_goes_to_dlq_and_processing_continues(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    # Valid JSON without "exchange": the filter runs when the source store's cache flushes.
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"}, prefix="positions")
    good = {"id": "p1", "client": "c1", "ticker": "AAPL", "exchange": "NASDAQ", "amount": 1}
    produce(
        bootstrap_servers,
        topic,
        [("p1", json.dumps(good).encode()), ("p9", json.dumps({"client": "c9"}).encode())],
    )
    with make_app(seed_topology(topic), app_id, bootstrap_servers, tmp_path) as app:
        converge(app, {"c1": frozenset({"p1"})})
        msg = first_record(bootstrap_servers, f"{app_id}-dlq", TIMEOUT_S)
        assert b"KeyError" in header(msg, "x-error")
        assert header(msg, "x-processor").startswith(b"KTABLE-SOURCE")
        assert msg.key() == b'"p9"'
        assert app.state is st.AppState.RUNNING


def test_second_app_on_the_same_state_dir_is_refused(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"}, prefix="positions")
    topology = seed_topology(topic)
    with make_app(topology, app_id, bootstrap_servers, tmp_path):
        second = make_app(topology, app_id, bootstrap_servers, tmp_path)
        with pytest.raises(StateDirLocked, match="locked"):
            second.start()
    # Released on close: a new app can take it.
    with make_app(topology, app_id, bootstrap_servers, tmp_path) as third:
        assert third.state in (st.AppState.REBALANCING, st.AppState.RUNNING)


def test_join_of_differently_partitioned_tables_fails_at_start(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    left = new_topic(partitions=2, prefix="left")
    right = new_topic(partitions=3, prefix="right")
    builder = st.StreamsBuilder()
    lt = builder.table(left, key_serde=st.serde.STRING, value_serde=st.serde.JSON)
    rt = builder.table(right, key_serde=st.serde.STRING, value_serde=st.serde.JSON)
    lt.join(rt, lambda a, b: [a, b], store="joined")
    app = make_app(builder.build(), app_id, bootstrap_servers, tmp_path)
    with pytest.raises(CoPartitioningError) as raised:
        app.start()
    assert raised.value.topics == {left: 2, right: 3}
    assert app.state is st.AppState.CREATED


def test_missing_source_topic_is_named(bootstrap_servers: str, app_id: str, tmp_path: Path) -> None:
    missing = unique_name("absent")
    app = make_app(seed_topology(missing), app_id, bootstrap_servers, tmp_path)
    with pytest.raises(st.TopologyError, match=missing):
        app.start()


def test_two_instances_share_the_partitions_and_hand_them_back(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(partitions=4, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate(3, 3000, 400)
    produce_positions(bootstrap_servers, topic, events[:1000])
    topology = seed_topology(topic)
    first = make_app(topology, app_id, bootstrap_servers, tmp_path / "1")
    second = make_app(topology, app_id, bootstrap_servers, tmp_path / "2")
    with first:
        converge(first, oracle(events[:1000]))
        with second:
            produce_positions(bootstrap_servers, topic, events[1000:2000])
            expected = oracle(events[:2000])

            def split_evenly() -> bool:
                one = contents(first, "us-share-holders")
                two = contents(second, "us-share-holders")
                if one is None or two is None or not one or not two:
                    return False
                assert set(one).isdisjoint(two), "a key is active on both instances"
                return {**one, **two} == expected

            wait_until(split_evenly, "both instances to hold half of the oracle", TIMEOUT_S)
        produce_positions(bootstrap_servers, topic, events[2000:])
        converge(first, oracle(events))


def test_fenced_transaction_rebuilds_state_and_converges(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(partitions=4, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate(4, 2000, 300)
    produce_positions(bootstrap_servers, topic, events[:1000])
    with make_app(
        seed_topology(topic),
        app_id,
        bootstrap_servers,
        tmp_path,
        processing_guarantee="exactly_once_v2",
        commit_interval_ms=100,
    ) as app:
        converge(app, oracle(events[:1000]))
        before = app.restored_records
        # A zombie with the same transactional id fences the app's producer.
        zombie = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                # the app's transactional id: <app id>-<its state directory's process id>
                "transactional.id": f"{app_id}-{app._state_dir.process_id()}",
            }
        )
        zombie.init_transactions(30)
        produce_positions(bootstrap_servers, topic, events[1000:])
        converge(app, oracle(events))
        assert app.restored_records > before, "the aborted tasks were restored from scratch"


def test_consumed_repartition_records_are_purged(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = new_topic(partitions=2, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate(5, 500, 100)
    produce_positions(bootstrap_servers, topic, events)
    app = make_app(seed_topology(topic), app_id, bootstrap_servers, tmp_path)
    monkeypatch.setattr(_context, "PURGE_INTERVAL_S", 0.0)  # after every commit, not every 30 s
    repartition = f"{app_id}-us-share-holders-repartition"
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": unique_name("g")})
    try:
        with app:
            converge(app, oracle(events))

            def purged() -> bool:
                lows = [
                    consumer.get_watermark_offsets(TopicPartition(repartition, p), 10, False)[0]
                    for p in range(2)
                ]
                return all(low > 0 for low in lows)

            wait_until(purged, f"records of {repartition} to be deleted", TIMEOUT_S)
    finally:
        consumer.close()


def test_schedule_calls_back_on_the_processing_thread_until_cancelled(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"}, prefix="positions")
    calls: list[int] = []
    with make_app(seed_topology(topic), app_id, bootstrap_servers, tmp_path) as app:
        cancel = app.schedule(100, calls.append)
        wait_until(lambda: len(calls) >= 3, "three scheduled calls", TIMEOUT_S)
        assert calls == sorted(calls)
        cancel()
        # Another schedule proves the loop went on; the cancelled one was called no more.
        other: list[int] = []
        app.schedule(50, other.append)
        wait_until(lambda: len(other) >= 1, "the other schedule to fire", TIMEOUT_S)
        count = len(calls)
        wait_until(
            lambda: len(other) >= 4, "the other schedule to fire three times more", TIMEOUT_S
        )
        assert len(calls) == count


def test_exactly_once_commits_past_the_transaction_markers(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    """Under exactly_once_v2 the last offset of a repartition partition is a transaction
    marker: once caught up, the group's committed offsets equal the end offsets (lag 0 for
    Kafka's own tooling), as Kafka Streams commits the consumer position."""
    topic = new_topic(partitions=2, config={"cleanup.policy": "compact"}, prefix="positions")
    repartition = f"{app_id}-us-share-holders-repartition"
    events = generate(6, 1000, 200)
    produce_positions(bootstrap_servers, topic, events)
    last: list[dict[str, tuple[int, int]]] = [{}]

    def caught_up() -> bool:
        consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": app_id})
        try:
            parts = [TopicPartition(t, p) for t in (topic, repartition) for p in range(2)]
            last[0] = {
                f"{tp.topic}[{tp.partition}]": (
                    tp.offset,
                    consumer.get_watermark_offsets(tp, timeout=10)[1],
                )
                for tp in consumer.committed(parts, timeout=10)
            }
        finally:
            consumer.close()
        return all(committed == end for committed, end in last[0].values())

    with make_app(
        seed_topology(topic),
        app_id,
        bootstrap_servers,
        tmp_path,
        processing_guarantee="exactly_once_v2",
        commit_interval_ms=100,
    ) as app:
        converge(app, oracle(events))
        try:
            wait_until(caught_up, "committed offsets == end offsets", 30.0)
        except AssertionError:
            raise AssertionError(f"committed vs end offsets: {last[0]}") from None
