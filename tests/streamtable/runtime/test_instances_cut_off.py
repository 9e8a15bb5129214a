"""The instance-metadata thread hears its own heartbeats back through its consumer. None for
three heartbeats, and a client of it that has lost every broker (librdkafka issue 5301) is
replaced: otherwise its peers would expire this instance, or it its peers, for good."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import streamtable as st
from streamtable.runtime import _metadata
from streamtable.runtime._metadata import InstanceDirectory
from streamtable.runtime.topics import TopicPlan

pytestmark = pytest.mark.unit


class Deaf:
    """A consumer that hands nothing over (and a producer whose records go nowhere)."""

    def __init__(self, made: list[Deaf]) -> None:
        made.append(self)
        self.closed = threading.Event()

    def assign(self, partitions: list[Any]) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        time.sleep(timeout)
        return []

    def produce(self, topic: str, key: bytes, value: bytes | None) -> None:
        pass

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        self.closed.set()


def test_clients_that_hear_nothing_and_are_cut_off_are_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumers: list[Deaf] = []
    producers: list[Deaf] = []
    asked: list[Any] = []

    def cut_off(client: Any, settings: dict[str, Any]) -> bool:
        asked.append(client)
        return client is consumers[0] or client is producers[0]  # the first ones only

    monkeypatch.setattr(_metadata, "_instances_consumer", lambda s, a: Deaf(consumers))
    monkeypatch.setattr(_metadata, "_instances_producer", lambda s: Deaf(producers))
    monkeypatch.setattr(_metadata, "cut_off", cut_off)
    b = st.StreamsBuilder()
    b.stream("events").to("copy")
    config = st.StreamsConfig(application_id="app", bootstrap_servers="b:9092")
    directory = InstanceDirectory(b.build(), config, "i1", lambda: "RUNNING", heartbeat_s=0.05)
    directory.start(TopicPlan({"events": 1}, {}))
    try:
        deadline = time.monotonic() + 10
        while (len(consumers) < 2 or len(producers) < 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(consumers) == 2, "the cut-off consumer was not replaced"
        assert len(producers) == 2, "the cut-off producer was not replaced"
        assert consumers[0].closed.wait(10)
        # Its successors are looked at too (every three heartbeats), and kept.
        deadline = time.monotonic() + 10
        while consumers[1] not in asked and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(consumers) == 2
    finally:
        directory.close()
