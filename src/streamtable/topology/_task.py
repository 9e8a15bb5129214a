"""The engine of one task: the nodes of a sub-topology for one partition, wired and running.

Shared by the test driver and the Kafka runtime, which differ only in where records come from,
where emitted records go (a :class:`RecordCollector`) and which stores they hand in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streamtable.errors import SerializationError, StoreNotFound
from streamtable.processors import Node, PunctuationType
from streamtable.serde import BoundSerde, deserialize_with
from streamtable.state import record_cache
from streamtable.topology._nodes import SourceSpec
from streamtable.topology._schedule import Schedules
from streamtable.topology._topology import SubTopology, Topology

Headers = list[tuple[str, bytes | None]] | None


class RecordCollector(Protocol):
    """Receives what a task emits: sink records and changelog records."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        partition: int | None,
        headers: Headers,
    ) -> None: ...

    def partitions_of(self, topic: str) -> int: ...


@dataclass(frozen=True)
class TaskHooks:
    """What the host of a task (test driver or Kafka runtime) plugs into it.

    - ``wall_clock_ms``: the clock of wall-clock punctuators;
    - ``on_flush_error(node, key, value, error)``: a cached change failed downstream of
      ``node`` at flush time; None lets the error propagate (as Kafka Streams does);
    - ``input_offsets(task) -> {topic: (next offset to process, end offset)}``: how far the
      task has read its inputs (itself None while not known yet); None means always caught
      up (the test driver);
    - ``group_offsets(topic) -> {partition: (committed offset, end offset)}``: how far the
      whole application (every instance) has processed a topic (itself None while not known
      yet); None means all of it.
    """

    wall_clock_ms: Callable[[], int]
    on_flush_error: Callable[[str, Any, Any, Exception], None] | None = None
    input_offsets: Callable[[TaskCore], dict[str, tuple[int, int]] | None] | None = None
    group_offsets: Callable[[str], dict[int, tuple[int, int]] | None] | None = None


