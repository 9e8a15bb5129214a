"""``KTable.suppress``: a table's changes held back in a time-ordered buffer.

As Kafka Streams' ``KTableSuppressProcessor`` over its ``InMemoryTimeOrderedKeyValueChangeBuffer``:

- each change is buffered under its key, at a buffer time: the window's end
  (``until_window_closes``) or the change's timestamp (``until_time_limit``). A key already
  buffered keeps its first buffer time and its prior value (what downstream last saw); its
  latest change replaces the rest.
- after each change, entries whose buffer time is not after ``stream time - grace`` (the
  windows that closed) or ``stream time - time limit`` are emitted, earliest buffer time first,
  then by key bytes, with the timestamp of their latest change. Stream time is the largest
  timestamp of the changes this operator has seen. ``until_window_closes`` does not emit
  tombstones (a window's final result is never "no row").
- then, while the buffer is over its bounds: the oldest entries are emitted early
  (``emit_early``), or the change is taken back out and ``ProcessingError`` raised
  (``shut_down``).

The buffer lives in memory and in a key-value store (memory engine, logged unless the buffer
config says otherwise): each write goes through to its changelog, so a restarted or moved task
restores the buffer like any store and rebuilds its index at its first record or punctuation.
An emitted entry leaves the buffer at once, but its tombstone is logged at the commit, once the
emitted result is acknowledged (``on_delivered``): logged with the emission, it could reach the
changelog while the result was lost, and the restored buffer would never emit it.
Stored value: ``buffer time (8) | flags (1) | len prior (4) | len old (4) | prior | old | new``.

``close_idle_after`` (``until_window_closes`` only, beyond Kafka Streams): a wall-clock
punctuator closes, when stream time has not moved for that long, every window whose end +
grace is past on the wall clock; afterwards a change for such a window is dropped as late
(``dropped_records["late"]``). That wall-clock close time is kept in the store too (under the
empty key, which no windowed key uses), so it survives a restart.
"""

from __future__ import annotations

import dataclasses
import heapq
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamtable.errors import ProcessingError
from streamtable.processors._api import GetterSpec, Node, PunctuationType, TaskContext, with_steps
from streamtable.serde import Serde, bind
from streamtable.state import changelogging
from streamtable.state._bytes import TIMESTAMP_SIZE, stored_timestamp
from streamtable.suppression import Suppressed

_HEAD = struct.Struct(">qBii")
_ID = struct.Struct(">q")
_WALL_CLOSE_KEY = b""


@dataclass(slots=True)
class Buffered:
    """One buffered key: its buffer time, latest change (serialized) and prior value."""

    time: int
    timestamp: int
    key: Any
    prior: bytes | None
    old: bytes | None
    new: bytes | None

    def size(self, key_bytes: bytes) -> int:
        values = (self.prior, self.old, self.new)
        return 16 + len(key_bytes) + sum(len(v) for v in values if v is not None)

    def encode(self) -> bytes:
        prior, old, new = self.prior, self.old, self.new
        flags = (prior is not None) | (old is not None) << 1 | (new is not None) << 2
        pb, ob = prior or b"", old or b""
        return _HEAD.pack(self.time, flags, len(pb), len(ob)) + pb + ob + (new or b"")


def decode_buffered(key: Any, data: bytes, timestamp: int) -> Buffered:
    """A stored entry (its value bytes and timestamp) back into a :class:`Buffered`."""
    time, flags, plen, olen = _HEAD.unpack_from(data)
    at = _HEAD.size
    prior = data[at : at + plen] if flags & 1 else None
    old = data[at + plen : at + plen + olen] if flags & 2 else None
    new = data[at + plen + olen :] if flags & 4 else None
    return Buffered(time, timestamp, key, prior, old, new)


def bound_serdes(ctx: TaskContext, store: str, key: Serde[Any], value: Serde[Any]) -> Any:
    """The table's serdes as the buffer's changelog uses them."""
    topic = ctx.internal_topic(f"{store}-changelog")
    return bind(key, topic, True), bind(value, topic, False)


