"""Sliding-windowed count / reduce / aggregate: a table of results per (key, sliding window).

As Kafka Streams' ``KStreamSlidingWindowAggregate`` (4.x, over a store that iterates
backwards, as its RocksDB and in-memory window stores do). A window ``[start, start + diff]``
(both ends inclusive; the store keeps its start) exists for each distinct set of a key's records
at most ``diff`` apart. A record at ``t``, with ``close time = stream time - grace`` (stream time:
the latest timestamp of this operator's records):

- is dropped as late when even its right window would be closed: ``t + diff < close time``
  (``dropped_records["late"]``, once);
- updates the key's windows that hold it (read latest start first, from ``t - 2 * diff`` to
  ``t + 1``), forwarding each, latest start first;
- creates the right window of the previous record (the latest one before ``t``) when ``t``
  falls in it, its own left window ``[t - diff, t]`` (seeded with the aggregate of the window
  ending just before, when the previous record is within ``diff``), and its own right window
  ``[t + 1, t + 1 + diff]`` when a later record exists (a copy of the aggregate of the first
  window after ``t``, forwarded as is, with that window's timestamp).

A window whose end is before the close time is not updated, and the record counts as dropped
once for each such window. Records before ``diff`` (whose left window would start before 0)
all go into the window ``[0, diff]``, as Kafka Streams' ``processEarly``. A window's aggregate
has the latest timestamp of its records, and so has each forwarded update.

A record with a ``None`` key or value is dropped (``dropped_records["null_key"]``,
``["null_value"]``), as Kafka Streams' sliding-window aggregation does.

With ``EmitStrategy.on_window_close()`` (:class:`SlidingWindowAggregateFinal`) nothing is
forwarded while windows are updated; after each record that is neither late nor early (before
``diff``: Kafka Streams' ``processEarly`` returns before its emit check), the windows with data
whose end is before the close time and that were not emitted yet are forwarded once each,
earliest start first, then by key bytes, with their aggregate's timestamp. Unlike tumbling and
hopping windows (``window_emit_final``), the record's windows are written first, as Kafka
Streams does: its sliding-window emit-final store is never cached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from streamtable.processors._api import TaskContext
from streamtable.processors.window_aggregate import WindowedAggregation, drop_late
from streamtable.processors.window_emit_final import LastEmit, emit_store_name, windows_starting_in
from streamtable.state import ReadOnlyWindowStore
from streamtable.windowing import SlidingWindows, Window, Windowed

log = logging.getLogger("streamtable.processors.sliding_window_aggregate")

Found = tuple[Any, int]
"""A window's ``(aggregate, timestamp)``."""


