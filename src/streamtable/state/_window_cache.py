"""The record cache of a window store: entries keyed by ``(key, window start)`` tuples.

A window store's keys are :class:`~streamtable.Windowed` objects, and a time-windowed
aggregation updates several windows per record (five for a 5-minute window hopping by a
minute). Keyed by ``Windowed`` objects, the cache would build one per update and hash and compare
it in Python (generated ``__hash__`` and ``__eq__`` of two nested dataclasses) at each of the
update's dict operations; keyed by a plain tuple, those are done in C. The ``Windowed`` key of
an entry is built only when something reads it back: a flush (the listener gets it) or a scan.

The serialized key is the :class:`~streamtable.serde.TimeWindowedSerde` layout, ``key bytes +
8-byte big-endian window start``, so two ``Windowed`` keys with the same key and start are one
entry, as they are one row in the store below; reads give the window's end as ``start + window
size``, as the serde does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.errors import SerializationError
from streamtable.serde._windowed import TimeWindowedSerde, start_bytes
from streamtable.state._caching import CacheBudget, CachingStore
from streamtable.state._kv import SerdeStore
from streamtable.windowing import Window, Windowed


def _check(key: Any) -> Windowed:
    if not isinstance(key, Windowed):
        raise SerializationError(f"a window store expects a Windowed key, got {type(key).__name__}")
    return key


class WindowCachingStore(CachingStore):
    """A :class:`CachingStore` of a window store (a :class:`SerdeStore` whose key serde is a
    :class:`~streamtable.serde.TimeWindowedSerde`); :meth:`get_window_with_timestamp` and
    :meth:`put_window` read and write a window by key and start without a ``Windowed``."""

    def __init__(self, inner: SerdeStore, budget: CacheBudget) -> None:
        super().__init__(inner, budget)
        serde = inner.key_serde
        if not isinstance(serde, TimeWindowedSerde):
            raise TypeError(f"store {inner.name!r}: a window cache needs a TimeWindowedSerde key")
        self._key_bytes: Callable[[Any], bytes] = serde.inner.serialize
        self._window_size_ms: int = serde.window_size_ms

    # -- by key and window start -------------------------------------------------------------
    def get_window_with_timestamp(self, key: Any, start: int) -> tuple[Any, int] | None:
        """The aggregate and timestamp of ``key``'s window starting at ``start``, or None."""
        entry_key = (key, start)
        entry = self._dirty.get(entry_key)
        if entry is None:
            flushing = self._flushing
            if not flushing or (entry := flushing.get(entry_key)) is None:
                kb = self._key_bytes(key) + start_bytes(start)
                return self.inner.get_with_timestamp_serialized(kb)
        if entry[0] is None:
            return None
        return entry[0], entry[1]

    def put_window(self, key: Any, start: int, value: Any, timestamp: int) -> None:
        """Write ``key``'s window starting at ``start`` (``value`` None: delete it)."""
        self._put_entry((key, start), value, timestamp)

    def get_windows(self, key: Any, starts: list[int]) -> list[tuple[Any, int] | None]:
        """:meth:`get_window_with_timestamp` of ``key``'s window at each of ``starts``, in one
        call (a record updates every window holding its time)."""
        dirty = self._dirty
        flushing = self._flushing
        key_bytes: bytes | None = None
        found: list[tuple[Any, int] | None] = []
        for start in starts:
            entry = dirty.get((key, start))
            if entry is None and (not flushing or (entry := flushing.get((key, start))) is None):
                if key_bytes is None:
                    key_bytes = self._key_bytes(key)
                found.append(
                    self.inner.get_with_timestamp_serialized(key_bytes + start_bytes(start))
                )
            elif entry[0] is None:
                found.append(None)
            else:
                found.append((entry[0], entry[1]))
        return found

    def put_windows(self, key: Any, windows: list[tuple[int, Any, int]]) -> None:
        """:meth:`put_window` of ``key``'s window for each ``(start, value, timestamp)``."""
        self._put_entries(key, windows)

    # -- by Windowed key ---------------------------------------------------------------------
    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        windowed = _check(key)
        return self.get_window_with_timestamp(windowed.key, windowed.window.start_ms)

    def get(self, key: Any) -> Any:
        found = self.get_with_timestamp(key)
        return None if found is None else found[0]

    def put(self, key: Any, value: Any, timestamp: int) -> None:
        windowed = _check(key)
        self._put_entry((windowed.key, windowed.window.start_ms), value, timestamp)

    # -- entries back to keys ----------------------------------------------------------------
    def _entry_key_bytes(self) -> Callable[[Any], bytes]:
        key_bytes = self._key_bytes

        def serialize(entry_key: tuple[Any, int]) -> bytes:
            return key_bytes(entry_key[0]) + start_bytes(entry_key[1])

        return serialize

    def _entry_key_object(self) -> Callable[[Any], Any] | None:
        size = self._window_size_ms

        def windowed(entry_key: tuple[Any, int]) -> Windowed:
            start = entry_key[1]
            return Windowed(entry_key[0], Window(start, start + size))

        return windowed
