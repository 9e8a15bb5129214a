"""The RocksDB memory budget: every store of an instance draws on one cache that also holds
its memtables, so memory does not grow with the number of stores; a bad setting stops start."""

from __future__ import annotations

from pathlib import Path

import pytest

import streamtable as st
from streamtable.errors import ConfigError
from streamtable.runtime._statedir import StateDirectory
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.state import RocksDBBytesStore, RocksDBMemory, open_engine

pytestmark = pytest.mark.unit

MIB = 1024 * 1024


def fill(store: RocksDBBytesStore, tag: bytes, mib: int) -> None:
    value = bytes(range(256)) * 16  # 4 KiB
    for n in range(mib * 256):
        store.put(tag + n.to_bytes(4, "big"), value, n)


def test_stores_share_one_budget_that_holds_their_memtables(tmp_path: Path) -> None:
    memory = RocksDBMemory(8 * MIB)
    stores = [RocksDBBytesStore(tmp_path / f"s{n}", memory) for n in range(6)]
    assert memory.usage_bytes() < 8 * MIB
    for n, store in enumerate(stores):
        fill(store, b"k%d-" % n, 6)  # 36 MiB written in all, memtables bounded by 4 MiB
    # Memtables are charged to the cache: it holds something, and not six unbounded ones.
    assert 0 < memory.usage_bytes() <= 8 * MIB * 1.25
    for n, store in enumerate(stores):
        key = b"k%d-" % n + (6 * 256 - 1).to_bytes(4, "big")
        got = store.get(key)
        assert got is not None
        assert got.endswith(bytes(range(256)))
        store.flush()
        store.close()
    reopened = RocksDBBytesStore(tmp_path / "s3", memory)
    assert sum(1 for _ in reopened.range(None, None)) == 6 * 256
    reopened.close()


def test_without_a_budget_the_store_takes_rocksdb_defaults(tmp_path: Path) -> None:
    engine = open_engine(True, tmp_path / "plain", None)
    engine.put(b"k", b"v", 7)
    assert engine.get(b"k") is not None
    engine.close()


def test_the_state_directory_carries_the_configured_budget(tmp_path: Path) -> None:
    config = st.StreamsConfig(application_id="mem", bootstrap_servers="127.0.0.1:1",
                              state_dir=tmp_path, rocksdb_memory_bytes=16 * MIB)  # fmt: skip
    budget = StateDirectory.of(config).memory
    assert budget is not None
    assert budget.capacity_bytes == 16 * MIB
    unbounded = config.model_copy(update={"rocksdb_memory_bytes": None})
    assert StateDirectory.of(unbounded).memory is None


@pytest.mark.parametrize("bad", [0, -5, 1000, "lots"])
def test_a_bad_budget_names_the_setting(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError, match="rocksdb_memory_bytes"):
        st.StreamsConfig(application_id="mem", bootstrap_servers="127.0.0.1:1",
                         state_dir=tmp_path, rocksdb_memory_bytes=bad)  # fmt: skip


def test_the_budget_is_served_as_gauges_read_at_scrape_time(tmp_path: Path) -> None:
    metrics = StreamsMetrics("mem")
    memory = RocksDBMemory(4 * MIB)
    metrics.watch_rocksdb_memory(memory)
    metrics.watch_rocksdb_memory(None)  # no budget: nothing more to serve

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(f"streamtable_rocksdb_memory_{name}_bytes")

    assert sample("capacity") == 4 * MIB
    before = sample("usage")
    store = RocksDBBytesStore(tmp_path / "s", memory)
    fill(store, b"k", 1)
    assert before is not None
    assert sample("usage") == memory.usage_bytes() > before
    store.close()
