"""Store operation counts reach Prometheus through a collector that reads the metered stores'
plain counters at scrape time, summed over a store's partitions."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from streamtable.runtime.metrics import StoreOperationsCollector
from streamtable.serde import JSON, STRING
from streamtable.state import MeteredStore, open_engine
from streamtable.topology import StoreSpec, build_store

pytestmark = pytest.mark.unit


def metered(name: str) -> MeteredStore:
    store = build_store(
        StoreSpec(name, STRING, JSON), open_engine(False), "app", 0, None, None, metered=True
    )[1]
    assert isinstance(store, MeteredStore)
    return store


def test_the_collector_serves_the_counts_at_scrape_time() -> None:
    partitions = [metered("holders"), metered("holders"), metered("digests")]
    registry = CollectorRegistry()
    registry.register(StoreOperationsCollector(lambda: partitions))

    def sample(store: str, op: str) -> float | None:
        return registry.get_sample_value(
            "streamtable_store_operations_total", {"store": store, "op": op}
        )

    assert sample("holders", "put") == 0
    partitions[0].put("a", 1, 1)
    partitions[1].put("b", 2, 1)
    partitions[1].get("b")
    partitions[2].delete("x")
    list(partitions[2].all())
    assert sample("holders", "put") == 2
    assert sample("holders", "get") == 1
    assert sample("digests", "delete") == 1
    assert sample("digests", "range") == 1
    partitions.pop(0)  # its task moved away: its counts go with it
    assert sample("holders", "put") == 1