class SlidingWindowAggregate(WindowedAggregation):
    """``aggregator(key, value, agg)`` from ``initializer()`` per sliding window (``count``
    and ``reduce`` are built on it: a reducer's initializer gives None)."""

    windows: SlidingWindows

    def __init__(
        self,
        name: str,
        windows: SlidingWindows,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        store: str,
    ) -> None:
        super().__init__(name, windows, initializer, aggregator, store)
        self._record_ts = -1  # the timestamp of the record being processed

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.view = ReadOnlyWindowStore.over(self.store)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if self.dropped_null(key, value):
            return
        diff = self.windows.time_difference_ms
        self.observed_stream_time = max(self.observed_stream_time, timestamp)
        self._record_ts = timestamp
        close_time = self.observed_stream_time - self.windows.grace_ms
        if timestamp + diff < close_time:
            self._drop_late(timestamp, timestamp + diff, timestamp, close_time)
            return
        if timestamp < diff:
            self._process_early(key, value, timestamp, close_time)
            return
        self._process(key, value, timestamp, close_time)
        self._after_record(close_time)

    def _after_record(self, close_time: int) -> None:
        """After a record that was neither late nor early (the emit-final check)."""

    # -- the store -------------------------------------------------------------------------
    def _windowed(self, key: Any, start: int) -> Windowed:
        return Windowed(key, Window(start, start + self.windows.time_difference_ms))

    def _windows(self, key: Any, first: int, last: int) -> list[tuple[int, Found]]:
        """``key``'s windows starting in ``[first, last]``, earliest first."""
        get = self.store.get_with_timestamp
        found = []
        for start, _ in self.view.fetch(key, first, last):
            entry = get(self._windowed(key, start))
            if entry is not None:
                found.append((start, entry))
        return found

    def _update(self, key: Any, value: Any, start: int, found: Found, close_time: int) -> None:
        """Add the record to the window at ``start`` holding ``found`` (``(initializer(), t)``
        for a new one), unless the window has closed."""
        end = start + self.windows.time_difference_ms
        timestamp = self._record_ts
        if end < close_time:
            self._drop_late(start, end, timestamp, close_time)
            return
        old_agg, old_ts = found
        agg = self.aggregator(key, value, old_agg)
        new_ts = timestamp if old_agg is None else max(timestamp, old_ts)
        self._write(self._windowed(key, start), agg, old_agg, new_ts)

    def _write(self, windowed: Windowed, agg: Any, old_agg: Any, timestamp: int) -> None:
        """Store the window's new aggregate and emit the update."""
        self.materializer.put_and_forward(windowed, agg, old_agg, timestamp)

    def _create_right_window(self, key: Any, timestamp: int, right: Found) -> None:
        """The record's right window, a copy of ``right`` (the first window after it)."""
        self._write(self._windowed(key, timestamp + 1), right[0], None, right[1])

    # -- a record --------------------------------------------------------------------------
    def _process(self, key: Any, value: Any, t: int, close_time: int) -> None:
        """Kafka Streams' ``processReverse``: the key's windows from the latest start down."""
        diff = self.windows.time_difference_ms
        starts: set[int] = set()
        left: Found | None = None
        right: Found | None = None
        left_created = right_created = False
        previous: int | None = None  # the timestamp of the latest record before t
        for start, found in reversed(self._windows(key, max(0, t - 2 * diff), t + 1)):
            starts.add(start)
            end = start + diff
            if start == t + 1:
                right_created = True
            elif end > t:
                right = found if right is None else right
                self._update(key, value, start, found, close_time)
            elif end == t:
                left_created = True
                self._update(key, value, start, found, close_time)
                if found[1] >= t:
                    return  # every window this record needs exists
                previous = found[1]
            else:
                left, previous = found, found[1]
                break
        if previous is not None and previous + 1 not in starts and previous + 1 + diff >= t:
            self._update(key, value, previous + 1, (self.initializer(), t), close_time)
        if not left_created:
            if left is not None and previous is not None and t - diff <= previous:
                base = (left[0], t)  # the previous record is in the left window too
            else:
                base = (self.initializer(), t)
            self._update(key, value, t - diff, base, close_time)
        if not right_created and right is not None and right[1] > t:
            self._create_right_window(key, t, right)

    def _process_early(self, key: Any, value: Any, t: int, close_time: int) -> None:
        """Kafka Streams' ``processEarly``: a record before ``diff`` goes into ``[0, diff]``."""
        starts: set[int] = set()
        combined: Found | None = None
        right: Found | None = None
        right_created = False
        previous: int | None = None
        for start, found in self._windows(key, 0, t + 1):
            starts.add(start)
            if start == 0:
                combined = found
                previous = found[1] if found[1] < t else None
            elif start <= t:
                right = found
                self._update(key, value, start, found, close_time)
            else:
                right_created = True
        if right is None and combined is not None and combined[1] > t:
            right = combined
        if not right_created and right is not None and right[1] > t:
            self._create_right_window(key, t, right)
        if previous is not None and previous + 1 not in starts:
            self._update(key, value, previous + 1, (self.initializer(), t), close_time)
        self._update(key, value, 0, combined or (self.initializer(), t), close_time)

    def _drop_late(self, start: int, end: int, timestamp: int, close_time: int) -> None:
        drop_late(self, log, "window", (start, end, "]"), timestamp, close_time)


class SlidingWindowAggregateFinal(SlidingWindowAggregate):
    """:class:`SlidingWindowAggregate` that forwards each window once, when it closes; see the
    module docstring."""

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.last_emit = LastEmit(ctx.store(emit_store_name(self.store_name)))

    def _write(self, windowed: Windowed, agg: Any, old_agg: Any, timestamp: int) -> None:
        self.store.put(windowed, agg, timestamp)  # emitted when the window closes

    def _after_record(self, close_time: int) -> None:
        last = self.last_emit.close_time()
        if last != -1 and last >= close_time:
            return
        diff = self.windows.time_difference_ms
        upper = close_time - diff - 1  # the latest start of a closed window (end inclusive)
        if upper < 0:
            return
        lower = 0 if last == -1 else max(0, last - diff)
        for windowed, agg, ts in windows_starting_in(self.store, lower, upper):
            self.forward(windowed, (agg, None), ts)
        self.last_emit.save(close_time)

    def on_delivered(self) -> None:
        self.last_emit.log()
