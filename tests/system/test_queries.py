"""Interactive queries across instances on a real broker: three (then four, then three)
independent StreamsApps, each with its own state dir and HTTP query server on an ephemeral port.

Every key of the seed topology's store is answered correctly from every instance; a cluster scan
from any instance pages through the whole store; while a fourth instance joins and then the first
one closes, a query loop sees only correct answers or 503 with Retry-After.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient

import streamtable as st
from streamtable.serde import DEFAULT
from streamtable.topology import partition_for
from tests.support.kafka import TopicFactory, WaitTimeout, delete_topics, unique_name, wait_until
from tests.support.positions import generate, oracle, produce_positions, seed_topology
from tests.support.served import Instance

pytestmark = pytest.mark.system

STORE = "us-share-holders"
PARTITIONS = 6
TIMEOUT_S = 60.0
ABSENT = ["nobody", "c-none", "x"]

log = logging.getLogger("tests.system.queries")


def get(client: httpx.Client, address: str, key: str) -> httpx.Response:
    return client.get(f"http://{address}/stores/{STORE}/keys/{json.dumps(key)}")


class Unmet:
    """What the last failed ``answers_everything`` call waited for (for the timeout message)."""

    last = "nothing checked yet"


def answers_everything(
    client: httpx.Client, instances: list[Instance], expected: dict[str, list[str]]
) -> bool:
    """Every instance answers every key (and 404 for absent keys) and lists all instances."""
    for inst in instances:
        if inst.app.state is st.AppState.ERROR:
            raise AssertionError(f"{inst.address} failed: {inst.app.error!r}")
        listed = client.get(f"http://{inst.address}/instances").json()["instances"]
        servers = sorted(i["application_server"] for i in listed)
        if servers != sorted(i.address for i in instances):
            Unmet.last = f"{inst.address} ({inst.app.state.name}) lists {servers}"
            return False
        for key, value in expected.items():
            response = get(client, inst.address, key)
            if response.status_code != 200 or response.json()["value"] != value:
                Unmet.last = f"{inst.address} key {key!r}: {response.status_code} {response.text}"
                return False
        for key in ABSENT:
            response = get(client, inst.address, key)
            if response.status_code != 404:
                Unmet.last = f"{inst.address} absent {key!r}: {response.status_code}"
                return False
    return True


def wait_answers(
    client: httpx.Client, instances: list[Instance], expected: dict[str, list[str]], what: str
) -> None:
    """Await ``answers_everything``; on timeout say what was unmet and where each task stands."""
    started = time.monotonic()
    try:
        wait_until(lambda: answers_everything(client, instances, expected), what, TIMEOUT_S)
        print(f"{what}: answered everything after {time.monotonic() - started:.1f}s")
    except WaitTimeout as exc:
        states = "; ".join(
            f"{i.address}: {i.app.state.name} {i.app.all_metadata()}" for i in instances
        )
        raise AssertionError(f"{exc}; last unmet: {Unmet.last}; instances: {states}") from exc


def scan(client: httpx.Client, address: str, limit: int) -> list[tuple[Any, Any]] | None:
    items: list[tuple[Any, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"http://{address}/stores/{STORE}", params=params)
        if response.status_code == 503:
            return None
        assert response.status_code == 200, response.text
        body = response.json()
        items += [(i["key"], i["value"]) for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@dataclass
class QueryLoop:
    """Queries random-ish keys on the given instances until stopped; counts outcomes."""

    addresses: list[str]
    expected: dict[str, list[str]]
    outcomes: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        keys = itertools.cycle([*self.expected, *ABSENT])
        with httpx.Client(timeout=10.0) as client:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                address = self.addresses[n % len(self.addresses)]
                key = next(keys)
                try:
                    response = get(client, address, key)
                except httpx.HTTPError as exc:
                    self.wrong.append(f"{address} {key}: {exc!r}")
                    continue
                self.check(address, key, response)

    def check(self, address: str, key: str, response: httpx.Response) -> None:
        status = response.status_code
        if status == 503:
            if "Retry-After" in response.headers:
                self.outcomes["503"] += 1
            else:
                self.wrong.append(f"{address} {key}: 503 without Retry-After")
        elif key in self.expected and status == 200:
            if response.json()["value"] == self.expected[key]:
                self.outcomes["200"] += 1
            else:
                self.wrong.append(f"{address} {key}: wrong value {response.text}")
        elif key not in self.expected and status == 404:
            self.outcomes["404"] += 1
        else:
            self.wrong.append(f"{address} {key}: {status} {response.text[:200]}")


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("iq")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def test_queries_answer_from_every_instance_and_through_rebalances(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    topic = new_topic(PARTITIONS, {"cleanup.policy": "compact"}, prefix="positions")
    events = generate(11, 2000, 300)
    produce_positions(bootstrap_servers, topic, events)
    expected = {client: sorted(ids) for client, ids in oracle(events).items()}
    assert len(expected) > 20
    topology = seed_topology(topic)
    instances = [
        Instance(topology, app_id, bootstrap_servers, tmp_path / f"i{i}") for i in range(4)
    ]
    loop = QueryLoop([i.address for i in instances[:3]], expected)
    loop_thread = threading.Thread(target=loop.run, daemon=True)
    try:
        with httpx.Client(timeout=10.0) as client:
            for inst in instances[:3]:
                inst.start()
            three = instances[:3]
            wait_answers(client, three, expected, "3 instances")

            # Routing metadata agrees with where the keys really are.
            for key in list(expected)[:10]:
                where = three[0].app.metadata_for_key(STORE, key)
                assert where.partition == partition_for(DEFAULT.serialize(key), PARTITIONS)
                holders = [i.address for i in three if i.app.store(STORE).get(key) is not None]
                assert holders == [str(where.active_host)]
                assert where.standby_hosts == ()
            metadata = three[1].app.all_metadata()
            assert sorted(p for m in metadata for p in m.active[STORE]) == list(range(PARTITIONS))
            key = next(iter(expected))
            holder = next(i for i in three if i.app.metadata_for_key(STORE, key).is_local)
            assert holder.app.store(STORE, allow_stale=True).get(key) == frozenset(expected[key])

            # A cluster scan from any instance pages through the whole store in key order.
            in_order = sorted(expected.items(), key=lambda kv: DEFAULT.serialize(kv[0]))
            for inst, limit in zip(three, (1, 7, 1000), strict=True):
                assert scan(client, inst.address, limit) == [(k, v) for k, v in in_order]

            # A fourth instance joins, then the first closes, under a query loop.
            loop_thread.start()
            instances[3].start()
            loop.addresses.append(instances[3].address)
            four = instances[:4]
            wait_answers(client, four, expected, "4 instances")
            instances[0].app.close()  # its server still answers 503 until peers forget it
            rest = instances[1:4]
            wait_answers(client, rest, expected, "3 after a close")
            loop.stop.set()
            loop_thread.join(15)
            wait_until(lambda: scan(client, rest[0].address, 10) is not None, "a scan", TIMEOUT_S)
            assert scan(client, rest[0].address, 10) == [(k, v) for k, v in in_order]
    finally:
        loop.stop.set()
        for inst in instances:
            inst.app.close()
            inst.stop_server()
    log.info("query loop outcomes: %s", dict(loop.outcomes))
    assert loop.wrong == [], loop.wrong[:10]
    assert loop.outcomes["200"] > 0
    assert loop.outcomes["404"] > 0
    print(f"query loop outcomes during rebalances: {dict(loop.outcomes)}")
