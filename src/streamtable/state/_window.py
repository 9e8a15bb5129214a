"""The engine layer of window stores: windows kept in time segments and expired by retention.

A window store's keys are serialized :class:`~streamtable.Windowed` keys, ``key bytes +
8-byte big-endian window start`` (:class:`~streamtable.serde.TimeWindowedSerde`): the layers
above (changelogging, serde, record cache, metered) are the key-value ones, and the changelog
holds exactly those keys. This layer sits between them and the engine and keeps each window
under its time segment, ``segment id (8 bytes) + windowed key``, as Kafka Streams'
``RocksDBSegmentedBytesStore`` does with one RocksDB per segment.

Why segments as key prefixes in one engine: expiry is then a range delete over the oldest
prefixes, each expired entry deleted once, and a scan for one key reads one contiguous range per
live segment (two or three: segments span ``max(retention / 2, 60 s)``, as in Kafka Streams).
Ordering the engine by key first instead would make expiry a scan of the whole store; a second,
time-ordered index would double every write. rocksdict gives one ``Rdict`` per store, so
prefixes are simpler than a database per segment.

A session store uses the same layer with its keys' session end as their time (``time_of``:
:func:`~streamtable.serde._windowed.session_end_of`), as Kafka Streams segments session
stores by session end: a session expires once it ended ``retention`` before stream time.

Stream time here is the store's own, as in Kafka Streams: the latest window start written
(restores included). A window whose start is not after ``stream time - retention`` is expired:
reads never return it (exactly, as Kafka Streams' ``getActualFrom``), writes to a segment wholly
expired are dropped (and counted in ``expired_writes``), and such segments are deleted when
stream time leaves them behind. The store's stream time is kept in the engine at each flush and
close (under a key no segment uses), so a store reopened from disk hides what expired before,
and a restore cannot bring an expired window back: a restore's records advance stream time
first, batch by batch, then only the live ones are written.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

from streamtable.serde._windowed import window_start_of
from streamtable.state._bytes import TIMESTAMP_SIZE, BytesStore, Write
from streamtable.state._layers import layer_of

MIN_SEGMENT_INTERVAL_MS = 60_000
"""Kafka Streams' smallest segment interval for window stores."""

_ID = struct.Struct(">q")
_STREAM_TIME_KEY = b"\xff" * _ID.size + b"stream-time"
"""Where the store's stream time is kept: after every segment (segment ids are >= 0, so their
first byte is below 0x80)."""


