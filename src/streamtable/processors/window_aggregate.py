"""Time-windowed count / reduce / aggregate: a table of results per (key, window).

As Kafka Streams' ``KStreamWindowAggregate`` with the default emit strategy (on every window
update): each record updates every window holding its timestamp, unless that window has closed;
a window closes when its end plus the grace period is not after the stream time this operator
has seen (the latest timestamp of its records). A record is dropped for each closed window
separately (with hopping windows it may still count in the others): counted in
``dropped_records["late"]`` and logged at debug level.

A record with a ``None`` key or value is dropped too (``dropped_records["null_key"]``,
``["null_value"]``), as Kafka Streams' ``TimeWindowedKStream`` documents. (Its code, 4.0,
drops only null keys and hands null values to the aggregator.)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from streamtable.processors._api import Node, TableMaterializer, TaskContext
from streamtable.processors.stream_aggregate import StreamAggregate
from streamtable.state import WindowCachingStore, record_cache
from streamtable.windowing import TimeWindows, Window, Windowed

log = logging.getLogger("streamtable.processors.window_aggregate")


class TimeWindowAggregate(StreamAggregate):
    """``aggregate``: ``adder(key, value, agg)`` from ``initializer()``; ``reduce`` when
    ``initializer`` is None: ``adder(agg, value)``, a window's first value taken as is."""

    def __init__(
        self,
        name: str,
        windows: TimeWindows,
        initializer: Callable[[], Any] | None,
        adder: Callable[..., Any],
        store: str,
    ) -> None:
        super().__init__(name, initializer, adder, store)
        self.windows = windows
        self.observed_stream_time = -1
        self.dropped_records: Counter[str] = Counter()

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if key is None or value is None:
            self.dropped_records["null_key" if key is None else "null_value"] += 1
            return
        windows = self.windows
        if timestamp > self.observed_stream_time:
            self.observed_stream_time = timestamp
        close_time = self.observed_stream_time - windows.grace_ms
        size = windows.size_ms
        if not self._batched:
            for start in windows.window_starts(timestamp):
                if start + size > close_time:
                    self._update(key, start, value, timestamp)
                else:
                    self._drop_late(start, timestamp, close_time)
            return
        starts = []
        for start in windows.window_starts(timestamp):
            if start + size > close_time:
                starts.append(start)
            else:
                self._drop_late(start, timestamp, close_time)
        if starts:
            self._update_cached(key, starts, value, timestamp)

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        store = self.store
        # Emit-final's subclass writes every window through _write, so clears it.
        self._batched = False
        if isinstance(record_cache(store), WindowCachingStore):
            # A window's aggregate read and written by key and start, no Windowed built per
            # update, all the record's windows in one call (see WindowCachingStore); the cache
            # forwards the changes at flush.
            self._get: Callable[[Any, int], tuple[Any, int] | None] = (
                store.get_window_with_timestamp
            )
            self._batched = True
            self._get_windows: Callable[[Any, list[int]], list[tuple[Any, int] | None]] = (
                store.get_windows
            )
            self._put_windows: Callable[[Any, list[tuple[int, Any, int]]], None] = store.put_windows
        else:
            self._get = self._get_windowed

    def _windowed(self, key: Any, start: int) -> Windowed:
        return Windowed(key, Window(start, start + self.windows.size_ms))

    def _get_windowed(self, key: Any, start: int) -> tuple[Any, int] | None:
        found: tuple[Any, int] | None = self.store.get_with_timestamp(self._windowed(key, start))
        return found

    def _update(self, key: Any, start: int, value: Any, timestamp: int) -> None:
        found = self._get(key, start)
        if found is None:
            # As Kafka Streams: the initial aggregate is what an uncached store forwards as old.
            old_agg = None if self.initializer is None else self.initializer()
            new_ts = timestamp
        else:
            old_agg, new_ts = found[0], max(timestamp, found[1])
        if self.initializer is None:
            agg = value if old_agg is None else self.adder(old_agg, value)
        else:
            agg = self.adder(key, value, old_agg)
        self._write(key, start, agg, old_agg, new_ts)

    def _update_cached(self, key: Any, starts: list[int], value: Any, timestamp: int) -> None:
        """:meth:`_update` of each of ``key``'s windows at ``starts`` in a window cache: all
        read, then all written (the record counts in all of them or, if the aggregator fails,
        in none)."""
        initializer, adder = self.initializer, self.adder
        updates = []
        for start, found in zip(starts, self._get_windows(key, starts), strict=True):
            if found is None:
                old_agg = None if initializer is None else initializer()
                new_ts = timestamp
            else:
                old_agg, new_ts = found
                if timestamp > new_ts:
                    new_ts = timestamp
            if initializer is not None:
                agg = adder(key, value, old_agg)
            else:
                agg = value if old_agg is None else adder(old_agg, value)
            updates.append((start, agg, new_ts))
        self._put_windows(key, updates)

    def _write(self, key: Any, start: int, agg: Any, old_agg: Any, timestamp: int) -> None:
        """Store the new aggregate of ``key``'s window starting at ``start`` in an uncached
        store and emit the update."""
        windowed = self._windowed(key, start)
        self.materializer.put_and_forward(windowed, agg, old_agg, timestamp)

    def _drop_late(self, start: int, timestamp: int, close_time: int) -> None:
        end = start + self.windows.size_ms
        drop_late(self, log, "window", (start, end, ")"), timestamp, close_time)


class WindowedAggregation(Node):
    """What the session and sliding-window aggregations share: ``aggregator(key, value, agg)``
    from ``initializer()`` per window of ``windows``, in the window or session store
    ``store``; the stream time they have seen; the records they dropped."""

    def __init__(
        self,
        name: str,
        windows: Any,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        store: str,
    ) -> None:
        super().__init__(name)
        self.windows = windows
        self.initializer = initializer
        self.aggregator = aggregator
        self.store_name = store
        self.observed_stream_time = -1
        self.dropped_records: Counter[str] = Counter()

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def dropped_null(self, key: Any, value: Any) -> bool:
        """Whether the record has a None key or value: then it is dropped and counted."""
        if key is not None and value is not None:
            return False
        self.dropped_records["null_key" if key is None else "null_value"] += 1
        return True


def drop_late(
    node: Any,
    logger: logging.Logger,
    what: str,
    bounds: tuple[int, int, str],
    timestamp: int,
    close_time: int,
) -> None:
    """Count a record ``node`` (a windowed aggregation) drops for a closed ``what`` (window or
    session) in ``node.dropped_records["late"]``, and log it at debug level; ``bounds``: its
    start, end, and ``")"`` or ``"]"`` for an exclusive or inclusive end."""
    node.dropped_records["late"] += 1
    if logger.isEnabledFor(logging.DEBUG):
        ctx = node.ctx
        start, end, closer = bounds
        logger.debug(
            "skipping a record for an expired %s: topic=%s partition=%s offset=%s "
            "timestamp=%d %s=[%d,%d%s expiration=%d stream_time=%d",
            what,
            ctx.topic,
            ctx.partition,
            ctx.offset,
            timestamp,
            what,
            start,
            end,
            closer,
            close_time,
            node.observed_stream_time,
        )
