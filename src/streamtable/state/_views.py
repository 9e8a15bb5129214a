"""Read-only views: what readers (interactive queries, the test driver) get instead of a store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any, Protocol

from streamtable.serde import Serde
from streamtable.serde._windowed import (
    WINDOW_START_SIZE,
    TimeWindowedSerde,
    start_bytes,
    window_start_of,
)
from streamtable.state._bytes import TIMESTAMP_SIZE
from streamtable.state._kv import Decoded, RawEntry, ReadableStore, decode_entries
from streamtable.windowing import Windowed


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


class WindowScan(Protocol):
    """``scan(lo, hi, key, starts=None, limit=None)``: a window store's raw entries with
    windowed-key bytes between ``lo`` and ``hi`` (inclusive; None: open), in key-bytes order.
    ``key`` is the record key's bytes when only that key's windows are wanted (a view over many
    partitions then reads one); ``starts``: only windows starting in ``[first, last]`` ms
    (:func:`starting_in`); ``limit``: at most that many entries."""

    def __call__(
        self,
        lo: bytes | None,
        hi: bytes | None,
        key: bytes | None,
        /,
        *,
        starts: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[RawEntry]: ...


def starting_in(entries: Iterable[RawEntry], starts: tuple[int, int] | None) -> Iterator[RawEntry]:
    """The entries (windowed keys) whose window starts in ``[first, last]`` ms; all of them
    when ``starts`` is None."""
    if starts is None:
        return iter(entries)
    first, last = starts
    return (entry for entry in entries if first <= window_start_of(entry[0]) <= last)


def scan_of(store: Any) -> WindowScan:
    """The :class:`WindowScan` of one window or session store's stack (its top layer)."""

    def scan(
        lo: bytes | None,
        hi: bytes | None,
        key: bytes | None,
        /,
        *,
        starts: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[RawEntry]:
        return islice(starting_in(store.raw_entries(lo, hi), starts), limit)

    return scan


def to_ms(value: int | datetime, name: str) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be milliseconds (int) or a datetime, got {type(value).__name__}")


class ReadOnlyWindowStore:
    """A read-only window on a window store, as Kafka Streams' ``ReadOnlyWindowStore``:

    - ``fetch(key, time_from, time_to)``: ``(window start ms, value)`` of ``key``'s windows
      starting in ``[time_from, time_to]``, earliest first;
    - ``fetch_all(time_from, time_to)``: ``(Windowed, value)`` of every window starting in
      that range;
    - ``all()``: ``(Windowed, value)`` of every window.

    Times are window starts, in milliseconds or as datetimes, both ends inclusive. Windows the
    store has expired (they started ``retention`` or more before its latest window) are never
    returned. Scans over every key go in the order of serialized keys, then window starts.
    """

    __slots__ = ("_key_serde", "_name", "_scan", "_value_serde")

    def __init__(
        self, name: str, key_serde: TimeWindowedSerde, value_serde: Serde[Any], scan: WindowScan
    ) -> None:
        self._name = name
        self._key_serde = key_serde
        self._value_serde = value_serde
        self._scan = scan

    @classmethod
    def over(cls, store: Any) -> ReadOnlyWindowStore:
        """A view of one window store's stack (its top layer, whatever it is)."""

        return cls(store.name, store.key_serde, store.value_serde, scan_of(store))

    @property
    def name(self) -> str:
        return self._name

    def fetch(
        self, key: Any, time_from: int | datetime, time_to: int | datetime
    ) -> Iterator[tuple[int, Any]]:
        """``(window start ms, value)`` of ``key``'s windows starting in
        ``[time_from, time_to]``."""
        lo, hi = max(0, to_ms(time_from, "time_from")), to_ms(time_to, "time_to")
        kb = self._key_serde.inner.serialize(key)
        if hi < lo:
            return iter(())
        return self._fetch(kb, self._scan(kb + start_bytes(lo), kb + start_bytes(hi), kb))

    def _fetch(self, kb: bytes, entries: Iterator[RawEntry]) -> Iterator[tuple[int, Any]]:
        decode = self._value_serde.deserialize
        size = len(kb) + WINDOW_START_SIZE
        for wkb, payload in entries:
            if len(wkb) != size or not wkb.startswith(kb):
                continue  # a longer key that shares the prefix, sorted among this one's
            value = payload[1] if isinstance(payload, Decoded) else decode(payload[TIMESTAMP_SIZE:])
            yield window_start_of(wkb), value

    def fetch_all(
        self, time_from: int | datetime, time_to: int | datetime
    ) -> Iterator[tuple[Windowed, Any]]:
        """``(Windowed, value)`` of every window starting in ``[time_from, time_to]``."""
        starts = (to_ms(time_from, "time_from"), to_ms(time_to, "time_to"))
        return self._decoded(self._scan(None, None, None, starts=starts))

    def raw_fetch_all(
        self,
        time_from: int | datetime,
        time_to: int | datetime,
        *,
        after: bytes | None = None,
        limit: int | None = None,
    ) -> Iterator[RawEntry]:
        """``fetch_all``'s entries before decoding, ``(windowed key bytes, stored value)`` (a
        record cache's pending entry is ``Decoded((Windowed, value))``), strictly after the
        windowed key bytes ``after``, the first ``limit`` of them: what the query server pages
        by, decoding with :func:`~streamtable.state.decode_entries` as it chooses."""
        starts = (to_ms(time_from, "time_from"), to_ms(time_to, "time_to"))
        lo = None if after is None else after + b"\x00"  # the least bytes after ``after``
        return self._scan(lo, None, None, starts=starts, limit=limit)

    def all(self) -> Iterator[tuple[Windowed, Any]]:
        """``(Windowed, value)`` of every window the store keeps."""
        return self._decoded(self._scan(None, None, None))

    def _decoded(self, entries: Iterable[RawEntry]) -> Iterator[tuple[Windowed, Any]]:
        kd, vd = self._key_serde.deserialize, self._value_serde.deserialize
        return ((key, value) for _, key, value in decode_entries(entries, kd, vd))

    def __repr__(self) -> str:
        return f"ReadOnlyWindowStore({self.name!r})"
