"""The record cache: per-key deduplication of writes between commits.

Between two flushes, successive writes to a key overwrite each other in the cache; ``flush()``
writes the survivors to the store below in one batch and tells the flush listener
``(key, new, old, timestamp)`` for each, where ``old`` is the value as of the previous flush.
So downstream sees one change per key per commit, as with Kafka Streams' record cache. A change
from nothing to nothing (a delete of an absent key) is neither written nor forwarded.

All caches of an instance share one :class:`CacheBudget` (``cache_max_bytes``); a write that
takes the budget over evicts, i.e. flushes, the oldest dirty entries of the store written to
(down to 7/8 of the budget, so that evictions come in batches).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from streamtable.state._kv import (
    Decoded,
    RawEntry,
    SerdeStore,
    decode_entries,
    decoded_scan,
    prefix_upper_bound,
    raw_scan,
)

FlushListener = Callable[[Any, Any, Any, int], None]

_ENTRY_OVERHEAD = 96  # dict slot + tuple + bookkeeping, in bytes (estimate)
_RESIZE_MASK = 15
"""A key written again before its entry is flushed keeps the size estimate of its first
write, except at every 16th such write of the store, when it is estimated again. The estimate
(two ``sys.getsizeof`` calls) cost more than the rest of a write; a value that grows between two
flushes is estimated again once in 16 of its writes on average, and afresh after each flush."""
_ABSENT = object()
_sizeof = sys.getsizeof


class CacheBudget:
    """Bytes of cache shared by every caching store of one app instance (an estimate of Python
    object sizes)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0


