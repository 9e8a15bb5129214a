"""A read-only store over every local task's store of one name (interactive queries).

``get`` routes by partition (murmur2 of the serialized key, as the producer placed it);
``all``/``range``/``prefix_scan`` merge the tasks' stores in the order of serialized key bytes.
Window and session stores' views (``StreamsApp.window_store``, ``session_store``: made by
:func:`window_reader` and :func:`session_reader`) read through :meth:`window_entries`.
Each call checks the app is RUNNING (else :class:`StoreNotReady`) and reads under the app's
lock, materializing the entries' bytes, so a rebalance never closes a store under a reader;
entries are decoded after the merge, and with a limit only those kept.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterator
from itertools import islice
from operator import itemgetter
from typing import Any

from streamtable.serde import Serde, SessionWindowedSerde, TimeWindowedSerde
from streamtable.state import (
    RawEntry,
    ReadOnlySessionStore,
    ReadOnlyWindowStore,
    decode_entries,
    starting_in,
)
from streamtable.topology import StoreSpec, partition_for

StoreLookup = Callable[[], tuple[dict[int, Any], int]]  # partition -> store, partition count


class CompositeStoreView:
    def __init__(
        self,
        name: str,
        key_serde: Serde[Any],
        lookup: StoreLookup,
        check_ready: Callable[[], None],
        lock: threading.RLock,
    ) -> None:
        self.name = name
        self._key_serde = key_serde
        self._lookup = lookup
        self._check_ready = check_ready
        self._lock = lock

    def _stores(self) -> tuple[dict[int, Any], int]:
        self._check_ready()
        return self._lookup()

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        self._check_ready()  # fail fast, not behind a recovery holding the lock
        with self._lock:
            stores, count = self._stores()
            store = stores.get(partition_for(self._key_serde.serialize(key), max(count, 1)))
            if store is None:
                return None
            result: tuple[Any, int] | None = store.get_with_timestamp(key)
            return result

    def get(self, key: Any) -> Any:
        found = self.get_with_timestamp(key)
        return None if found is None else found[0]

    def _merge(
        self, scan: Callable[[Any], Iterator[tuple[Any, Any]]], limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        ks = self._key_serde.serialize
        self._check_ready()  # fail fast, not behind a recovery holding the lock
        with self._lock:
            stores, _ = self._stores()
            # Each partition's part is read under the lock (a rebalance cannot close a store
            # under the reader); with a limit, no partition needs more than ``limit`` entries.
            parts = [
                [(ks(k), k, v) for k, v in islice(scan(store), limit)]
                for _, store in sorted(stores.items())
            ]
        merged = ((k, v) for _, k, v in heapq.merge(*parts, key=lambda item: item[0]))
        return merged if limit is None else islice(merged, limit)

    def _raw_merge(
        self, lo: Any, hi: Any, limit: int | None
    ) -> tuple[Iterator[RawEntry], Any | None]:
        """The tasks' raw entries merged by key bytes, and one of the stores (its serdes decode
        them; None when no store is hosted here)."""
        ks = self._key_serde.serialize
        lo_b, hi_b = (None if lo is None else ks(lo)), (None if hi is None else ks(hi))
        self._check_ready()  # fail fast, not behind a recovery holding the lock
        with self._lock:
            stores, _ = self._stores()
            ordered = [store for _, store in sorted(stores.items())]
            parts = [list(islice(s.raw_entries(lo_b, hi_b), limit)) for s in ordered]
        merged: Iterator[RawEntry] = heapq.merge(*parts, key=itemgetter(0))
        found = merged if limit is None else islice(merged, limit)
        return found, (ordered[0] if ordered else None)

    def raw_range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[RawEntry]:
        """``range``'s entries before decoding, ``(key bytes, stored value)``, merged by key
        bytes across the tasks' stores (each partition reads up to ``limit``); the caller
        decodes them (:func:`~streamtable.state.decode_entries`), with a ``limit`` only the
        entries kept."""
        return self._raw_merge(lo, hi, limit)[0]

    def range_entries(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, Any, Any]]:
        """``range`` with each key's serialized bytes, ``(key bytes, key, value)``: the merged
        :meth:`raw_range`, decoded after the merge with the stores' serdes."""
        found, serdes = self._raw_merge(lo, hi, limit)
        if serdes is None:
            return iter(())
        return decode_entries(found, serdes.key_serde.deserialize, serdes.value_serde.deserialize)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return self.range()

    def range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        return ((key, value) for _, key, value in self.range_entries(lo, hi, limit))

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]:
        return self._merge(lambda store: store.prefix_scan(prefix))

    def window_entries(
        self,
        lo: bytes | None,
        hi: bytes | None,
        key: bytes | None,
        *,
        starts: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[RawEntry]:
        """A window store's raw entries between windowed-key bytes ``lo`` and ``hi``, merged
        by key bytes: of the task of ``key``'s partition when the record key's bytes are
        given (the partitioner placed its records by them), else of every task (a
        :data:`~streamtable.state.WindowScan`). ``starts``: only windows starting in
        ``[first, last]`` ms; ``limit``: at most that many entries, and no task reads more
        (a page of a scan)."""
        self._check_ready()  # fail fast, not behind a recovery holding the lock
        with self._lock:
            stores, count = self._stores()
            if key is None:
                chosen = [store for _, store in sorted(stores.items())]
            else:
                one = stores.get(partition_for(key, max(count, 1)))
                chosen = [] if one is None else [one]
            parts = [
                list(islice(starting_in(store.raw_entries(lo, hi), starts), limit))
                for store in chosen
            ]
        merged: Iterator[RawEntry] = heapq.merge(*parts, key=itemgetter(0))
        return merged if limit is None else islice(merged, limit)

    def approximate_num_entries(self) -> int:
        self._check_ready()  # fail fast, not behind a recovery holding the lock
        with self._lock:
            stores, _ = self._stores()
            return sum(int(s.approximate_num_entries()) for s in stores.values())


def window_reader(spec: StoreSpec, view: CompositeStoreView) -> ReadOnlyWindowStore:
    """The read-only window store over ``view`` (``spec``: a window store's)."""
    assert spec.window_size_ms is not None  # a window store's spec has it
    key_serde = TimeWindowedSerde(spec.key_serde, spec.window_size_ms)
    return ReadOnlyWindowStore(spec.name, key_serde, spec.value_serde, view.window_entries)


def session_reader(spec: StoreSpec, view: CompositeStoreView) -> ReadOnlySessionStore:
    """The read-only session store over ``view`` (``spec``: a session store's)."""
    key_serde = SessionWindowedSerde(spec.key_serde)
    return ReadOnlySessionStore(spec.name, key_serde, spec.value_serde, view.window_entries)
