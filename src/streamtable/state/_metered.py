"""The metered layer: per-store operation counts, the top of a store stack.

Counting is a plain integer increment per operation (no clock, no metrics-library call), so the
layer costs one Python call; a Prometheus collector reads the counts at scrape time
(:class:`~streamtable.runtime.metrics.StoreOperationsCollector`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamtable.state._caching import CachingStore
from streamtable.state._changelog import ChangeLoggingBytesStore
from streamtable.state._kv import RawEntry
from streamtable.state._layers import layer_of

OPERATIONS = ("get", "put", "delete", "range")
"""The operations counted: reads of one key, writes, deletes, and scans of any kind."""


class MeteredStore:
    """Counts ``get``/``put``/``delete``/``range`` on the store below (a record cache or a
    serde store) and passes every call through unchanged.

    ``get`` counts ``get_with_timestamp`` too; ``range`` counts every scan (``range``, ``all``,
    ``prefix_scan``, and the entry scans interactive queries use).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.gets = 0
        self.puts = 0
        self.deletes = 0
        self.ranges = 0

    @property
    def key_serde(self) -> Any:
        return self.inner.key_serde

    @property
    def value_serde(self) -> Any:
        return self.inner.value_serde

    def operation_counts(self) -> dict[str, int]:
        """``{"get": n, "put": n, "delete": n, "range": n}`` since the store was opened."""
        return {"get": self.gets, "put": self.puts, "delete": self.deletes, "range": self.ranges}

    # -- counted ---------------------------------------------------------------------------
    def get(self, key: Any) -> Any:
        self.gets += 1
        found: Any = self.inner.get(key)
        return found

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        self.gets += 1
        found: tuple[Any, int] | None = self.inner.get_with_timestamp(key)
        return found

    def put(self, key: Any, value: Any, timestamp: int) -> None:
        self.puts += 1
        self.inner.put(key, value, timestamp)

    # -- counted, over a window store's record cache (WindowCachingStore) only ----------------
    def get_window_with_timestamp(self, key: Any, start: int) -> tuple[Any, int] | None:
        self.gets += 1
        found: tuple[Any, int] | None = self.inner.get_window_with_timestamp(key, start)
        return found

    def put_window(self, key: Any, start: int, value: Any, timestamp: int) -> None:
        self.puts += 1
        self.inner.put_window(key, start, value, timestamp)

    def get_windows(self, key: Any, starts: list[int]) -> list[tuple[Any, int] | None]:
        self.gets += len(starts)
        found: list[tuple[Any, int] | None] = self.inner.get_windows(key, starts)
        return found

    def put_windows(self, key: Any, windows: list[tuple[int, Any, int]]) -> None:
        self.puts += len(windows)
        self.inner.put_windows(key, windows)

    def delete(self, key: Any) -> None:
        self.deletes += 1
        self.inner.delete(key)

    def range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        self.ranges += 1
        found: Iterator[tuple[Any, Any]] = self.inner.range(lo, hi, limit)
        return found

    def all(self) -> Iterator[tuple[Any, Any]]:
        self.ranges += 1
        found: Iterator[tuple[Any, Any]] = self.inner.all()
        return found

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]:
        self.ranges += 1
        found: Iterator[tuple[Any, Any]] = self.inner.prefix_scan(prefix)
        return found

    def prefix_scan_bytes(self, prefix: bytes) -> Iterator[tuple[Any, Any]]:
        self.ranges += 1
        found: Iterator[tuple[Any, Any]] = self.inner.prefix_scan_bytes(prefix)
        return found

    def range_entries(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, Any, Any]]:
        self.ranges += 1
        found: Iterator[tuple[bytes, Any, Any]] = self.inner.range_entries(lo, hi, limit)
        return found

    def raw_range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[RawEntry]:
        self.ranges += 1
        found: Iterator[RawEntry] = self.inner.raw_range(lo, hi, limit)
        return found

    def raw_entries(self, lo: bytes | None, hi: bytes | None) -> Iterator[RawEntry]:
        self.ranges += 1
        found: Iterator[RawEntry] = self.inner.raw_entries(lo, hi)
        return found

    # -- passed through --------------------------------------------------------------------
    def approximate_num_entries(self) -> int:
        count: int = self.inner.approximate_num_entries()
        return count

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


def changelogging(store: Any) -> ChangeLoggingBytesStore | None:
    """The changelog layer of a store stack (under its metered, cache and serde layers), or
    None: not logged."""
    return layer_of(store, ChangeLoggingBytesStore)


def record_cache(store: Any) -> CachingStore | None:
    """The record cache of a store stack (under its metered layer, if any), or None."""
    if isinstance(store, MeteredStore):
        store = store.inner
    return store if isinstance(store, CachingStore) else None