class CachingStore:
    """A write-back cache over a :class:`SerdeStore`."""

    def __init__(self, inner: SerdeStore, budget: CacheBudget) -> None:
        self.name = inner.name
        self.inner = inner
        self._budget = budget
        # key -> (value or None, timestamp, size); insertion order = eviction order
        self._dirty: dict[Any, tuple[Any, int, int]] = {}
        # Entries taken out of ``_dirty`` by a flush or an eviction until the store below has
        # them: an interactive query, on another thread, reads ``_dirty``, then this, then the
        # store below, and so never sees a key go back to an older value meanwhile.
        self._flushing: dict[Any, tuple[Any, int, int]] = {}
        self.listener: FlushListener | None = None
        self._overwrites = 0  # writes of a key already in _dirty (see _RESIZE_MASK)
        # False when the listener ignores old values: then the store below is read at flush
        # only for deletes (to drop a change from "no row" to "no row").
        self.send_old_values = True

    @property
    def key_serde(self) -> Any:
        return self.inner.key_serde

    @property
    def value_serde(self) -> Any:
        return self.inner.value_serde

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        entry = self._dirty.get(key)
        if entry is None:
            flushing = self._flushing
            if not flushing or (entry := flushing.get(key)) is None:
                return self.inner.get_with_timestamp(key)
        if entry[0] is None:
            return None
        return entry[0], entry[1]

    def get(self, key: Any) -> Any:
        entry = self._dirty.get(key)
        if entry is None:
            flushing = self._flushing
            if not flushing or (entry := flushing.get(key)) is None:
                return self.inner.get(key)
        return entry[0]

    def put(self, key: Any, value: Any, timestamp: int) -> None:
        dirty = self._dirty
        previous = dirty.pop(key, None)
        if previous is not None:
            self._overwrites = overwrites = self._overwrites + 1
            if overwrites & _RESIZE_MASK:
                # The key's size estimate stands (see _RESIZE_MASK): the budget is unchanged.
                dirty[key] = (value, timestamp, previous[2])
                if self._budget.used > self._budget.max_bytes:
                    self._evict()
                return
        size = _ENTRY_OVERHEAD + _sizeof(key) + _sizeof(value)  # shallow: an estimate
        budget = self._budget
        if previous is not None:
            budget.used -= previous[2]
        dirty[key] = (value, timestamp, size)
        budget.used += size
        if budget.used > budget.max_bytes:
            self._evict()

    _put_entry = put
    """A write of a key of ``_dirty`` (the store's key here; see :meth:`_entry_key_bytes`),
    which a subclass's ``put`` does not change."""

    def _put_entries(self, key: Any, items: list[tuple[Any, Any, int]]) -> None:
        """:meth:`_put_entry` of ``((key, k2), value, timestamp)`` for each ``(k2, value,
        timestamp)`` of ``items``, in one call (:class:`~streamtable.state.WindowCachingStore`)."""
        dirty = self._dirty
        budget = self._budget
        for k2, value, timestamp in items:
            entry_key = (key, k2)
            previous = dirty.pop(entry_key, None)
            if previous is not None:
                self._overwrites = overwrites = self._overwrites + 1
                if overwrites & _RESIZE_MASK:
                    dirty[entry_key] = (value, timestamp, previous[2])
                    if budget.used > budget.max_bytes:
                        self._evict()
                    continue
                budget.used -= previous[2]
            size = _ENTRY_OVERHEAD + _sizeof(entry_key) + _sizeof(value)
            dirty[entry_key] = (value, timestamp, size)
            budget.used += size
            if budget.used > budget.max_bytes:
                self._evict()

    def delete(self, key: Any) -> None:
        self.put(key, None, 0)

    def _evict(self) -> None:
        """Flush the oldest entries until the budget has an eighth to spare: one write (and
        one multi-get of old values) per batch of evictions, not per put."""
        budget = self._budget
        need = budget.used - (budget.max_bytes - (budget.max_bytes >> 3))
        evicted: list[tuple[Any, tuple[Any, int, int]]] = []
        freed = 0
        dirty = self._dirty
        for item in dirty.items():  # oldest first; one pass (not next(iter()) per entry)
            evicted.append(item)
            freed += item[1][2]
            if freed >= need:
                break
        budget.used -= freed
        self._write_out(evicted, lambda: [dirty.pop(key) for key, _ in evicted])

    def flush(self) -> None:
        """Write every dirty entry below and forward the changes to the listener.

        The engine itself is not flushed to disk here (that is the checkpoint's job).
        """
        if self._dirty:
            entries = list(self._dirty.items())
            self._budget.used -= sum(e[2] for _, e in entries)
            self._write_out(entries, self._clear)

    def _clear(self) -> None:
        self._dirty = {}

    def _write_out(
        self, entries: list[tuple[Any, tuple[Any, int, int]]], take: Callable[[], object]
    ) -> None:
        """Write ``entries`` below after ``take()`` removed them from ``_dirty``, visible in
        ``_flushing`` until they are there (see ``__init__``)."""
        before = self._flushing
        self._flushing = {**before, **dict(entries)}
        take()
        try:
            self._write(entries)
        finally:
            self._flushing = before

    def has_dirty(self) -> bool:
        return bool(self._dirty)

    def _entry_key_bytes(self) -> Callable[[Any], bytes]:
        """How a key of ``_dirty`` is serialized: the store's key serde here; a subclass may
        key its entries otherwise (:class:`~streamtable.state.WindowCachingStore`)."""
        return self.inner.key_serde.serialize

    def _entry_key_object(self) -> Callable[[Any], Any] | None:
        """The store's key of a key of ``_dirty`` (None: the same object)."""
        return None

    def _write(self, entries: list[tuple[Any, tuple[Any, int, int]]]) -> None:
        inner = self.inner
        ks = self._entry_key_bytes()
        keys = [ks(key) for key, _ in entries]  # serialized once, for the reads and the writes
        listener = self.listener
        if listener is None:
            inner.put_all_serialized(
                [(kb, e[0], e[1]) for kb, (_, e) in zip(keys, entries, strict=True)]
            )
            return
        # Old values: for every entry when they are forwarded, else only for deletes (to drop a
        # change from "no row" to "no row"); read in one multi-get.
        wanted = [i for i, (_, e) in enumerate(entries) if self.send_old_values or e[0] is None]
        olds: list[Any] = [None] * len(entries)
        for i, old in zip(
            wanted, inner.get_many_serialized([keys[i] for i in wanted]), strict=True
        ):
            olds[i] = old
        changes = []
        writes = []
        for i, (key, (value, ts, _)) in enumerate(entries):
            old = olds[i]
            if value is None and old is None:
                continue
            writes.append((keys[i], value, ts))
            changes.append((key, value, old, ts))
        inner.put_all_serialized(writes)
        as_key = self._entry_key_object()
        for key, value, old, ts in changes:
            listener(key if as_key is None else as_key(key), value, old, ts)

    def discard(self) -> None:
        """Drop dirty entries without writing them (a transaction was aborted)."""
        self._budget.used -= sum(e[2] for e in self._dirty.values())
        self._dirty = {}

    # -- scans merge the dirty entries over the store below ------------------------------------
    def raw_entries(
        self, lo: bytes | None, hi: bytes | None, prefix: bytes | None = None
    ) -> Iterator[RawEntry]:
        """The dirty entries over the store below, in key-bytes order, deleted ones left out;
        entries from below are not decoded yet (see :func:`decode_entries`)."""
        ks = self._entry_key_bytes()
        as_key = self._entry_key_object()
        pending: list[tuple[bytes, Decoded]] = []
        dirty = dict(self._dirty)  # first: see _flushing
        for key, (value, _, _) in {**self._flushing, **dirty}.items():
            kb = ks(key)
            if (lo is not None and kb < lo) or (hi is not None and kb > hi):
                continue
            if prefix is not None and not kb.startswith(prefix):
                continue
            pending.append((kb, Decoded((key if as_key is None else as_key(key), value))))
        below = self.inner.raw_entries(lo, hi)
        if not pending and prefix is None:
            return below  # nothing dirty here: the engine's entries as they are
        pending.sort(key=lambda item: item[0])
        return self._overlaid(below, pending, prefix)

    @staticmethod
    def _overlaid(
        below: Iterator[RawEntry], pending: list[tuple[bytes, Decoded]], prefix: bytes | None
    ) -> Iterator[RawEntry]:
        i = 0
        for kb, vb in below:
            if prefix is not None and not kb.startswith(prefix):
                continue
            while i < len(pending) and pending[i][0] < kb:
                entry = pending[i]
                i += 1
                if entry[1][1] is not None:
                    yield entry
            if i < len(pending) and pending[i][0] == kb:
                entry = pending[i]
                i += 1
                if entry[1][1] is not None:
                    yield entry
                continue
            yield kb, vb
        for entry in pending[i:]:
            if entry[1][1] is not None:
                yield entry

    def _overlay(
        self, lo: bytes | None, hi: bytes | None, prefix: bytes | None = None
    ) -> Iterator[tuple[Any, Any]]:
        raw = self.raw_entries(lo, hi, prefix)
        inner = self.inner
        decoded = decode_entries(raw, inner.key_serde.deserialize, inner.value_serde.deserialize)
        return ((key, value) for _, key, value in decoded)

    def raw_range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[RawEntry]:
        """``range``'s entries not decoded (see :func:`decode_entries`)."""
        return raw_scan(self, lo, hi, limit)

    def range_entries(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, Any, Any]]:
        """``range`` with each key's serialized bytes: ``(key bytes, key, value)``."""
        return decoded_scan(self, lo, hi, limit)

    def range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        ks = self.inner.key_serde.serialize
        found = self._overlay(None if lo is None else ks(lo), None if hi is None else ks(hi))
        return found if limit is None else islice(found, limit)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return self._overlay(None, None)

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]:
        return self.prefix_scan_bytes(self.inner.key_serde.serialize(prefix))

    def prefix_scan_bytes(self, prefix: bytes) -> Iterator[tuple[Any, Any]]:
        return self._overlay(prefix, prefix_upper_bound(prefix), prefix=prefix)

    def approximate_num_entries(self) -> int:
        return self.inner.approximate_num_entries() + len(self._dirty)

    def close(self) -> None:
        self.inner.close()
