"""Window stores read across a process's tasks: ``fetch`` reads the task of the key's
partition only, ``fetch_all``/``all`` merge every task's windows by key bytes, pending
record-cache writes included; the app hands window stores out only as window stores; the
dropped-records counts reach Prometheus at scrape time."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import streamtable as st
from streamtable.runtime._views import CompositeStoreView
from streamtable.runtime.metrics import DroppedRecordsCollector
from streamtable.serde import JSON, STRING, TimeWindowedSerde
from streamtable.state import CacheBudget, ReadOnlyWindowStore, open_engine
from streamtable.topology import StoreSpec, build_store, partition_for

pytestmark = pytest.mark.unit

PARTITIONS = 3
SIZE = 60_000
SPEC = StoreSpec(
    "w", STRING, JSON, store_type="window", retention_ms=3_600_000, window_size_ms=SIZE
)


def w(key: str, start: int) -> st.Windowed:
    return st.Windowed(key, st.Window(start, start + SIZE))


def partition_of(key: str) -> int:
    return partition_for(key.encode(), PARTITIONS)


def test_fetch_reads_the_keys_partition_and_scans_merge_every_partition() -> None:
    budget = CacheBudget(1 << 20)
    stores = {
        p: build_store(SPEC, open_engine(False), "app", p, None, budget)[1]
        for p in range(PARTITIONS)
    }
    keys = ["a", "b", "c", "d", "e"]
    for i, key in enumerate(keys):
        store = stores[partition_of(key)]
        store.put(w(key, 0), {"n": i}, 1)
        store.flush()
        store.put(w(key, SIZE), {"n": 10 + i}, 2)  # pending in the record cache
    stray = stores[(partition_of("a") + 1) % PARTITIONS]
    stray.put(w("a", 2 * SIZE), {"n": 99}, 3)  # not where the partitioner puts "a"
    view = CompositeStoreView(
        "w", STRING, lambda: (stores, PARTITIONS), lambda: None, threading.RLock()
    )
    windows = ReadOnlyWindowStore("w", TimeWindowedSerde(STRING, SIZE), JSON, view.window_entries)
    assert list(windows.fetch("a", 0, 10 * SIZE)) == [(0, {"n": 0}), (SIZE, {"n": 10})]
    assert [(k.key, k.window.start_ms) for k, _ in windows.fetch_all(SIZE, SIZE)] == [
        (key, SIZE) for key in keys
    ]
    assert len(list(windows.all())) == 2 * len(keys) + 1


class CountingStore:
    """Counts the entries a task's store hands to the view."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.read = 0

    def raw_entries(self, lo: bytes | None, hi: bytes | None) -> Any:
        for entry in self.store.raw_entries(lo, hi):
            self.read += 1
            yield entry


def test_a_page_of_fetch_all_reads_a_bounded_part_of_each_task_after_the_cursor() -> None:
    stores = {
        p: CountingStore(build_store(SPEC, open_engine(False), "app", p, None, None)[1])
        for p in range(PARTITIONS)
    }
    keys = [f"k{i:02}" for i in range(30)]
    for key in keys:
        for start in (0, SIZE, 2 * SIZE):
            stores[partition_of(key)].store.put(w(key, start), {"k": key}, start)
    view = CompositeStoreView(
        "w", STRING, lambda: (stores, PARTITIONS), lambda: None, threading.RLock()
    )
    windows = ReadOnlyWindowStore("w", TimeWindowedSerde(STRING, SIZE), JSON, view.window_entries)
    serde = TimeWindowedSerde(STRING, SIZE)

    def page(after: bytes | None) -> list[st.Windowed]:
        raw = windows.raw_fetch_all(SIZE, 2 * SIZE, after=after, limit=4)
        return [serde.deserialize(kb) for kb, _ in raw]

    first = page(None)
    assert first == [w("k00", SIZE), w("k00", 2 * SIZE), w("k01", SIZE), w("k01", 2 * SIZE)]
    # Each task stopped after 4 windows in range (and the windows out of range before them).
    assert all(s.read <= 4 + 2 for s in stores.values())
    after = serde.serialize(first[-1])
    assert page(after) == [w("k02", SIZE), w("k02", 2 * SIZE), w("k03", SIZE), w("k03", 2 * SIZE)]
    everything = list(windows.fetch_all(SIZE, 2 * SIZE))
    assert [k for k, _ in everything] == [w(k, s) for k in keys for s in (SIZE, 2 * SIZE)]


def test_the_dropped_records_collector_sums_the_tasks_counts() -> None:
    tasks = [Counter({"late": 2}), Counter({"late": 1, "null_key": 4})]
    registry = CollectorRegistry()
    registry.register(DroppedRecordsCollector(lambda: tasks))

    def sample(reason: str) -> float | None:
        return registry.get_sample_value("streamtable_dropped_records_total", {"reason": reason})

    assert (sample("late"), sample("null_key"), sample("null_value")) == (3, 4, 0)
    tasks.pop()  # its task moved away
    assert sample("late") == 2


def test_the_app_hands_window_stores_out_as_window_stores(tmp_path: Path) -> None:
    b = st.StreamsBuilder()
    grouped = b.stream("in", key_serde=STRING).group_by_key()
    grouped.windowed_by(st.TimeWindows.of_size_with_no_grace(timedelta(minutes=1))).count(
        store="counts"
    )
    grouped.count(store="totals")
    config = st.StreamsConfig(
        application_id="app", bootstrap_servers="127.0.0.1:1", state_dir=str(tmp_path)
    )
    app: Any = st.StreamsApp(b.build(), config)
    with pytest.raises(st.TopologyError, match=r"'counts' is a window store: .*window_store\(\)"):
        app.store("counts")
    with pytest.raises(st.TopologyError, match=r"'totals' is a key_value store: .*store\(\)"):
        app.window_store("totals")
    with pytest.raises(st.StoreNotReady):
        app.window_store("counts")
