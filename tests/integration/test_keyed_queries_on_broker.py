"""Window and session stores queried over HTTP on a real broker: two instances, each with its
own state dir and query server, each asked for keys the other one owns; the routed answer
(``/sessions/{key}``, ``/windows/{key}``) is the truth: what the input implies, and what the
owner's own store view reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

import streamtable as st
from streamtable.errors import StoreNotReady
from streamtable.serde import JSON, STRING
from tests.support.kafka import TopicFactory, wait_until
from tests.support.served import Instance

pytestmark = pytest.mark.integration

SESSIONS, WINDOWS = "visits", "clicks-per-10s"
PARTITIONS = 4
KEYS = [f"u{i}" for i in range(12)]
TIMEOUT_S = 60.0


def topology(clicks: str) -> st.Topology:
    b = st.StreamsBuilder()
    grouped = b.stream(clicks, key_serde=STRING, value_serde=JSON).group_by_key()
    kept = timedelta(minutes=10)  # nothing expires during the test
    gap = st.SessionWindows.of_inactivity_gap_with_no_grace(timedelta(seconds=3))
    grouped.windowed_by(gap).count(store=SESSIONS, retention=kept)
    size = st.TimeWindows.of_size_with_no_grace(timedelta(seconds=10))
    grouped.windowed_by(size).count(store=WINDOWS, retention=kept)
    return b.build()


def clicks_of(i: int) -> list[int]:
    """Key ``i``'s click times after the base: a first session of i % 3 + 1 clicks a second
    apart, then two clicks 20 s on (a second session, in another 10 s window)."""
    return [n * 1_000 for n in range(i % 3 + 1)] + [20_000, 20_500]


def truth(i: int, base: int) -> dict[str, list[dict[str, Any]]]:
    """What ``/sessions/{key}`` and ``/windows/{key}`` must answer for key ``i``."""
    first = len(clicks_of(i)) - 2
    return {
        "sessions": [
            {"start_ms": base, "end_ms": base + (first - 1) * 1_000, "value": first},
            {"start_ms": base + 20_000, "end_ms": base + 20_500, "value": 2},
        ],
        "windows": [
            {"start_ms": base, "end_ms": base + 10_000, "value": first},
            {"start_ms": base + 20_000, "end_ms": base + 30_000, "value": 2},
        ],
    }


@pytest.fixture
def pair(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> Iterator[tuple[list[Instance], int]]:
    """Two running instances over the clicks, and the base time of the clicks."""
    clicks = new_topic(PARTITIONS, prefix="clicks")
    # Placed as Kafka Streams (and the app's routing of a key to its task) expect; times of
    # today (a changelog's retention.ms is by the broker's clock), on a 10 s window boundary.
    producer = Producer({"bootstrap.servers": bootstrap_servers, "partitioner": "murmur2_random"})
    base = (int(time.time() * 1000) - 120_000) // 10_000 * 10_000
    # In time order: a record behind its partition's stream time by more than the gap is late.
    for at, key in sorted((at, key) for i, key in enumerate(KEYS) for at in clicks_of(i)):
        producer.produce(clicks, JSON.serialize({"at": at}), key.encode(), timestamp=base + at)
    assert producer.flush(30) == 0
    instances = [
        Instance(topology(clicks), app_id, bootstrap_servers, tmp_path / f"i{n}") for n in range(2)
    ]
    try:
        for instance in instances:
            instance.start()
        yield instances, base
    finally:
        for instance in instances:
            instance.close()


def unsettled(instances: list[Instance], base: int) -> str | None:
    """Why the two instances have not settled yet, or None once both run a share of the
    partitions, agree on who owns what, and each owner's own view of its keys is the truth
    (processing has caught up)."""
    for instance in instances:
        assert instance.app.state is not st.AppState.ERROR, instance.app.error
        if instance.app.state is not st.AppState.RUNNING:
            return f"{instance.address} is {instance.app.state.name}"
        owned = [m.active.get(SESSIONS, ()) for m in instance.app.all_metadata()]
        if len(owned) != 2 or sorted(p for ps in owned for p in ps) != list(range(PARTITIONS)):
            return f"{instance.address} sees the partitions owned as {owned}"
    try:
        for i, key in enumerate(KEYS):
            owner = owner_of(instances, key)
            if owner is None:
                return f"no instance hosts {key!r}"
            if owner_view(owner, key) != truth(i, base)["sessions"]:
                return f"{key!r} has the sessions {owner_view(owner, key)}"
    except StoreNotReady as exc:
        return str(exc)
    return None


def await_settled(instances: list[Instance], base: int) -> None:
    last = ["nothing checked yet"]

    def settled() -> bool:
        why = unsettled(instances, base)
        last[0] = why or ""
        return why is None

    try:
        wait_until(settled, "both instances to settle", TIMEOUT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last[0]}") from exc


def owner_of(instances: list[Instance], key: str) -> Instance | None:
    """The instance hosting ``key``'s partition, by each one's own metadata."""
    return next((x for x in instances if x.app.metadata_for_key(SESSIONS, key).is_local), None)


def owner_view(owner: Instance, key: str) -> list[dict[str, Any]]:
    """``key``'s sessions as its owner's own store view reads them."""
    return [
        {"start_ms": w.window.start_ms, "end_ms": w.window.end_ms, "value": n}
        for w, n in owner.app.session_store(SESSIONS).fetch(key)
    ]


def routed(client: httpx.Client, asked: Instance, path: str, **params: Any) -> httpx.Response:
    """``asked``'s answer at ``path`` once it is not a 503 (a rebalance's retry-later)."""

    def answer() -> httpx.Response | None:
        reply = client.get(f"http://{asked.address}{path}", params=params)
        return None if reply.status_code == 503 else reply

    return wait_until(answer, f"an answer at {path} from {asked.address}", TIMEOUT_S)


def test_each_instance_answers_for_keys_the_other_owns_from_the_owner(
    pair: tuple[list[Instance], int],
) -> None:
    instances, base = pair
    await_settled(instances, base)
    asked_instances = set()
    with httpx.Client(timeout=10.0) as client:
        for i, key in enumerate(KEYS):
            owner = owner_of(instances, key)
            assert owner is not None
            asked = next(x for x in instances if x is not owner)
            asked_instances.add(asked.address)
            expected = truth(i, base)
            for route, store in (("sessions", SESSIONS), ("windows", WINDOWS)):
                reply = routed(client, asked, f"/stores/{store}/{route}/{key}")
                assert reply.status_code == 200, reply.text
                assert reply.json() == {"store": store, "key": key, route: expected[route]}
            # The owner's own view reads the same sessions.
            assert owner_view(owner, key) == expected["sessions"]
            # A time range between the two sessions, and one touching only the second's end.
            between = {"time_from": base + 10_000, "time_to": base + 19_999}
            reply = routed(client, asked, f"/stores/{SESSIONS}/sessions/{key}", **between)
            assert (reply.status_code, reply.json()["sessions"]) == (200, [])
            later = {"time_from": base + 20_500, "time_to": base + 20_500}
            reply = routed(client, asked, f"/stores/{SESSIONS}/sessions/{key}", **later)
            assert reply.json()["sessions"] == expected["sessions"][1:]
        # A key without sessions, owned by the other instance: the owner's empty answer.
        for asked in instances:
            absent = next(
                k for k in (f"absent-{n}" for n in range(100))
                if owner_of(instances, k) not in (asked, None)
            )  # fmt: skip
            reply = routed(client, asked, f"/stores/{SESSIONS}/sessions/{absent}")
            assert (reply.status_code, reply.json()["sessions"]) == (200, [])
    assert asked_instances == {x.address for x in instances}  # each asked for the other's keys
