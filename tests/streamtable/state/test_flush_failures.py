"""A cached table's flush: a change that downstream code fails on goes to the flush-failure
path (the dead-letter topic), but a failure of the producer or of the process (the task moved
away, a frozen process) stops the flush instead: sending it to the dead-letter topic would
treat a lost partition as a bad record and go on forwarding stale changes."""

from __future__ import annotations

from typing import Any

import pytest

from streamtable.errors import KafkaError, TaskMigrated
from streamtable.processors._api import Node, TableMaterializer
from streamtable.runtime._freeze import ProcessingStalled
from streamtable.serde import JSON, STRING
from streamtable.state import MemoryBytesStore, SerdeStore
from streamtable.state._caching import CacheBudget, CachingStore

pytestmark = pytest.mark.unit


class Ctx:
    def __init__(self) -> None:
        self.failed: list[tuple[str, Any, Exception]] = []

    def flush_failed(self, node: str, key: Any, value: Any, error: Exception) -> None:
        self.failed.append((node, key, error))


def cached_table(error: Exception) -> tuple[CachingStore, Ctx]:
    node = Node("table")
    ctx = Ctx()
    node.ctx = ctx  # type: ignore[assignment]

    def child(key: Any, value: Any, timestamp: int) -> None:
        raise error

    node.children.append(child)
    store = CachingStore(SerdeStore("s", MemoryBytesStore(), STRING, JSON), CacheBudget(10**6))
    TableMaterializer(node, store)
    return store, ctx


def test_a_failure_of_downstream_code_is_reported_for_the_entry() -> None:
    store, ctx = cached_table(ValueError("bad"))
    store.put("k", {"a": 1}, 1)
    store.flush()
    assert [(n, k, type(e)) for n, k, e in ctx.failed] == [("table", "k", ValueError)]


@pytest.mark.parametrize(
    "error",
    [KafkaError("producer failed"), TaskMigrated("moved"), ProcessingStalled("frozen")],
    ids=["producer", "migrated", "stalled"],
)
def test_a_failure_of_the_producer_or_the_process_stops_the_flush(error: Exception) -> None:
    store, ctx = cached_table(error)
    store.put("k", {"a": 1}, 1)
    with pytest.raises(type(error)):
        store.flush()
    assert ctx.failed == []
