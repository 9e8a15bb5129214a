"""KStream and GlobalKTable (KGroupedStream: ``_grouped_stream``; stream-stream joins:
``_stream_join``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, overload

from streamtable.dsl._graph import Graph
from streamtable.dsl._grouped_stream import KGroupedStream
from streamtable.dsl._stream_join import StreamJoined, join_stream, stream_stream_join
from streamtable.dsl._table import KTable
from streamtable.errors import TopologyError
from streamtable.processors import GetterSpec, Processor
from streamtable.processors.fk_join import ResultTable
from streamtable.processors.stream_filter import StreamFilter
from streamtable.processors.stream_map import StreamFlatMap, StreamMap, StreamMapValues, StreamPeek
from streamtable.processors.stream_table_join import StreamTableJoin
from streamtable.processors.user_processor import UserProcessorNode
from streamtable.serde import DEFAULT, Serde
from streamtable.topology._nodes import (
    InternalTopicSpec,
    ProcessorSpec,
    SinkSpec,
    SourceSpec,
    StoreSpec,
)
from streamtable.windowing import JoinWindows


@dataclass(frozen=True)
class GlobalKTable:
    """A table replicated in full on every instance; joined to streams by a selected key."""

    _graph: Graph
    store_name: str
    key_serde: Serde[Any]
    value_serde: Serde[Any]


@dataclass(frozen=True)
class KStream:
    """A stream of independent records. Every operation returns a new object.

    ``key_changed`` tracks whether an operation may have changed keys since the source, so
    grouping and joining repartition first (as Kafka Streams does).
    """

    _graph: Graph
    _node: str
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    key_changed: bool
    _topics: tuple[str, ...]

    def _then(
        self,
        kind: str,
        make: Callable[[str], Any],
        *,
        key_changed: bool | None = None,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        stores: tuple[str, ...] = (),
    ) -> KStream:
        g = self._graph
        name = g.new_name(kind)
        g.add_processor(ProcessorSpec(name, (self._node,), partial(make, name), stores))
        return KStream(
            g,
            name,
            key_serde or self.key_serde,
            value_serde or self.value_serde,
            self.key_changed if key_changed is None else key_changed,
            self._topics,
        )

    def filter(self, predicate: Callable[[Any, Any], Any]) -> KStream:
        """Keep records for which ``predicate(key, value)`` is true."""
        return self._then("KSTREAM-FILTER", lambda n: StreamFilter(n, predicate, False))

    def filter_not(self, predicate: Callable[[Any, Any], Any]) -> KStream:
        """Keep records for which ``predicate(key, value)`` is false."""
        return self._then("KSTREAM-FILTER", lambda n: StreamFilter(n, predicate, True))

    def map_values(
        self,
        mapper: Callable[..., Any],
        *,
        with_key: bool = False,
        value_serde: Serde[Any] | None = None,
    ) -> KStream:
        """A new value per record: ``mapper(value)`` (``mapper(key, value)`` with ``with_key``)."""
        return self._then(
            "KSTREAM-MAPVALUES",
            lambda n: StreamMapValues(n, mapper, with_key),
            value_serde=value_serde or DEFAULT,
        )

    def map(
        self,
        mapper: Callable[[Any, Any], tuple[Any, Any]],
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KStream:
        """A new key and value per record: ``mapper(key, value) -> (key2, value2)``."""
        return self._then(
            "KSTREAM-MAP",
            lambda n: StreamMap(n, mapper),
            key_changed=True,
            key_serde=key_serde or DEFAULT,
            value_serde=value_serde or DEFAULT,
        )

    def select_key(
        self, selector: Callable[[Any, Any], Any], *, key_serde: Serde[Any] | None = None
    ) -> KStream:
        """A new key per record: ``selector(key, value)``."""
        return self.map(
            lambda k, v: (selector(k, v), v), key_serde=key_serde, value_serde=self.value_serde
        )

    def flat_map(
        self,
        mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KStream:
        """Zero or more records per record: ``mapper(key, value) -> [(key2, value2), ...]``."""
        return self._then(
            "KSTREAM-FLATMAP",
            lambda n: StreamFlatMap(n, mapper),
            key_changed=True,
            key_serde=key_serde or DEFAULT,
            value_serde=value_serde or DEFAULT,
        )

    def flat_map_values(
        self, mapper: Callable[[Any], Iterable[Any]], *, value_serde: Serde[Any] | None = None
    ) -> KStream:
        """Zero or more values per record, same key: ``mapper(value) -> [value2, ...]``."""
        return self._then(
            "KSTREAM-FLATMAPVALUES",
            lambda n: StreamFlatMap(n, mapper, values_only=True),
            value_serde=value_serde or DEFAULT,
        )

    def peek(self, action: Callable[[Any, Any], Any]) -> KStream:
        """Call ``action(key, value)`` for each record (logging, metrics); records pass on."""
        return self._then("KSTREAM-PEEK", lambda n: StreamPeek(n, action))

    def process(
        self,
        factory: Callable[[], Processor],
        *,
        stores: Iterable[str] = (),
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KStream:
        """Run a custom :class:`~streamtable.Processor` (one instance per task) with the named
        stores (added with ``StreamsBuilder.add_state_store``); what it forwards flows on."""
        names = tuple(stores)
        return self._then(
            "KSTREAM-PROCESSOR",
            lambda n: UserProcessorNode(n, factory, names),
            key_changed=True,
            key_serde=key_serde or DEFAULT,
            value_serde=value_serde or DEFAULT,
            stores=names,
        )

    def to(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> None:
        """Write every record to ``topic`` (a None value is written as a tombstone)."""
        g = self._graph
        name = g.new_name("KSTREAM-SINK")
        g.sinks.append(
            SinkSpec(
                name,
                self._node,
                topic,
                key_serde or self.key_serde,
                value_serde or self.value_serde,
            )
        )

    def repartition(self, *, name: str | None = None) -> KStream:
        """Send the records through an internal topic keyed by their current key."""
        g = self._graph
        base = g.new_name("KSTREAM-REPARTITION")
        topic = f"{name or base}-repartition"
        g.sinks.append(
            SinkSpec(f"{base}-SINK", self._node, topic, self.key_serde, self.value_serde, True)
        )
        g.add_internal_topic(InternalTopicSpec(topic, "repartition", self._topics))
        source = f"{base}-SOURCE"
        g.add_source(SourceSpec(source, topic, self.key_serde, self.value_serde, internal=True))
        return KStream(g, source, self.key_serde, self.value_serde, False, (topic,))

    def _co_partitioned(self, name: str | None = None) -> KStream:
        return self.repartition(name=name) if self.key_changed else self

    def to_table(self, *, store: str | None = None) -> KTable:
        """The stream as a table: each record an upsert, a None value a delete."""
        stream = self._co_partitioned()
        g = self._graph
        name = g.new_name("KSTREAM-TOTABLE")
        store = store or f"{name}-STATE-STORE"
        g.add_store(StoreSpec(store, stream.key_serde, stream.value_serde))
        g.add_processor(
            ProcessorSpec(name, (stream._node,), partial(ResultTable, name, store), (store,))
        )
        g.old_value_parents[name] = ()
        return KTable(
            g, name, stream.key_serde, stream.value_serde, GetterSpec(store), stream._topics, store
        )

    # -- grouping --------------------------------------------------------------------------
    def group_by_key(
        self, *, key_serde: Serde[Any] | None = None, value_serde: Serde[Any] | None = None
    ) -> KGroupedStream:
        """Group by the current key (repartitioning first if keys may have changed)."""
        return KGroupedStream(self.with_serdes(key_serde, value_serde), None)

    def group_by(
        self,
        selector: Callable[[Any, Any], Any],
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KGroupedStream:
        """Group by ``selector(key, value)``; records go through a repartition topic."""
        return KGroupedStream(
            self.select_key(selector, key_serde=key_serde).with_serdes(None, value_serde), None
        )

    def with_serdes(self, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None) -> KStream:
        """The same stream, declaring the serdes of its keys and values from here on."""
        return KStream(
            self._graph,
            self._node,
            key_serde or self.key_serde,
            value_serde or self.value_serde,
            self.key_changed,
            self._topics,
        )

    # -- joins -----------------------------------------------------------------------------
    @overload
    def join(self, other: KTable, joiner: Callable[[Any, Any], Any], /) -> KStream: ...

    @overload
    def join(
        self,
        other: GlobalKTable,
        key_selector: Callable[[Any, Any], Any],
        joiner: Callable[[Any, Any], Any],
        /,
    ) -> KStream: ...

    @overload
    def join(
        self,
        other: KStream,
        joiner: Callable[[Any, Any], Any],
        join_windows: JoinWindows,
        /,
        stream_joined: StreamJoined | None = None,
    ) -> KStream: ...

    def join(self, other: Any, *args: Any, stream_joined: StreamJoined | None = None) -> KStream:
        """Inner join with a KTable, ``join(table, joiner(value, table_value))``; with a
        GlobalKTable, ``join(global_table, key_selector(key, value), joiner(value, row))``; or
        with a KStream within time windows, ``join(other_stream, joiner(value, other_value),
        st.JoinWindows...)`` (see ``streamtable.processors.stream_stream_join``)."""
        return self._join(other, args, "join", stream_joined)

    @overload
    def left_join(self, other: KTable, joiner: Callable[[Any, Any], Any], /) -> KStream: ...

    @overload
    def left_join(
        self,
        other: GlobalKTable,
        key_selector: Callable[[Any, Any], Any],
        joiner: Callable[[Any, Any], Any],
        /,
    ) -> KStream: ...

    @overload
    def left_join(
        self,
        other: KStream,
        joiner: Callable[[Any, Any], Any],
        join_windows: JoinWindows,
        /,
        stream_joined: StreamJoined | None = None,
    ) -> KStream: ...

    def left_join(
        self, other: Any, *args: Any, stream_joined: StreamJoined | None = None
    ) -> KStream:
        """Like :meth:`join`, but every record yields a result (``None`` for a missing row;
        with a KStream, once the record's window has closed without a partner)."""
        return self._join(other, args, "left_join", stream_joined)

    def outer_join(
        self,
        other: KStream,
        joiner: Callable[[Any, Any], Any],
        join_windows: JoinWindows,
        stream_joined: StreamJoined | None = None,
    ) -> KStream:
        """Like a windowed :meth:`left_join`, and records of ``other`` without a partner
        yield ``joiner(None, other_value)`` too."""
        return stream_stream_join(
            self, other, joiner, join_windows, stream_joined, kind="outer_join"
        )

    def _join(
        self, other: Any, args: tuple[Any, ...], kind: str, joined: StreamJoined | None
    ) -> KStream:
        if not isinstance(other, KTable | GlobalKTable):
            return join_stream(self, other, args, joined, kind)
        if joined is not None:
            raise TypeError(
                f"stream_joined is for joins of two KStreams, not of a {type(other).__name__}"
            )
        left = kind == "left_join"
        g = self._graph
        if other._graph is not g:
            raise TopologyError("cannot join objects from different StreamsBuilders")
        if isinstance(other, GlobalKTable):
            if len(args) != 2:
                raise TopologyError("a GlobalKTable join takes (table, key_selector, joiner)")
            selector, joiner = args
            spec = GetterSpec(other.store_name)
            return self._then(
                "KSTREAM-GLOBALJOIN",
                lambda n: StreamTableJoin(n, spec, joiner, left, selector),
                value_serde=DEFAULT,
                stores=(other.store_name,),
            )
        if len(args) != 1:
            raise TopologyError("a KTable join takes (table, joiner)")
        (joiner,) = args
        stream = self._co_partitioned()
        table_getter = other._getter
        g.copartition_groups.append(tuple(sorted({*stream._topics, *other._topics})))
        return stream._then(
            "KSTREAM-JOIN",
            lambda n: StreamTableJoin(n, table_getter, joiner, left),
            value_serde=DEFAULT,
            stores=(table_getter.store,),
        )
