"""Session-windowed count / reduce / aggregate: a table of results per (key, session).

As Kafka Streams' ``KStreamSessionWindowAggregate`` with the default emit strategy (on every
update). A record at ``t`` looks up its key's sessions that end at or after ``t - gap`` and
start at or before ``t + gap``; its session is ``[t, t]`` merged with all of them, and its
aggregate ``initializer()`` merged (``merger(key, agg, session agg)``) with theirs, earliest
end first, then the record added (``aggregator(key, value, agg)``). If the merged session ends
before ``stream time - grace - gap`` the record is late: dropped, counted in
``dropped_records["late"]`` and logged at debug level. Otherwise, when the merged session is
not just ``[t, t]``, each session merged away is deleted and forwarded as a delete
(``(None, old value)``, at the session's end); then the merged session is written and
forwarded (``(agg, None)``: Kafka Streams sends no old value for it, even when it replaces a
session with the same bounds), with the session's end as the record timestamp. Stream time
is this operator's own: the latest timestamp of its records.

A record with a ``None`` key or value is dropped too (``dropped_records["null_key"]``,
``["null_value"]``), as the time-windowed aggregations do (Kafka Streams drops only null
keys and hands null values to the aggregator; see ``window_aggregate``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from streamtable.processors._api import TaskContext
from streamtable.processors.window_aggregate import WindowedAggregation, drop_late
from streamtable.state import ReadOnlySessionStore
from streamtable.windowing import SessionWindow, SessionWindows, Windowed

log = logging.getLogger("streamtable.processors.session_aggregate")


class SessionWindowAggregate(WindowedAggregation):
    """``aggregator(key, value, agg)`` and ``merger(key, agg1, agg2)`` from ``initializer()``
    per session (``reduce`` and ``count`` are built on it by the DSL)."""

    windows: SessionWindows

    def __init__(
        self,
        name: str,
        windows: SessionWindows,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        merger: Callable[[Any, Any, Any], Any],
        store: str,
    ) -> None:
        super().__init__(name, windows, initializer, aggregator, store)
        self.merger = merger

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.sessions = ReadOnlySessionStore.over(self.store)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if self.dropped_null(key, value):
            return
        gap = self.windows.gap_ms
        if timestamp > self.observed_stream_time:
            self.observed_stream_time = timestamp
        close_time = self.observed_stream_time - self.windows.grace_ms - gap
        new_window = SessionWindow(timestamp, timestamp)
        window = new_window
        agg = self.initializer()
        merged = list(self.sessions.find_sessions(key, timestamp - gap, timestamp + gap))
        for windowed, session_agg in merged:
            agg = self.merger(key, agg, session_agg)
            window = window.merged(windowed.window)
        if window.end_ms < close_time:
            self._drop_late(window, timestamp, close_time)
            return
        if window != new_window:
            for windowed, session_agg in merged:
                self._remove(windowed, session_agg)
        self._write(Windowed(key, window), self.aggregator(key, value, agg))

    def _remove(self, windowed: Windowed, agg: Any) -> None:
        """Delete a session merged away, and emit the delete."""
        self.materializer.put_and_forward(windowed, None, agg, windowed.window.end_ms)

    def _write(self, windowed: Windowed, agg: Any) -> None:
        """Store a session's aggregate, and emit it."""
        self.materializer.put_and_forward(windowed, agg, None, windowed.window.end_ms)

    def _drop_late(self, window: SessionWindow, timestamp: int, close_time: int) -> None:
        bounds = (window.start_ms, window.end_ms, "]")
        drop_late(self, log, "session", bounds, timestamp, close_time)
