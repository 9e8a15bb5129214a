"""Windowed stream-stream joins (inner, left, outer), as Kafka Streams 4.x's
``KStreamJoinWindow`` and ``KStreamKStreamJoin{Left,Right}Side``.

Per side, a :class:`JoinWindowRecorder` forwards each record and then keeps it in the side's
window store (key, timestamp; duplicates kept in arrival order); a :class:`StreamJoinSide`
then joins it with the other side's records in ``[t - before, t + after]`` of that side's view
(the right side sees the windows mirrored), emitting each pair at once with the later of the two
timestamps.

Left and outer joins do not emit a record that found no partner at once (it may yet find one):
it waits in the shared store of unjoined records, keyed ``(timestamp, side, key)``, until its
window closes, i.e. until the stream time of the join (the latest timestamp seen on either side)
passes ``t + after + grace`` (``t + before + grace`` for the right side); a later partner
removes it. Kafka Streams' KIP-633 / KAFKA-10847 "spurious results fix". The closed ones are
emitted, oldest first, whenever a record arrives at the current stream time. A record whose
window has already closed when it arrives joins what the window stores still hold and, without
a partner, is emitted with ``None`` at once. Its timestamp still goes into its window store
unless its whole store segment has expired, which Kafka Streams' segmented stores drop and
count as a dropped record: so do we (``dropped_records["late"]``).

Records with a ``None`` key or value do not join and are counted
(``dropped_records["null_key"]`` / ``["null_value"]``), except that a record with a ``None``
key and a value on an outer side (the left side of a left join, both sides of an outer join) is
emitted at once with ``None`` for the other side, as in Kafka Streams.

Deliberate difference: Kafka Streams scans the shared store at most once per second of wall
clock time (the internal config ``__emit.interval.ms.kstreams.outer.join.spurious.results.fix__``),
which can delay left/outer results until a later record; we scan whenever a record could have
closed a window. Results and their order are otherwise the same (differential-tested with the
interval at 0).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from streamtable.processors._api import Node, TaskContext
from streamtable.state import ReadOnlyWindowStore, SerdeStore
from streamtable.windowing import JoinWindows, Window, Windowed

Joiner = Callable[[Any, Any], Any]


@dataclass
class TimeTracker:
    """Shared by the two sides of one join in one task: the join's stream time and the least
    timestamp that may be waiting in the unjoined store (to skip scans that cannot emit)."""

    stream_time: int = -1
    min_time: int = 2**63 - 1


class TimeTrackers:
    """One :class:`TimeTracker` per task (the task context), shared by both sides of a join;
    held only while the task lives."""

    def __init__(self) -> None:
        self._by_task: weakref.WeakKeyDictionary[Any, TimeTracker] = weakref.WeakKeyDictionary()

    def of(self, ctx: TaskContext) -> TimeTracker:
        tracker = self._by_task.get(ctx)
        if tracker is None:
            tracker = self._by_task[ctx] = TimeTracker()
        return tracker


def _long(value: int) -> int:
    """``value`` wrapped to a signed 64-bit integer, as Java computes it: with ``min_time``
    unknown (a new task over restored stores), Kafka Streams' "may anything have closed?" sum
    overflows and it scans the store; so do we."""
    return (value + 2**63) % 2**64 - 2**63


def _segments(store: Any) -> Any:
    """The time-segmented layer under a window store's stack (it counts expired writes)."""
    while not isinstance(store, SerdeStore):
        store = store.inner
    return store.engine


class JoinWindowRecorder(Node):
    """Forwards each record, then keeps it in the side's window store (Kafka Streams'
    ``KStreamJoinWindow``); a write to an expired segment is dropped and counted."""

    def __init__(self, name: str, store: str, window_size_ms: int) -> None:
        super().__init__(name)
        self.store_name = store
        self.window_size_ms = window_size_ms
        self.dropped_records: Counter[str] = Counter()

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.segments = _segments(self.store)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        self.forward(key, value, timestamp)
        if key is None or value is None:
            return  # never joins; Kafka Streams' window store skips a null value too
        windowed = Windowed(key, Window(timestamp, timestamp + self.window_size_ms))
        kept = self.store.get(windowed)
        expired_before = self.segments.expired_writes
        self.store.put(windowed, [value] if kept is None else [*kept, value], timestamp)
        if self.segments.expired_writes != expired_before:
            self.dropped_records["late"] += 1


