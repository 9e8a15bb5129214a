"""What every operator is built on: nodes that forward, the task context, value getters.

The per-record path is a chain of bound method calls: ``process(key, value, timestamp)`` on a
node, which calls ``forward`` to its children. For table operators ``value`` is a change
``(new, old)``: a plain tuple, cheap to build. ``old`` is ``None`` unless the node was asked to
send old values (``send_old_values``), exactly as Kafka Streams only sends old values
downstream when an operator there needs them (re-grouping, joins).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from streamtable.errors import KafkaError, TaskMigrated
from streamtable.state import CachingStore, KeyValueStore, record_cache

Change = tuple[Any, Any]
"""A table change ``(new, old)``; ``None`` on either side means "no row"."""

Forward = Callable[[Any, Any, int], None]


class PunctuationType(Enum):
    """When a punctuator fires: on stream time (record timestamps) or on the wall clock."""

    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


class TaskContext(Protocol):
    """What a task offers its processors (implemented by the runtime and the test driver)."""

    task_id: str
    partition: int
    topic: str | None
    offset: int
    headers: list[tuple[str, bytes | None]] | None

    def store(self, name: str) -> Any: ...

    def emit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        partition: int | None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> None: ...

    def schedule(
        self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]
    ) -> Callable[[], None]: ...

    def internal_topic(self, suffix: str) -> str: ...

    def wall_clock_ms(self) -> int:
        """The clock of wall-clock punctuators, in epoch milliseconds."""
        ...

    def input_offsets(self) -> dict[str, tuple[int, int]] | None: ...

    def group_offsets(self, topic: str) -> dict[int, tuple[int, int]] | None: ...

    def flush_failed(self, node: str, key: Any, value: Any, error: Exception) -> None:
        """Downstream processing of a cached change failed at flush time; raise to stop."""
        ...

    def partitions_of(self, topic: str) -> int: ...


class Node:
    """A processor node. Subclasses override ``process``; ``init`` resolves stores and getters.

    A node that drops records keeps a count per reason in ``dropped_records`` (the runtime
    serves the sum as ``streamtable_dropped_records_total{reason}``).
    """

    send_old_values: bool = False
    dropped_records: Counter[str] | None = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[Forward] = []

    def init(self, ctx: TaskContext) -> None:
        self.ctx = ctx

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        raise NotImplementedError

    def forward(self, key: Any, value: Any, timestamp: int) -> None:
        for child in self.children:
            child(key, value, timestamp)

    def on_delivered(self) -> None:
        """At a commit, once every record sent so far has been acknowledged (under
        exactly_once_v2: before the transaction commits, which makes it atomic with them).
        The place to log state that must never run ahead of the output it stands for: a
        record about what was forwarded, written at once, could reach its changelog while the
        forwarded records themselves were lost (a crash, records not delivered in time), and a
        restore would then believe they were sent."""

    def close(self) -> None:
        pass


class TableMaterializer:
    """Writes a table operator's result to its store and forwards the change.

    With a caching store, forwarding happens when the cache flushes (one change per key per
    commit, ``old`` as of the previous flush); without, it happens at once. Either way a change
    from "no row" to "no row" is not forwarded by a cached store, as in Kafka Streams.
    """

    __slots__ = ("_cached", "_node", "_read_old", "_store")

    def __init__(self, node: Node, store: KeyValueStore | CachingStore) -> None:
        self._node = node
        self._store = store
        cache = record_cache(store)
        self._cached = cache is not None
        # Only an uncached store needs the old value read before the write; a cache reads it
        # at flush time, and only when it is forwarded or decides whether to forward.
        self._read_old = node.send_old_values and not self._cached
        if cache is not None:
            send_old = node.send_old_values
            forward = node.forward
            cache.send_old_values = send_old

            def on_flush(key: Any, new: Any, old: Any, ts: int) -> None:
                # Runs at commit, detached from the record that caused it: a failure is
                # reported for this entry and the flush goes on with the next one.
                try:
                    forward(key, (new, old if send_old else None), ts)
                except (KafkaError, TaskMigrated):
                    raise  # the producer or the process failed, not this entry
                except Exception as exc:
                    node.ctx.flush_failed(node.name, key, new, exc)

            cache.listener = on_flush

    def old(self, key: Any) -> Any:
        """The current value, if ``put_and_forward`` will need it as ``old``; else None."""
        return self._store.get(key) if self._read_old else None

    def put_and_forward(self, key: Any, new: Any, old: Any, timestamp: int) -> None:
        self._store.put(key, new, timestamp)
        if not self._cached:
            self._node.forward(key, (new, old if self._node.send_old_values else None), timestamp)


ValueStep = Callable[[Any, Any], Any]
"""A step of a value getter: ``(key, value) -> value or None``."""


@dataclass(frozen=True)
class GetterSpec:
    """How to read a KTable's current value for a key: a store, then stateless steps.

    A filtered or mapped table that is not materialized is read through its materialized
    ancestor, applying the filters and mappers on the way (Kafka Streams' value getters).
    """

    store: str
    steps: tuple[ValueStep, ...] = ()

    def then(self, step: ValueStep) -> GetterSpec:
        return GetterSpec(self.store, (*self.steps, step))

    def bind(
        self, ctx: TaskContext, *, forwarded: bool = False
    ) -> Callable[[Any], tuple[Any, int] | None]:
        """A getter of the current value. With ``forwarded``, of the value as downstream has
        seen it: a record cache's pending writes are left out, they reach downstream when it
        flushes (a table-table join must join what the other side's changes told it, see
        ``table_join``)."""
        store = ctx.store(self.store)
        if forwarded and (cache := record_cache(store)) is not None:
            store = cache.inner
        return with_steps(store.get_with_timestamp, self.steps)


Lookup = Callable[[Any], "tuple[Any, int] | None"]


def with_steps(get: Lookup, steps: tuple[ValueStep, ...]) -> Lookup:
    """``get`` followed by a getter's stateless steps (a step's None is "no row")."""
    if not steps:
        return get

    def getter(key: Any) -> tuple[Any, int] | None:
        found = get(key)
        if found is None:
            return None
        value, ts = found
        for step in steps:
            value = step(key, value)
            if value is None:
                return None
        return value, ts

    return getter
