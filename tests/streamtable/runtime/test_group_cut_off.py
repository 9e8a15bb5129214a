"""A call of the group consumer given up because the consumer has lost every broker
(ClientCutOff) drops its tasks as on lost partitions and puts a new consumer in the group:
before, the call failed until ``task_timeout_ms`` and the app went to ERROR."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

import streamtable as st
from streamtable.runtime._clients import ClientCutOff

pytestmark = pytest.mark.unit


class Consumer:
    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []


class Restorer:
    active = False


def test_a_cut_off_call_drops_the_tasks_and_renews_the_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = st.StreamsBuilder()
    b.stream("events").to("copy")
    config = st.StreamsConfig(
        application_id="app", bootstrap_servers="b:9092", state_dir=Path(tempfile.mkdtemp())
    )
    app = st.StreamsApp(b.build(), config)
    app._consumer = Consumer()  # type: ignore[assignment]
    app._restorer = Restorer()  # type: ignore[assignment]
    app._new_assignment = [("events", 0)]
    events: list[str] = []

    def handle(messages: list[Any]) -> None:
        raise ClientCutOff("committed offsets of task 0_0: failing for 31s")

    monkeypatch.setattr(app, "_handle", handle)
    monkeypatch.setattr(app, "_drop_tasks", lambda: events.append("dropped"))
    monkeypatch.setattr(app, "_renew_consumer", lambda why: events.append(f"renewed: {why}"))
    app._poll_once()
    assert events == ["dropped", "renewed: a call failed for good"]
    assert app._new_assignment is None, "the assignment of the cut-off consumer is void"