class TaskCore:
    """Runs one (sub-topology, partition). Implements the processors' ``TaskContext``."""

    def __init__(
        self,
        topology: Topology,
        sub: SubTopology,
        partition: int,
        application_id: str,
        stores: Mapping[str, Any],
        global_stores: Mapping[str, Any],
        collector: RecordCollector,
        hooks: TaskHooks,
    ) -> None:
        self.topology = topology
        self.sub = sub
        self.partition = partition
        self.application_id = application_id
        self.task_id = f"{sub.id}_{partition}"
        self._stores = dict(stores)
        self._global_stores = global_stores
        self.collector = collector
        self._wall_clock_ms = hooks.wall_clock_ms
        self._on_flush_error = hooks.on_flush_error
        self._input_offsets = hooks.input_offsets
        self._group_offsets = hooks.group_offsets
        self.topic: str | None = None
        self.offset = -1
        self.headers: Headers = None
        self.stream_time = -1
        self._punctuators: Schedules[PunctuationType] = Schedules()

        self._nodes, children = _wire_nodes(sub, topology.old_value_nodes)
        # topic -> (source spec, entry points, whether its serdes see headers)
        self._sources: dict[str, tuple[SourceSpec, list[Any], bool]] = {}
        for src in sub.sources:
            topic = self.internal_topic(src.topic) if src.internal else src.topic
            entry = [child.process for child in children.get(src.name, [])]
            # Bound contextual serdes also see the record's headers; decided once, here.
            with_headers = isinstance(src.key_serde, BoundSerde) or isinstance(
                src.value_serde, BoundSerde
            )
            self._sources[topic] = (src, entry, with_headers)
        # Caching stores flush upstream-first so changes cascade within one flush.
        self._caches = [
            cache
            for name in sub.stores
            if (cache := record_cache(self._stores.get(name))) is not None
        ]
        for node in self._nodes.values():
            node.init(self)

    # -- TaskContext ------------------------------------------------------------------------
    def store(self, name: str) -> Any:
        found = self._stores.get(name)
        if found is None:
            found = self._global_stores.get(name)
        if found is None:
            raise StoreNotFound(name, [*self._stores, *self._global_stores])
        return found

    def emit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        partition: int | None,
        headers: Headers = None,
    ) -> None:
        self.collector.send(topic, key, value, timestamp, partition, headers)

    def schedule(
        self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]
    ) -> Callable[[], None]:
        if interval_ms <= 0:
            raise ValueError("punctuation interval must be positive")
        start = (
            self._wall_clock_ms()
            if kind is PunctuationType.WALL_CLOCK_TIME
            else max(self.stream_time, 0)
        )
        return self._punctuators.add(interval_ms, kind, callback, start)

    def flush_failed(self, node: str, key: Any, value: Any, error: Exception) -> None:
        """A cached change failed downstream of ``node`` at flush time. Without a handler
        (the test driver) the error propagates, as in Kafka Streams."""
        if self._on_flush_error is None:
            raise error
        self._on_flush_error(node, key, value, error)

    def input_offsets(self) -> dict[str, tuple[int, int]] | None:
        """``{input topic: (next offset to process, end offset)}`` for this task's partition,
        or None while not known yet (ask again later)."""
        if self._input_offsets is None:
            return dict.fromkeys(self._sources, (0, 0))
        return self._input_offsets(self)

    def group_offsets(self, topic: str) -> dict[int, tuple[int, int]] | None:
        """``{partition: (committed offset, end offset)}`` of ``topic`` for the whole
        application, or None while not known yet (ask again later); empty when everything is
        processed as it arrives (the test driver)."""
        return {} if self._group_offsets is None else self._group_offsets(topic)

    def internal_topic(self, suffix: str) -> str:
        return f"{self.application_id}-{suffix}"

    def wall_clock_ms(self) -> int:
        return self._wall_clock_ms()

    def partitions_of(self, topic: str) -> int:
        return self.collector.partitions_of(topic)

    # -- driving the task -------------------------------------------------------------------
    @property
    def topics(self) -> list[str]:
        return list(self._sources)

    def process(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        offset: int = -1,
        headers: Headers = None,
    ) -> None:
        """Deserialize one input record and run it through the sub-topology."""
        src, entry, with_headers = self._sources[topic]
        try:
            if with_headers:
                k = None if key is None else deserialize_with(src.key_serde, key, headers)
                v = None if value is None else deserialize_with(src.value_serde, value, headers)
            else:
                k = None if key is None else src.key_serde.deserialize(key)
                v = None if value is None else src.value_serde.deserialize(value)
        except SerializationError as exc:
            raise SerializationError(f"{topic}[{self.partition}]@{offset}: {exc}") from exc
        self.topic = topic
        self.offset = offset
        self.headers = headers
        for process in entry:
            process(k, v, timestamp)
        if timestamp > self.stream_time:
            self.stream_time = timestamp
            self._punctuate(PunctuationType.STREAM_TIME, timestamp)

    def punctuate_wall_clock(self) -> None:
        self._punctuate(PunctuationType.WALL_CLOCK_TIME, self._wall_clock_ms())

    def _punctuate(self, kind: PunctuationType, now: int) -> None:
        if not self._punctuators:
            return
        for p in self._punctuators.due(kind, now):  # each fires once (see Schedules)
            self.topic, self.offset, self.headers = None, -1, None
            p.callback(now)

    def flush(self) -> None:
        """Flush every record cache (forwarding their changes), until nothing is dirty."""
        for _ in range(100):
            for cache in self._caches:
                cache.flush()
            if not any(cache.has_dirty() for cache in self._caches):
                return
        raise RuntimeError(f"task {self.task_id}: caches did not settle after 100 flushes")

    def after_delivered(self) -> None:
        """Every processor's :meth:`~streamtable.processors.Node.on_delivered`."""
        for node in self._nodes.values():
            node.on_delivered()

    def dropped_records(self) -> Counter[str]:
        """Records its processors dropped, per reason (``late``, ``null_key``...)."""
        total: Counter[str] = Counter()
        for node in self._nodes.values():
            if node.dropped_records:
                total.update(node.dropped_records)
        return total

    def discard_caches(self) -> None:
        for cache in self._caches:
            cache.discard()

    def close(self) -> None:
        for node in self._nodes.values():
            node.close()


def _wire_nodes(
    sub: SubTopology, old_value_nodes: frozenset[str]
) -> tuple[dict[str, Node], dict[str, list[Node]]]:
    """Create the sub-topology's processors and sinks and connect each to its children.

    Returns the nodes by name, and the children of every node (sources included) by name.
    """
    nodes: dict[str, Node] = {}
    for proc in sub.processors:
        node = proc.factory()
        node.name = proc.name
        node.send_old_values = proc.name in old_value_nodes
        nodes[proc.name] = node
    from streamtable.processors.sink import Sink

    for sink_spec in sub.sinks:
        nodes[sink_spec.name] = Sink(
            sink_spec.name,
            sink_spec.topic,
            sink_spec.key_serde,
            sink_spec.value_serde,
            sink_spec.internal,
            sink_spec.partitioner,
        )
    children: dict[str, list[Node]] = {}
    for proc in sub.processors:
        for parent in proc.parents:
            children.setdefault(parent, []).append(nodes[proc.name])
    for sink_spec in sub.sinks:
        children.setdefault(sink_spec.parent, []).append(nodes[sink_spec.name])
    for name, node in nodes.items():
        node.children = [child.process for child in children.get(name, [])]
    return nodes, children
