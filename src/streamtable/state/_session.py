"""Session stores: the read-only view (and the processors' session lookups).

A session store is a window store's stack (:class:`SegmentedWindowBytesStore` under the
key-value layers) whose keys are session-windowed: ``key bytes + 8-byte end + 8-byte start``
(:class:`~streamtable.serde.SessionWindowedSerde`), segmented and expired by session end, as
Kafka Streams' ``RocksDBSessionStore``. One key's sessions are one contiguous range of key
bytes, ordered by end, then start: what :meth:`ReadOnlySessionStore.find_sessions` scans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from streamtable.serde import Serde
from streamtable.serde._windowed import (
    SESSION_SUFFIX_SIZE,
    SessionWindowedSerde,
    session_bytes,
    window_start_of,
)
from streamtable.state._kv import RawEntry, decode_entries
from streamtable.state._views import WindowScan, scan_of, to_ms
from streamtable.windowing import Windowed

LATEST = 2**63 - 1
"""The largest time a session may have (Kafka Streams' ``Long.MAX_VALUE``)."""


def sessions_of(entries: Iterable[RawEntry], kb: bytes, latest_start: int) -> Iterator[RawEntry]:
    """The entries of exactly the key ``kb`` (not of longer keys sharing its bytes) whose
    session starts at or before ``latest_start``."""
    size = len(kb) + SESSION_SUFFIX_SIZE
    for entry in entries:
        skb = entry[0]
        if len(skb) == size and skb.startswith(kb) and window_start_of(skb) <= latest_start:
            yield entry


class ReadOnlySessionStore:
    """A read-only window on a session store, as Kafka Streams' ``ReadOnlySessionStore``:

    - ``fetch(key)``: ``(Windowed, value)`` of every session of ``key``;
    - ``find_sessions(key, earliest_session_end, latest_session_start)``: those that end at or
      after the first and start at or before the second;
    - ``fetch_session(key, start, end)``: the value of one session, or None;
    - ``all()``: every session of every key.

    A key's sessions come ordered by end, then start; times are milliseconds or datetimes,
    inclusive. Sessions the store has expired (ended ``retention`` or more before its latest
    session end) are never returned.

    Example::

        for windowed, count in driver.session_store("clicks").fetch("alice"):
            print(windowed.window.start_ms, windowed.window.end_ms, count)
    """

    __slots__ = ("_key_serde", "_name", "_scan", "_value_serde")

    def __init__(
        self, name: str, key_serde: SessionWindowedSerde, value_serde: Serde[Any], scan: WindowScan
    ) -> None:
        self._name = name
        self._key_serde = key_serde
        self._value_serde = value_serde
        self._scan = scan

    @classmethod
    def over(cls, store: Any) -> ReadOnlySessionStore:
        """A view of one session store's stack (its top layer, whatever it is)."""

        return cls(store.name, store.key_serde, store.value_serde, scan_of(store))

    @property
    def name(self) -> str:
        return self._name

    def fetch(self, key: Any) -> Iterator[tuple[Windowed, Any]]:
        """Every session of ``key``, earliest end first."""
        return self.find_sessions(key, 0, LATEST)

    def find_sessions(
        self,
        key: Any,
        earliest_session_end: int | datetime,
        latest_session_start: int | datetime,
    ) -> Iterator[tuple[Windowed, Any]]:
        """The sessions of ``key`` ending at or after ``earliest_session_end`` and starting at
        or before ``latest_session_start``, earliest end first."""
        return self._decoded(
            self.raw_find_sessions(key, earliest_session_end, latest_session_start)
        )

    def raw_find_sessions(
        self,
        key: Any,
        earliest_session_end: int | datetime,
        latest_session_start: int | datetime,
        *,
        limit: int | None = None,
    ) -> Iterator[RawEntry]:
        """``find_sessions``' entries before decoding, ``(session key bytes, stored value)``
        (a record cache's pending entry is ``Decoded((Windowed, value))``), at most ``limit``:
        what the query server reads, decoding with :func:`~streamtable.state.decode_entries`
        as it chooses."""
        earliest = max(0, to_ms(earliest_session_end, "earliest_session_end"))
        latest = to_ms(latest_session_start, "latest_session_start")
        kb = self._key_serde.inner.serialize(key)
        if latest < 0:
            return iter(())
        lo = kb + session_bytes(0, earliest)  # end first: the least bytes ending at ``earliest``
        hi = kb + session_bytes(LATEST, LATEST)
        return islice(sessions_of(self._scan(lo, hi, kb), kb, latest), limit)

    def fetch_session(self, key: Any, start: int | datetime, end: int | datetime) -> Any:
        """The value of ``key``'s session ``[start, end]``, or None."""
        start_ms, end_ms = to_ms(start, "start"), to_ms(end, "end")
        for windowed, value in self.find_sessions(key, end_ms, start_ms):
            window = windowed.window
            if window.start_ms == start_ms and window.end_ms == end_ms:
                return value
        return None

    def all(self) -> Iterator[tuple[Windowed, Any]]:
        """Every session the store keeps, in the order of serialized keys, then session end."""
        return self._decoded(self._scan(None, None, None))

    def _decoded(self, entries: Iterable[RawEntry]) -> Iterator[tuple[Windowed, Any]]:
        kd, vd = self._key_serde.deserialize, self._value_serde.deserialize
        return ((key, value) for _, key, value in decode_entries(entries, kd, vd))

    def __repr__(self) -> str:
        return f"ReadOnlySessionStore({self.name!r})"