def segment_interval_ms(retention_ms: int) -> int:
    """Kafka Streams' default: half the retention, at least a minute."""
    return max(retention_ms // 2, MIN_SEGMENT_INTERVAL_MS)


class SegmentedWindowBytesStore:
    """A :class:`~streamtable.state.BytesStore` of windowed keys over ``engine``; see the module
    docstring. Reads return windowed keys (without the segment prefix), in key-bytes order.
    ``time_of`` reads a key's time (window start; a session store's session end)."""

    def __init__(
        self,
        engine: BytesStore,
        retention_ms: int,
        time_of: Callable[[bytes], int] = window_start_of,
    ) -> None:
        if retention_ms <= 0:
            raise ValueError(f"retention_ms must be > 0 (got {retention_ms})")
        self.engine = engine
        self.time_of = time_of
        self.retention_ms = retention_ms
        self.segment_interval_ms = segment_interval_ms(retention_ms)
        stored = engine.get(_STREAM_TIME_KEY)
        self._time_stored = stored is not None
        self.stream_time: int = -1 if stored is None else _ID.unpack_from(stored, TIMESTAMP_SIZE)[0]
        self._saved_time = self.stream_time
        self._cleaned_below = 0  # segments below this id are gone from the engine
        self._closed = False
        self.expired_writes = 0

    # -- time ------------------------------------------------------------------------------
    def _segment(self, start_ms: int) -> int:
        return start_ms // self.segment_interval_ms

    def _first_live_segment(self) -> int:
        return self._segment(max(0, self.stream_time - self.retention_ms))

    def live_from_ms(self) -> int:
        """The earliest window start (session end) that is not expired."""
        return max(0, self.stream_time - self.retention_ms + 1)

    # -- reads -----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        start = self.time_of(key)
        if start < self.live_from_ms():
            return None
        return self.engine.get(_ID.pack(self._segment(start)) + key)

    def get_in_live_segment(self, key: bytes) -> bytes | None:
        """The entry of ``key`` if its segment is not deleted, without :meth:`get`'s exact
        expiry check (what :meth:`entries_timed_in` returns, one key at a time)."""
        segment = self._segment(self.time_of(key))
        if self.stream_time < 0 or segment < self._first_live_segment():
            return None
        return self.engine.get(_ID.pack(segment) + key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        get = self.get
        return [get(key) for key in keys]

    def range(self, lo: bytes | None, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Live entries with ``lo <= key <= hi`` (windowed-key bytes; None: open)."""
        if self.stream_time < 0:
            return iter(())
        live_from = self.live_from_ms()
        time_of = self.time_of
        parts = [
            self._segment_range(segment, lo, hi, live_from, time_of)
            for segment in range(self._first_live_segment(), self._segment(self.stream_time) + 1)
        ]
        if len(parts) == 1:
            return parts[0]
        return heapq.merge(*parts, key=itemgetter(0))

    def _segment_range(
        self,
        segment: int,
        lo: bytes | None,
        hi: bytes | None,
        live_from: int,
        time_of: Callable[[bytes], int],
    ) -> Iterator[tuple[bytes, bytes]]:
        prefix = _ID.pack(segment)
        upper = prefix + hi if hi is not None else _ID.pack(segment + 1)
        for key, value in self.engine.range(prefix + (lo or b""), upper):
            windowed = key[_ID.size :]
            if time_of(windowed) >= live_from:
                yield windowed, value

    def entries_timed_in(self, first: int, last: int) -> list[tuple[bytes, bytes]]:
        """The entries whose time (window start; session end) is in ``[first, last]`` in the
        segments not yet deleted, without the exact expiry check of :meth:`range`: as Kafka
        Streams' time-ordered session store's ``fetchSessions(earliest end, latest end)``,
        which emit-final reads (``streamtable.processors.session_emit_final``)."""
        if self.stream_time < 0 or last < first:
            return []
        time_of, found = self.time_of, []
        lowest = max(self._segment(max(0, first)), self._first_live_segment())
        highest = self._segment(min(last, self.stream_time))  # no later segment holds any
        for segment in range(lowest, highest + 1):
            prefix = _ID.pack(segment)
            for key, value in self.engine.range(prefix, _ID.pack(segment + 1)):
                windowed = key[_ID.size :]
                if first <= time_of(windowed) <= last:
                    found.append((windowed, value))
        return found

    def approximate_num_entries(self) -> int:
        return max(0, self.engine.approximate_num_entries() - int(self._time_stored))

    # -- writes ----------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes | None, timestamp: int) -> None:
        self.write_batch([(key, value, timestamp)])

    def write_batch(self, items: Iterable[Write]) -> None:
        """Stream time moves to the latest time (window start) of the batch first; then the writes
        to live segments go to the engine in one batch, and expired segments are deleted."""
        time_of = self.time_of
        writes = [(key, value, ts, time_of(key)) for key, value, ts in items]
        if not writes:
            return
        self.stream_time = max(self.stream_time, max(w[3] for w in writes))
        first_live = self._first_live_segment()
        pack, interval = _ID.pack, self.segment_interval_ms  # _segment(start), inlined
        live = [
            (pack(start // interval) + key, value, ts)
            for key, value, ts, start in writes
            if start // interval >= first_live
        ]
        self.expired_writes += len(writes) - len(live)
        self.engine.write_batch(live)
        if first_live > self._cleaned_below:
            self._delete_segments_below(first_live)

    def _delete_segments_below(self, segment: int) -> None:
        # Keys of earlier segments all sort before the bare prefix of this one.
        doomed = [key for key, _ in self.engine.range(None, _ID.pack(segment))]
        self.engine.write_batch([(key, None, 0) for key in doomed])
        self._cleaned_below = segment

    def _save_stream_time(self) -> None:
        if self.stream_time != self._saved_time:
            self.engine.put(_STREAM_TIME_KEY, _ID.pack(self.stream_time), 0)
            self._saved_time = self.stream_time
            self._time_stored = True

    def flush(self) -> None:
        """Keep the stream time with the data, then flush the engine (before a checkpoint)."""
        self._save_stream_time()
        self.engine.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._save_stream_time()
            self.engine.close()


def segments_of(store: Any) -> SegmentedWindowBytesStore:
    """The time-segment layer of a window or session store's stack (from its top layer)."""
    layer = layer_of(store, SegmentedWindowBytesStore)
    if layer is None:
        raise TypeError(f"store {getattr(store, 'name', store)!r} is not a window or session store")
    return layer
