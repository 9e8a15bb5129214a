"""A call of the group consumer given up because the consumer has lost every broker
(ClientCutOff) drops its tasks as on lost partitions and puts a new consumer in the group:
before, the call failed until ``task_timeout_ms`` and the app went to ERROR."""

from __future__ import annotations

from typing import Any

import pytest

from streamtable.runtime._clients import ClientCutOff
from streamtable.runtime._thread import CUT_OFF
from tests.support.offline import IdleRestorer, offline_thread

pytestmark = pytest.mark.unit


class Consumer:
    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []


def test_a_cut_off_call_drops_the_tasks_and_renews_the_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread = offline_thread("app", consumer=Consumer(), restorer=IdleRestorer())
    thread.new_assignment = [("events", 0)]
    events: list[str] = []

    def handle(messages: list[Any]) -> None:
        raise ClientCutOff("committed offsets of task 0_0: failing for 31s")

    monkeypatch.setattr(thread, "handle", handle)
    monkeypatch.setattr(thread, "_drop_tasks", lambda: events.append("dropped"))
    monkeypatch.setattr(thread, "_renew_consumer", lambda why: events.append(f"renewed: {why}"))
    thread.poll_once()
    assert events == ["dropped", f"renewed: a call failed for good; {CUT_OFF}"]
    assert thread.new_assignment is None, "the assignment of the cut-off consumer is void"
