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

from streamtable.processors.stream_aggregate import StreamAggregate
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
        for start in windows.window_starts(timestamp):
            if start + size > close_time:
                self._update(Windowed(key, Window(start, start + size)), value, timestamp)
            else:
                self._drop_late(start, timestamp, close_time)

    def _update(self, windowed: Windowed, value: Any, timestamp: int) -> None:
        found = self.store.get_with_timestamp(windowed)
        if found is None:
            # As Kafka Streams: the initial aggregate is what an uncached store forwards as old.
            old_agg = None if self.initializer is None else self.initializer()
            new_ts = timestamp
        else:
            old_agg, new_ts = found[0], max(timestamp, found[1])
        if self.initializer is None:
            agg = value if old_agg is None else self.adder(old_agg, value)
        else:
            agg = self.adder(windowed.key, value, old_agg)
        self._write(windowed, agg, old_agg, new_ts)

    def _write(self, windowed: Windowed, agg: Any, old_agg: Any, timestamp: int) -> None:
        """Store the window's new aggregate and emit the update."""
        self.materializer.put_and_forward(windowed, agg, old_agg, timestamp)

    def _drop_late(self, start: int, timestamp: int, close_time: int) -> None:
        self.dropped_records["late"] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "skipping a record for an expired window: topic=%s partition=%s offset=%s "
                "timestamp=%d window=[%d,%d) expiration=%d stream_time=%d",
                self.ctx.topic,
                self.ctx.partition,
                self.ctx.offset,
                timestamp,
                start,
                start + self.windows.size_ms,
                close_time,
                self.observed_stream_time,
            )
