"""Session-windowed aggregations that emit final results: ``EmitStrategy.on_window_close()``.

As Kafka Streams' ``KStreamSessionWindowAggregate`` with ``ON_WINDOW_CLOSE``: each record merges
and updates its key's sessions in the store as with the default strategy (see
``session_aggregate``: late records are dropped and counted, sessions merged away deleted), and
nothing is forwarded then. When the close time (stream time - grace - gap) has moved past the
end of sessions not emitted yet (``end < close time``), after any record with a key and a
value, late ones included, those sessions are read from the store and forwarded once each,
``(aggregate, None)``, with the session's end as the timestamp, ordered by end, then start,
then key bytes. A session merged away before it closes is never emitted.

A record that is not late can still merge into a session already emitted (the session's end
plus the gap reaches the record, and the merged session ends at or after the close time): as
Kafka Streams does, the emitted session is deleted (nothing is forwarded) and the merged one is
emitted when it closes.

One deliberate difference: closed sessions are emitted after the sessions merged away are
deleted and before the record's own session is written. Kafka Streams writes first; that write
can move the store into a new time segment and drop the segment holding sessions that closed
with the same record, which it then never emits. Every closed session is emitted here, as the
time-windowed ``window_emit_final`` does for windows.
``tests/differential/test_sessions_against_kafka_streams.py`` shows the cases.

The close time up to which sessions were emitted is kept in ``<store>-emit-final``, written at
the commit once the emitted sessions are acknowledged (see
:class:`~streamtable.processors.window_emit_final.LastEmit`). Kafka Streams checks for
closed sessions at most once per second of wall-clock time by default; this checks after every
record (see ``window_emit_final``).
"""

from __future__ import annotations

import heapq
from typing import Any

from streamtable.processors._api import TaskContext
from streamtable.processors.session_aggregate import SessionWindowAggregate
from streamtable.processors.window_emit_final import LastEmit, emit_store_name
from streamtable.serde._windowed import SESSION_SUFFIX_SIZE, session_end_of, window_start_of
from streamtable.state import segments_of
from streamtable.state._bytes import TIMESTAMP_SIZE
from streamtable.state._session import LATEST
from streamtable.windowing import Windowed

Pending = tuple[int, int, bytes, bytes]
"""A session not emitted yet: ``(end, start, key bytes, session key bytes)``, its emit order."""


def _pending(kb: bytes) -> Pending:
    return session_end_of(kb), window_start_of(kb), kb[:-SESSION_SUFFIX_SIZE], kb


class SessionWindowAggregateFinal(SessionWindowAggregate):
    """:class:`SessionWindowAggregate` that forwards each session once, when it closes.

    The sessions not emitted yet are indexed in memory by end (a heap, and the set of those
    still in the store), read from the store at the first record (restored by then) and kept
    with every write and delete, so an emit reads only the sessions it emits."""

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.last_emit = LastEmit(ctx.store(emit_store_name(self.store_name)))
        self.segments = segments_of(self.store)
        self._serialize = self.store.key_serde.serialize
        self._heap: list[Pending] | None = None
        self._stored: set[bytes] = set()

    def _pending_sessions(self) -> list[Pending]:
        if self._heap is None:
            last = max(0, self.last_emit.close_time())
            found = [kb for kb, _ in self.segments.entries_timed_in(last, LATEST)]
            self._heap = [_pending(kb) for kb in found]
            heapq.heapify(self._heap)
            self._stored = set(found)
        return self._heap

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        super().process(key, value, timestamp)
        if key is not None and value is not None:
            self._emit_closed()  # a no-op when the record's write has emitted already

    def _remove(self, windowed: Windowed, agg: Any) -> None:
        self._pending_sessions()
        self._stored.discard(self._serialize(windowed))
        self.store.put(windowed, None, windowed.window.end_ms)

    def _write(self, windowed: Windowed, agg: Any) -> None:
        self._emit_closed()
        heap, kb = self._pending_sessions(), self._serialize(windowed)
        if kb not in self._stored:
            self._stored.add(kb)
            heapq.heappush(heap, _pending(kb))
        self.store.put(windowed, agg, windowed.window.end_ms)

    def _emit_closed(self) -> None:
        windows = self.windows
        close_time = self.observed_stream_time - windows.grace_ms - windows.gap_ms
        last = self.last_emit.close_time()
        if (last != -1 and last >= close_time) or close_time < 1:
            return
        heap, stored = self._pending_sessions(), self._stored
        decode_key = self.store.key_serde.deserialize
        decode_value = self.store.value_serde.deserialize
        while heap and heap[0][0] < close_time:
            kb = heapq.heappop(heap)[3]
            if kb not in stored:
                continue  # deleted (merged away), or pushed again when rewritten
            stored.discard(kb)
            payload = self.segments.get_in_live_segment(kb)
            if payload is not None:
                windowed = decode_key(kb)
                agg = decode_value(payload[TIMESTAMP_SIZE:])
                self.forward(windowed, (agg, None), windowed.window.end_ms)
        self.last_emit.save(close_time)

    def on_delivered(self) -> None:
        self.last_emit.log()
