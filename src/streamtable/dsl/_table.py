"""KTable and KGroupedTable: tables as changelogs, with Kafka Streams' semantics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from streamtable.dsl._fk_join import FkJoinWiring
from streamtable.dsl._graph import Graph
from streamtable.dsl._suppress import suppress
from streamtable.errors import TopologyError
from streamtable.processors import GetterSpec
from streamtable.processors import fk_join as fk
from streamtable.processors.repartition_map import RepartitionMap
from streamtable.processors.table_aggregate import (
    TableAggregate,
    count_adder,
    count_initializer,
    count_subtractor,
)
from streamtable.processors.table_filter import TableFilter
from streamtable.processors.table_join import JoinMode, TableJoinMerger, TableJoinSide
from streamtable.processors.table_map_values import TableMapValues
from streamtable.processors.table_reduce import TableReduce
from streamtable.processors.table_to_stream import TableToStream
from streamtable.serde import DEFAULT, Serde
from streamtable.suppression import Suppressed
from streamtable.topology._nodes import (
    ChangeSerde,
    InternalTopicSpec,
    ProcessorSpec,
    SinkSpec,
    SourceSpec,
    StoreSpec,
)

if TYPE_CHECKING:
    from streamtable.dsl._stream import KStream


def _filter_step(predicate: Callable[[Any, Any], Any], negate: bool, key: Any, value: Any) -> Any:
    return value if bool(predicate(key, value)) != negate else None


def _map_step(mapper: Callable[..., Any], with_key: bool, key: Any, value: Any) -> Any:
    return mapper(key, value) if with_key else mapper(value)


@dataclass(frozen=True)
class KTable:
    """A table: the latest value per key, as a stream of changes ``(new, old)``.

    Every operation returns a new object; nothing runs until the topology is built and run.
    ``store=`` on an operation materializes its result in a named, queryable store.
    """

    _graph: Graph
    _node: str
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    _getter: GetterSpec
    _topics: tuple[str, ...]
    store_name: str | None = None

    # -- stateless -------------------------------------------------------------------------
    def filter(self, predicate: Callable[[Any, Any], Any], *, store: str | None = None) -> KTable:
        """Keep rows for which ``predicate(key, value)`` is true; others become "no row"."""
        return self._filter(predicate, False, store, "KTABLE-FILTER")

    def filter_not(
        self, predicate: Callable[[Any, Any], Any], *, store: str | None = None
    ) -> KTable:
        """Keep rows for which ``predicate(key, value)`` is false."""
        return self._filter(predicate, True, store, "KTABLE-FILTER")

    def _filter(
        self, predicate: Callable[[Any, Any], Any], negate: bool, store: str | None, kind: str
    ) -> KTable:
        g = self._graph
        name = g.new_name(kind)
        self._materialize(store, self.key_serde, self.value_serde)
        g.add_processor(
            ProcessorSpec(
                name,
                (self._node,),
                partial(TableFilter, name, predicate, negate, store),
                (store,) if store else (),
            )
        )
        g.old_value_parents[name] = () if store else (self._node,)
        getter = (
            GetterSpec(store)
            if store
            else self._getter.then(partial(_filter_step, predicate, negate))
        )
        return KTable(g, name, self.key_serde, self.value_serde, getter, self._topics, store)

    def map_values(
        self,
        mapper: Callable[..., Any],
        *,
        with_key: bool = False,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """A new value per row: ``mapper(value)``, or ``mapper(key, value)`` with ``with_key``."""
        g = self._graph
        name = g.new_name("KTABLE-MAPVALUES")
        vserde = value_serde or DEFAULT
        self._materialize(store, self.key_serde, vserde)
        g.add_processor(
            ProcessorSpec(
                name,
                (self._node,),
                partial(TableMapValues, name, mapper, with_key, store),
                (store,) if store else (),
            )
        )
        g.old_value_parents[name] = () if store else (self._node,)
        getter = (
            GetterSpec(store) if store else self._getter.then(partial(_map_step, mapper, with_key))
        )
        return KTable(g, name, self.key_serde, vserde, getter, self._topics, store)

    def to_stream(self) -> KStream:
        """The changes of this table as a stream: ``(key, new value)``, None for a delete."""
        from streamtable.dsl._stream import KStream

        g = self._graph
        name = g.new_name("KTABLE-TOSTREAM")
        g.add_processor(ProcessorSpec(name, (self._node,), partial(TableToStream, name)))
        return KStream(g, name, self.key_serde, self.value_serde, False, self._topics)

    def suppress(self, suppressed: Suppressed) -> KTable:
        """Hold changes back: ``st.Suppressed.until_window_closes(buffer_config)`` (a windowed
        table's final results) or ``st.Suppressed.until_time_limit(limit, buffer_config)``."""
        return suppress(self, suppressed)

    # -- re-grouping -----------------------------------------------------------------------
    def group_by(
        self,
        selector: Callable[[Any, Any], tuple[Any, Any] | None],
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        name: str | None = None,
    ) -> KGroupedTable:
        """Re-key the table by ``selector(key, value) -> (new key, new value)`` to aggregate.

        Changes flow through a repartition topic; the old value is retracted from its group.
        """
        return KGroupedTable(self, selector, key_serde or DEFAULT, value_serde or DEFAULT, name)

    # -- joins -----------------------------------------------------------------------------
    def join(
        self,
        other: KTable,
        joiner: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """Inner join with a co-partitioned table on equal keys: ``joiner(value, other_value)``."""
        return self._join(other, joiner, "inner", store, value_serde)

    def left_join(
        self,
        other: KTable,
        joiner: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """Left join: every row of this table, ``joiner(value, other_value or None)``."""
        return self._join(other, joiner, "left", store, value_serde)

    def outer_join(
        self,
        other: KTable,
        joiner: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """Outer join: a row on either side, ``joiner(value or None, other_value or None)``."""
        return self._join(other, joiner, "outer", store, value_serde)

    def _join(
        self,
        other: KTable,
        joiner: Callable[[Any, Any], Any],
        mode: JoinMode,
        store: str | None,
        value_serde: Serde[Any] | None,
    ) -> KTable:
        g = self._graph
        if other._graph is not g:
            raise TopologyError("cannot join tables from different StreamsBuilders")
        this_name = g.new_name(f"KTABLE-JOINTHIS-{mode.upper()}")
        other_name = g.new_name(f"KTABLE-JOINOTHER-{mode.upper()}")
        merger = g.new_name("KTABLE-MERGE")
        store = store or f"{merger}-STATE-STORE"
        vserde = value_serde or DEFAULT
        self._materialize(store, self.key_serde, vserde)
        g.add_processor(
            ProcessorSpec(
                this_name,
                (self._node,),
                partial(TableJoinSide, this_name, mode, True, other._getter, joiner),
                (other._getter.store,),
            )
        )
        g.add_processor(
            ProcessorSpec(
                other_name,
                (other._node,),
                partial(TableJoinSide, other_name, mode, False, self._getter, joiner),
                (self._getter.store,),
            )
        )
        g.add_processor(
            ProcessorSpec(
                merger, (this_name, other_name), partial(TableJoinMerger, merger, store), (store,)
            )
        )
        g.old_value_parents[merger] = (this_name, other_name)
        g.old_value_parents[this_name] = (self._node,)
        g.old_value_parents[other_name] = (other._node,)
        # As Kafka Streams: a side that may stand alone in a result sends old values, so a
        # delete on it can retract the result even when the other side has no row.
        if mode in ("left", "outer"):
            g.old_value_demands.add(self._node)
        if mode == "outer":
            g.old_value_demands.add(other._node)
        g.copartition_groups.append(tuple(sorted({*self._topics, *other._topics})))
        return KTable(
            g,
            merger,
            self.key_serde,
            vserde,
            GetterSpec(store),
            (*self._topics, *other._topics),
            store,
        )

    def fk_join(
        self,
        other: KTable,
        foreign_key: Callable[[Any], Any],
        joiner: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """Foreign-key inner join: each row meets ``other``'s row at ``foreign_key(value)``.

        The tables need not be co-partitioned. Results follow changes on either side and
        foreign-key changes; responses about superseded values are discarded (KIP-213).
        """
        return self._fk_join(other, foreign_key, joiner, False, store, value_serde)

    def fk_left_join(
        self,
        other: KTable,
        foreign_key: Callable[[Any], Any],
        joiner: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """Foreign-key left join: every row, ``joiner(value, other_value or None)``."""
        return self._fk_join(other, foreign_key, joiner, True, store, value_serde)

    def _fk_join(
        self,
        other: KTable,
        foreign_key: Callable[[Any], Any],
        joiner: Callable[[Any, Any], Any],
        left: bool,
        store: str | None,
        value_serde: Serde[Any] | None,
    ) -> KTable:
        g = self._graph
        if other._graph is not g:
            raise TopologyError("cannot join tables from different StreamsBuilders")
        wiring = FkJoinWiring.of(g.new_name("KTABLE-FK-JOIN"), self, other)
        store = store or wiring.output_store
        vserde = value_serde or DEFAULT
        wiring.add_subscription_send(foreign_key, left)
        wiring.add_subscription_answer()
        response = wiring.add_response_join(joiner, left)
        # Materialize the result.
        result = f"{wiring.base}-RESULT"
        self._materialize(store, self.key_serde, vserde)
        g.add_processor(
            ProcessorSpec(
                result, (response,), partial(fk.ResultTable, result, store, True), (store,)
            )
        )
        g.old_value_parents[result] = ()
        return KTable(g, result, self.key_serde, vserde, GetterSpec(store), self._topics, store)

    # -- helpers ---------------------------------------------------------------------------
    def _materialize(
        self, store: str | None, key_serde: Serde[Any], value_serde: Serde[Any]
    ) -> None:
        if store is not None:
            self._graph.add_store(StoreSpec(store, key_serde, value_serde))


@dataclass(frozen=True)
class KGroupedTable:
    """A table re-grouped by a new key, waiting for ``reduce``, ``aggregate`` or ``count``."""

    _table: KTable
    _selector: Callable[[Any, Any], tuple[Any, Any] | None]
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    _name: str | None = None

    def reduce(
        self,
        adder: Callable[[Any, Any], Any],
        subtractor: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
    ) -> KTable:
        """``adder(agg, value)`` on add, ``subtractor(agg, value)`` on retract; None deletes."""
        return self._aggregate(
            "KTABLE-REDUCE",
            lambda name, store_name: TableReduce(name, adder, subtractor, store_name),
            store,
            self.value_serde,
        )

    def aggregate(
        self,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        subtractor: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """``adder(key, value, agg)`` / ``subtractor(key, value, agg)`` from ``initializer()``."""
        return self._aggregate(
            "KTABLE-AGGREGATE",
            lambda name, store_name: TableAggregate(
                name, initializer, adder, subtractor, store_name
            ),
            store,
            value_serde or DEFAULT,
        )

    def count(self, *, store: str | None = None) -> KTable:
        """Rows per group; a group that empties stays at 0 (as in Kafka Streams)."""
        return self._aggregate(
            "KTABLE-AGGREGATE",
            lambda name, store_name: TableAggregate(
                name, count_initializer, count_adder, count_subtractor, store_name
            ),
            store,
            DEFAULT,
        )

    def _aggregate(
        self,
        kind: str,
        make: Callable[[str, str], Any],
        store: str | None,
        agg_serde: Serde[Any],
    ) -> KTable:
        table = self._table
        g = table._graph
        select = g.new_name("KTABLE-SELECT")
        agg = g.new_name(kind)
        store = store or f"{agg}-STATE-STORE"
        topic = f"{self._name or store}-repartition"
        g.add_processor(
            ProcessorSpec(select, (table._node,), partial(RepartitionMap, select, self._selector))
        )
        g.old_value_parents[select] = (table._node,)
        g.old_value_demands.add(select)
        change_serde = ChangeSerde(self.value_serde)
        g.sinks.append(
            SinkSpec(f"{select}-SINK", select, topic, self.key_serde, change_serde, True)
        )
        g.add_internal_topic(InternalTopicSpec(topic, "repartition", table._topics))
        source = f"{agg}-SOURCE"
        g.add_source(SourceSpec(source, topic, self.key_serde, change_serde, internal=True))
        g.add_store(StoreSpec(store, self.key_serde, agg_serde))
        g.add_processor(ProcessorSpec(agg, (source,), partial(make, agg, store), (store,)))
        g.old_value_parents[agg] = ()
        return KTable(g, agg, self.key_serde, agg_serde, GetterSpec(store), (topic,), store)
