"""Read-only views: what readers (interactive queries, the test driver) get instead of a store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamtable.state._kv import RawEntry, ReadableStore


class ReadOnlyKeyValueStore:
    """A read-only window on one store: ``get``, ``all``, ``range``, ``prefix_scan``...

    ``range(lo, hi)`` is inclusive at both ends, in the order of serialized key bytes;
    ``None`` leaves a side open.
    """

    __slots__ = ("_store",)

    def __init__(self, store: ReadableStore) -> None:
        self._store = store

    @property
    def name(self) -> str:
        return self._store.name

    def get(self, key: Any) -> Any:
        return self._store.get(key)

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        return self._store.get_with_timestamp(key)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return self._store.all()

    def range(
        self, lo: Any = None, hi: Any = None, *, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """``limit`` bounds how many entries are read (and, across partitions, merged)."""
        return self._store.range(lo, hi, limit)

    def range_entries(
        self, lo: Any = None, hi: Any = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, Any, Any]]:
        """``range`` with each key's serialized bytes: ``(key bytes, key, value)``."""
        entries: Iterator[tuple[bytes, Any, Any]] = self._store.range_entries(lo, hi, limit)
        return entries

    def raw_range(
        self, lo: Any = None, hi: Any = None, *, limit: int | None = None
    ) -> Iterator[RawEntry]:
        """``range``'s entries before decoding, in key-bytes order: ``(key bytes, stored
        value)``, where a record cache's pending entry is ``Decoded((key, value))``. What the
        query server pages by, decoding with :func:`~streamtable.state.decode_entries` as it
        chooses (a JSON store's values as stored)."""
        entries: Iterator[RawEntry] = self._store.raw_range(lo, hi, limit)
        return entries

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]:
        return self._store.prefix_scan(prefix)

    def approximate_num_entries(self) -> int:
        return self._store.approximate_num_entries()

    def __repr__(self) -> str:
        return f"ReadOnlyKeyValueStore({self.name!r})"