class StreamJoinSide(Node):
    """One side of the join. ``joiner(left_value, right_value)`` is the user's, whichever side
    this is; ``outer``: this side's records are emitted without a partner too."""

    def __init__(
        self,
        name: str,
        *,
        is_left: bool,
        windows: JoinWindows,
        joiner: Joiner,
        outer: bool,
        other_store: str,
        unjoined_store: str | None,
        trackers: TimeTrackers,
    ) -> None:
        super().__init__(name)
        self.is_left = is_left
        self.windows = windows
        self.joiner = joiner
        self.outer = outer
        self.other_store_name = other_store
        self.unjoined_store_name = unjoined_store
        self.trackers = trackers
        self.before = windows.before_ms if is_left else windows.after_ms
        self.after = windows.after_ms if is_left else windows.before_ms
        self.dropped_records: Counter[str] = Counter()

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.other = ReadOnlyWindowStore.over(ctx.store(self.other_store_name))
        name = self.unjoined_store_name
        self.unjoined = None if name is None else ctx.store(name)
        self.tracker = self.trackers.of(ctx)

    def _join(self, this: Any, other: Any) -> Any:
        return self.joiner(this, other) if self.is_left else self.joiner(other, this)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        tracker = self.tracker
        if timestamp > tracker.stream_time:
            tracker.stream_time = timestamp
        if key is None or value is None:
            if self.outer and value is not None:
                self.forward(key, self._join(value, None), timestamp)
            else:
                self.dropped_records["null_key" if key is None else "null_value"] += 1
            return
        if timestamp == tracker.stream_time and self.unjoined is not None:
            self._emit_closed()
        time_from = max(0, timestamp - self.before)
        time_to = max(0, timestamp + self.after)
        found = False
        for other_ts, others in list(self.other.fetch(key, time_from, time_to)):
            found = True
            if self.unjoined is not None:
                # the other side's records at other_ts have a partner now
                partnered = (other_ts, not self.is_left, key)
                if self.unjoined.get(partnered) is not None:
                    self.unjoined.delete(partnered)
            joined_ts = max(timestamp, other_ts)
            for other in others:
                self.forward(key, self._join(value, other), joined_ts)
        if found or not self.outer:
            return
        if self.unjoined is None or time_to < tracker.stream_time:
            self.forward(key, self._join(value, None), timestamp)
        else:
            tracker.min_time = min(tracker.min_time, timestamp)
            waiting_key = (timestamp, self.is_left, key)
            waiting = self.unjoined.get(waiting_key) or []
            self.unjoined.put(waiting_key, [*waiting, (self.is_left, value)], timestamp)

    def _emit_closed(self) -> None:
        """Emit the unjoined records whose windows have closed, oldest first, and forget them.
        Mirrors Kafka Streams' scan, including how it leaves ``min_time``."""
        tracker = self.tracker
        grace = self.windows.grace_ms
        if _long(tracker.min_time + self.after + grace) >= tracker.stream_time:
            return  # nothing waiting can have closed yet
        tracker.min_time = 2**63 - 1
        emitted: list[Any] = []
        for waiting_key, entry in self._waiting():
            timestamp, _, key = waiting_key
            tracker.min_time = timestamp
            if entry is None:
                break  # both sides' oldest waiting windows are still open
            emitted.append(waiting_key)
            for entry_is_left, value in entry:
                left, right = (value, None) if entry_is_left else (None, value)
                self.forward(key, self.joiner(left, right), timestamp)
        assert self.unjoined is not None
        for waiting_key in emitted:
            self.unjoined.delete(waiting_key)

    def _waiting(self) -> Iterator[tuple[Any, list[tuple[bool, Any]] | None]]:
        """The unjoined entries whose windows have closed, in store order, skipping a side once
        one of its windows is found open; ``(key, None)`` marks the stop (both sides open)."""
        assert self.unjoined is not None
        tracker = self.tracker
        grace = self.windows.grace_ms
        windows = self.windows
        open_sides: set[bool] = set()
        for waiting_key, entry in self.unjoined.all():
            timestamp, is_left, _ = waiting_key
            if len(open_sides) == 2:
                yield waiting_key, None
                return
            # a left record looks forward ``after``, a right one ``before``
            look = windows.after_ms if is_left else windows.before_ms
            if timestamp + look + grace >= tracker.stream_time:
                open_sides.add(is_left)
                tracker.min_time = timestamp
                if len(open_sides) == 2 and len(entry) > 1:
                    yield waiting_key, None  # Kafka Streams stops at this key's next value
                    return
                continue
            yield waiting_key, entry


class PassThrough(Node):
    """The join's merge node: both sides' results flow on as they come."""

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        self.forward(key, value, timestamp)