class TableSuppress(Node):
    """See the module docstring. ``grace_ms``: the windows' grace (``until_window_closes``)."""

    def __init__(
        self,
        name: str,
        suppressed: Suppressed,
        grace_ms: int | None,
        store: str,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
    ) -> None:
        super().__init__(name)
        self.suppressed = suppressed
        self.windowed = suppressed.until_window_close
        wait = grace_ms if suppressed.time_limit_ms is None else suppressed.time_limit_ms
        if wait is None:
            raise ValueError("until_window_closes needs the grace of the windows")
        self.wait_ms: int = wait
        self.store_name = store
        self._serdes = (key_serde, value_serde)
        idle = suppressed.close_idle_after_ms
        self.dropped_records = None if idle is None else Counter()
        self.stream_time = -1
        self.wall_closed_through = -1  # windows ending at or before it were closed by the clock
        self._entries: dict[bytes, Buffered] = {}
        self._heap: list[tuple[int, bytes]] = []
        self._bytes = 0
        self._loaded = False
        self._unlogged: dict[bytes, int] = {}  # emitted: tombstone to log (its timestamp)

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self._log = changelogging(self.store)
        self._keys, self._values = bound_serdes(ctx, self.store_name, *self._serdes)
        idle = self.suppressed.close_idle_after_ms
        if idle is not None:
            self._advanced_at = ctx.wall_clock_ms()
            ctx.schedule(max(1, min(idle, 1000)), PunctuationType.WALL_CLOCK_TIME, self._idle)

    # -- the buffer ------------------------------------------------------------------------
    def _load(self) -> None:
        """The index of what the store holds (restored, or left by a previous owner)."""
        self._loaded = True
        decode_key = self._keys.deserialize
        for kb, stored in self.store.raw_entries(None, None):
            if self.windowed and kb == _WALL_CLOSE_KEY:  # no windowed key is empty
                self.wall_closed_through = _ID.unpack_from(stored, TIMESTAMP_SIZE)[0]
                continue
            data = stored[TIMESTAMP_SIZE:]
            entry = decode_buffered(decode_key(kb), data, stored_timestamp(stored))
            self._entries[kb] = entry
            heapq.heappush(self._heap, (entry.time, kb))
            self._bytes += entry.size(kb)

    def _put(self, kb: bytes, entry: Buffered) -> None:
        previous = self._entries.get(kb)
        if previous is None:
            heapq.heappush(self._heap, (entry.time, kb))
        else:
            self._bytes -= previous.size(kb)
        self._entries[kb] = entry
        self._bytes += entry.size(kb)
        self.store.put(kb, entry.encode(), entry.timestamp)
        self._unlogged.pop(kb, None)  # its tombstone would now delete this entry

    def _remove(self, kb: bytes) -> Buffered:
        entry = self._entries.pop(kb)
        self._bytes -= entry.size(kb)
        self.store.delete(kb)
        return entry

    def _take_emitted(self, kb: bytes) -> Buffered:
        """Remove an entry that is being emitted: from the index and the engine at once (so
        reads see it gone), from the changelog only in :meth:`on_delivered`."""
        entry = self._entries.pop(kb)
        self._bytes -= entry.size(kb)
        if self._log is None:
            self.store.delete(kb)
        else:
            self._log.engine.put(kb, None, entry.timestamp)
            self._unlogged[kb] = entry.timestamp
        return entry

    def on_delivered(self) -> None:
        """The tombstones of the entries emitted since the last commit, now that the producer
        has acknowledged what they emitted. Logged with the emission, a tombstone could reach
        the changelog while the emitted record itself was lost (a crash, a broker outage past
        the delivery timeout), and a restored buffer would never emit it: an entry is never
        logged as gone before its result is out (under at_least_once a crash may emit it again;
        under exactly_once_v2 both are in one transaction)."""
        if self._log is not None:
            for kb, timestamp in self._unlogged.items():
                self._log.log(kb, None, timestamp)
        self._unlogged.clear()

    def _oldest(self) -> tuple[int, bytes] | None:
        heap, entries = self._heap, self._entries
        while heap:
            time, kb = heap[0]
            entry = entries.get(kb)
            if entry is not None and entry.time == time:
                return heap[0]
            heapq.heappop(heap)  # taken back out, or emitted and buffered again since
        return None

    def _emit_oldest(self) -> None:
        _, kb = heapq.heappop(self._heap)
        entry = self._take_emitted(kb)
        if entry.new is None and self.windowed:
            return  # a window's final result is never a tombstone
        decode = self._values.deserialize
        new = None if entry.new is None else decode(entry.new)
        old = None if entry.old is None or not self.send_old_values else decode(entry.old)
        self.forward(entry.key, (new, old), entry.timestamp)

    def _emit_through(self, expiry: int) -> None:
        while (oldest := self._oldest()) is not None and oldest[0] <= expiry:
            self._emit_oldest()

    def _over(self) -> bool:
        config = self.suppressed.buffer_config
        return (config.record_limit is not None and len(self._entries) > config.record_limit) or (
            config.byte_limit is not None and self._bytes > config.byte_limit
        )

    # -- processing ------------------------------------------------------------------------
    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if not self._loaded:
            self._load()
        new, old = value
        time = key.window.end_ms if self.windowed else timestamp
        if time <= self.wall_closed_through:
            assert self.dropped_records is not None
            self.dropped_records["late"] += 1
            return
        if timestamp > self.stream_time:
            self.stream_time = timestamp
            if self.dropped_records is not None:
                self._advanced_at = self.ctx.wall_clock_ms()
        kb = self._keys.serialize(key)
        encode = self._values.serialize
        nb = None if new is None else encode(new)
        ob = None if old is None else encode(old)
        previous = self._entries.get(kb)
        if previous is None:
            entry = Buffered(time, timestamp, key, ob, ob, nb)
        else:
            entry = Buffered(previous.time, timestamp, key, previous.prior, ob, nb)
        self._put(kb, entry)
        self._emit_through(self.stream_time - self.wait_ms)
        self._enforce_bounds(kb, previous)

    def _enforce_bounds(self, kb: bytes, previous: Buffered | None) -> None:
        if not self._over():
            return
        config = self.suppressed.buffer_config
        if config.when_full == "emit_early":
            while self._over() and self._oldest() is not None:
                self._emit_oldest()
            return
        if kb in self._entries:  # take the change back out: it is not processed
            if previous is None:
                self._remove(kb)
            else:
                self._put(kb, previous)
        raise ProcessingError(
            f"suppression {self.name!r}: its buffer is full (at most {config.record_limit} "
            f"records, {config.byte_limit} bytes) and shuts down when full: the record is not "
            "buffered"
        )

    def _idle(self, now: int) -> None:
        """The wall-clock close (``close_idle_after``)."""
        if not self._loaded:
            self._load()
        idle = self.suppressed.close_idle_after_ms
        assert idle is not None
        close = now - self.wait_ms
        if now - self._advanced_at < idle:
            return
        # Nothing held back: nothing to close. (Closing anyway made an idle start, before the
        # first record, close every window of the past, and a backlog read afterwards was
        # dropped as late in full.)
        if close > self.wall_closed_through and self._entries:
            self.wall_closed_through = close
            self.store.put(_WALL_CLOSE_KEY, _ID.pack(close), now)
        # also what a restored buffer holds from before the close it restored
        self._emit_through(self.wall_closed_through)


@dataclass(frozen=True)
class BufferedGetterSpec(GetterSpec):
    """How to read a suppressed table: a buffered key's prior value (what downstream last
    saw), else the table upstream of the suppression (``parent``), as Kafka Streams'
    suppressed value getter. ``store`` is the parent's store (the one joins wire to)."""

    buffer: str = ""
    parent: GetterSpec | None = None
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None

    def then(self, step: Any) -> GetterSpec:
        return dataclasses.replace(self, steps=(*self.steps, step))

    def bind(
        self, ctx: TaskContext, *, forwarded: bool = False
    ) -> Callable[[Any], tuple[Any, int] | None]:
        assert self.parent is not None
        assert self.key_serde is not None
        assert self.value_serde is not None
        parent = self.parent.bind(ctx, forwarded=forwarded)
        buffer = ctx.store(self.buffer)
        keys, values = bound_serdes(ctx, self.buffer, self.key_serde, self.value_serde)

        def lookup(key: Any) -> tuple[Any, int] | None:
            stored = buffer.get_with_timestamp(keys.serialize(key))
            if stored is None:
                return parent(key)
            prior = decode_buffered(key, *stored).prior
            return None if prior is None else (values.deserialize(prior), -1)

        return with_steps(lookup, self.steps)
