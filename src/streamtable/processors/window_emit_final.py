"""Time-windowed aggregations that emit final results: ``EmitStrategy.on_window_close()``.

As Kafka Streams' ``KStreamWindowAggregate`` with ``ON_WINDOW_CLOSE`` (KIP-825): each record
updates its open windows in the store (late ones are dropped and counted as with the default
strategy) and nothing is forwarded then; when the close time (stream time - grace) has moved
past the end of windows not emitted yet, those windows are read from the store and forwarded
once each, earliest window start first, then by key bytes, with their aggregate's timestamp
(the latest record of the window). Only windows with data are emitted.

Every closed window is emitted, even when the record that closes it also moves the store's
stream time past the window's retention: closed windows are emitted before the record's own
windows are written. Kafka Streams writes first; its record cache (on by default) still returns
such a window, so it emits it too, but with the cache off (``statestore.cache.max.bytes=0``) or
once the cache has evicted it, its store has expired the window and it is never emitted
(``tests/differential/test_emit_final_against_kafka_streams.py`` shows both).

The close time up to which windows were emitted is kept in a changelogged key-value store
(``<store>-emit-final``; Kafka Streams keeps it in its commit metadata), written at the commit
once the emitted windows are acknowledged (``on_delivered``), never before: a restart never
skips a window. Under exactly_once_v2 it is in the transaction with them, so a window is not
emitted again either; under at_least_once a crash may emit again the windows of the last commit
interval, as a replay counts again. (Written at once, it reached its changelog while the
windows were lost in a broker outage, and 155 windows were never emitted: chaos seed 612.)

Kafka Streams checks for closed windows at most once per second of wall-clock time (its internal
``__emit.interval.ms.kstreams.windowed.aggregation__``); this checks after every record, so the
same windows are emitted, possibly a record earlier.
"""

from __future__ import annotations

from typing import Any

from streamtable.processors._api import TaskContext
from streamtable.processors.window_aggregate import TimeWindowAggregate
from streamtable.serde._windowed import window_start_of
from streamtable.state._bytes import TIMESTAMP_SIZE, stored_timestamp
from streamtable.state._window import segments_of
from streamtable.windowing import Windowed

_LAST_EMIT = "last-emit-close-time"


def emit_store_name(store: str) -> str:
    """The key-value store where the aggregation of window store ``store`` keeps the close
    time up to which it has emitted."""
    return f"{store}-emit-final"


class TimeWindowAggregateFinal(TimeWindowAggregate):
    """:class:`TimeWindowAggregate` that forwards each window once, when it closes."""

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self._batched = False  # every write through _write: nothing forwarded per update
        self.last_emit = LastEmit(ctx.store(emit_store_name(self.store_name)))

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if key is None or value is None:
            super().process(key, value, timestamp)
            return
        # Emitted before the record's windows are written: a jump in stream time then cannot
        # expire a closed window from the store before it is emitted (see the module docstring).
        self._emit_closed(max(self.observed_stream_time, timestamp) - self.windows.grace_ms)
        super().process(key, value, timestamp)

    def _write(self, key: Any, start: int, agg: Any, old_agg: Any, timestamp: int) -> None:
        self.store.put(self._windowed(key, start), agg, timestamp)  # emitted when it closes

    def _emit_closed(self, close_time: int) -> None:
        last = self.last_emit.close_time()
        if last != -1 and last >= close_time:
            return
        size = self.windows.size_ms
        upper = close_time - size  # the latest start of a closed window
        if upper < 0:
            return
        lower = 0 if last == -1 else max(0, last - size) + 1
        if last != -1:
            starts = self.windows.window_starts
            if list(starts(upper)) == list(starts(lower - 1)):
                return  # no window closed since the last emit
        for windowed, agg, ts in windows_starting_in(self.store, lower, upper):
            self.forward(windowed, (agg, None), ts)
        self.last_emit.save(close_time)

    def on_delivered(self) -> None:
        self.last_emit.log()


class LastEmit:
    """The close time up to which an emit-final aggregation has emitted (-1: never), kept in
    its ``<store>-emit-final`` key-value store once what it emitted is acknowledged: its
    owner's ``on_delivered`` calls :meth:`log` (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._time: int | None = None
        self._unlogged = False  # saved past what the store holds

    def close_time(self) -> int:
        if self._time is None:
            # Read at the first record, not in init: the runtime restores stores after that.
            found = self.store.get(_LAST_EMIT)
            self._time = -1 if found is None else found
        return self._time

    def save(self, close_time: int) -> None:
        self._time = close_time
        self._unlogged = True

    def log(self) -> None:
        """Write the close time saved since the last call to the store (and its changelog)."""
        if self._unlogged and self._time is not None:
            self.store.put(_LAST_EMIT, self._time, self._time)
            self._unlogged = False


def windows_starting_in(store: Any, lower: int, upper: int) -> list[tuple[Windowed, Any, int]]:
    """The live windows of window store ``store`` (uncached) starting in ``[lower, upper]``,
    ``(windowed key, aggregate, timestamp)``, earliest start first, then by key bytes (the
    order of Kafka Streams' time-ordered window store)."""
    segments = segments_of(store)
    # Only the segments holding such starts are read, not the whole store; the live ones
    # exactly (a store's reads hide windows past its retention, see SegmentedWindowBytesStore).
    live = segments.entries_timed_in(max(lower, segments.live_from_ms()), upper)
    found = [(window_start_of(kb), kb, payload) for kb, payload in live]
    found.sort(key=lambda entry: (entry[0], entry[1][:-8]))
    decode_key, decode_value = store.key_serde.deserialize, store.value_serde.deserialize
    return [
        (decode_key(kb), decode_value(payload[TIMESTAMP_SIZE:]), stored_timestamp(payload))
        for _, kb, payload in found
    ]
