"""The harness's input against a real broker: what ``read_back`` returns is what was produced,
per topic and partition in order, with malformed records known by their header."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient

from tests.chaos import inputs
from tests.chaos.kafka_io import partition_count
from tests.chaos.plan import Malformed
from tests.chaos.topologies import Event

pytestmark = pytest.mark.integration


def test_read_back_returns_the_input_per_key_in_order_and_the_malformed_by_coordinates(
    bootstrap_servers: str, kafka_admin: AdminClient, new_topic: Callable[..., str]
) -> None:
    topics = {"positions": new_topic(3, prefix="chaos-in"), "clients": new_topic(2)}
    events: list[Event] = [
        ("positions", f"p{n % 7}", None if n % 5 == 4 else {"client": f"c{n % 3}", "n": n})
        for n in range(60)
    ] + [("clients", f"c{n}", {"name": f"name-{n}"}) for n in range(3)]
    malformed = [Malformed(b"p1", b"{not json", "json"), Malformed(None, b"[]", "no key")]
    produced = inputs.Produced()
    producer = inputs.InputProducer(bootstrap_servers, produced)
    times = [1_000 + n for n in range(len(events) + 1)]
    inputs.produce(producer, topics, (events, malformed, 1000), times, seed=5)

    back = inputs.read_back(bootstrap_servers, topics, ["positions", "clients"],
                            lambda t: partition_count(kafka_admin, t))  # fmt: skip
    assert produced.sent == len(events) + len(malformed)
    assert produced.errors == []
    assert sorted(back.malformed.values()) == ["json", "no key"]
    assert all(topic == topics["positions"] for topic, _, _ in back.malformed)
    # Every event once, and per key in the order produced (the partition's order).
    assert sorted(map(repr, back.events)) == sorted(map(repr, events))
    for key in {k for _, k, _ in events}:
        assert [e for e in back.events if e[1] == key] == [e for e in events if e[1] == key]
    assert back.summary()["valid_read_back"] == len(events)
