"""StreamsBuilder: the entry point of the DSL, and ``build()`` into a Topology."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from streamtable.dsl._graph import Graph
from streamtable.dsl._stream import GlobalKTable, KStream
from streamtable.dsl._table import KTable
from streamtable.errors import TopologyError
from streamtable.processors import GetterSpec
from streamtable.processors.table_source import TableSource
from streamtable.serde import DEFAULT, Serde
from streamtable.topology._nodes import (
    GlobalTableSpec,
    ProcessorSpec,
    SourceSpec,
    StoreKind,
    StoreSpec,
)
from streamtable.topology._topology import SubTopology, Topology


class StreamsBuilder:
    """Describes a topology; ``build()`` validates it and returns an immutable Topology.

    Example::

        builder = st.StreamsBuilder()
        positions = builder.table("share-holders", key_serde=st.serde.STRING,
                                  value_serde=st.serde.JSON, store="share-holder-store")
        holders = (positions
            .filter(lambda key, pos: pos["exchange"] in US_EXCHANGES)
            .group_by(lambda key, pos: (pos["client"], frozenset({key})))
            .reduce(adder=lambda agg, v: agg | v,
                    subtractor=lambda agg, v: (agg - v) or None,
                    store="us-share-holders"))
        topology = builder.build()
    """

    def __init__(self) -> None:
        self._graph = Graph()
        self._built = False

    def table(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] = DEFAULT,
        value_serde: Serde[Any] = DEFAULT,
        store: str | None = None,
        store_kind: StoreKind = "default",
        reject_null_keys: bool = False,
    ) -> KTable:
        """A table from a (compacted) topic: the latest value per key; None deletes.

        The table is always materialized (``store`` names it; otherwise a generated name), and
        the topic itself serves as its changelog. Records with a null key are dropped, or with
        ``reject_null_keys`` treated as bad input (the runtime's dead-letter topic).
        """
        g = self._graph
        source = g.new_name("KSTREAM-SOURCE")
        name = g.new_name("KTABLE-SOURCE")
        store = store or f"{topic}-STATE-STORE-{g.counter:010d}"
        g.add_source(SourceSpec(source, topic, key_serde, value_serde))
        g.add_store(StoreSpec(store, key_serde, value_serde, source_topic=topic, kind=store_kind))
        g.add_processor(
            ProcessorSpec(
                name, (source,), partial(TableSource, name, store, reject_null_keys), (store,)
            )
        )
        g.old_value_parents[name] = ()
        return KTable(g, name, key_serde, value_serde, GetterSpec(store), (topic,), store)

    def global_table(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] = DEFAULT,
        value_serde: Serde[Any] = DEFAULT,
        store: str | None = None,
    ) -> GlobalKTable:
        """A table replicated in full on every instance, restored before processing starts."""
        g = self._graph
        source = g.new_name("KSTREAM-SOURCE")
        store = store or f"{topic}-STATE-STORE-{g.counter:010d}"
        spec = SourceSpec(source, topic, key_serde, value_serde)
        if topic in g.source_topics:
            raise TopologyError(
                f"topic {topic!r} is already read by another source of this topology"
            )
        g.source_topics.add(topic)
        g.add_store(
            StoreSpec(
                store, key_serde, value_serde, source_topic=topic, cached=False, is_global=True
            )
        )
        g.global_tables.append(GlobalTableSpec(spec, store))
        return GlobalKTable(g, store, key_serde, value_serde)

    def stream(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] = DEFAULT,
        value_serde: Serde[Any] = DEFAULT,
    ) -> KStream:
        """A stream of independent records from a topic."""
        g = self._graph
        source = g.new_name("KSTREAM-SOURCE")
        g.add_source(SourceSpec(source, topic, key_serde, value_serde))
        return KStream(g, source, key_serde, value_serde, False, (topic,))

    def add_state_store(
        self,
        name: str,
        *,
        key_serde: Serde[Any] = DEFAULT,
        value_serde: Serde[Any] = DEFAULT,
        logged: bool = True,
        cached: bool = False,
        kind: StoreKind = "default",
    ) -> None:
        """Add a key-value store for custom processors (``KStream.process(..., stores=)``)."""
        self._graph.add_store(
            StoreSpec(name, key_serde, value_serde, logged=logged, cached=cached, kind=kind)
        )

    def build(self) -> Topology:
        """Validate and freeze the topology."""
        return _build(self._graph)


def _build(g: Graph) -> Topology:
    if not g.sources and not g.global_tables:
        raise TopologyError("the topology has no sources")
    old_values = _old_value_nodes(g)
    subs = _sub_topologies(g)
    _check_every_store_used(g)
    return Topology(
        tuple(subs),
        tuple(g.global_tables),
        dict(g.stores),
        dict(g.internal_topics),
        frozenset(old_values),
    )


def _old_value_nodes(g: Graph) -> set[str]:
    """Nodes that must send old values: demanded by re-grouping and FK joins, propagated
    through stateless parents."""
    old_values: set[str] = set()
    pending = list(g.old_value_demands)
    while pending:
        name = pending.pop()
        if name in old_values:
            continue
        old_values.add(name)
        pending.extend(g.old_value_parents.get(name, ()))
    return old_values


def _component_roots(g: Graph) -> Callable[[str], str]:
    """Union-find over the graph: nodes connected by edges or by a shared (non-global) store
    get one root. Returns ``find``, a node's root."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for src in g.sources:
        find(src.name)
    for proc in g.processors:
        find(proc.name)
        for p in proc.parents:
            union(proc.name, p)
        for store in proc.stores:
            if not g.stores[store].is_global:
                union(proc.name, f"store:{store}")
    for sink in g.sinks:
        union(sink.name, sink.parent)
    return find


def _sub_topologies(g: Graph) -> list[SubTopology]:
    """One sub-topology per connected component, numbered in the order of their sources."""
    find = _component_roots(g)
    order: list[str] = []
    for src in g.sources:
        root = find(src.name)
        if root not in order:
            order.append(root)
    subs: list[SubTopology] = []
    for i, root in enumerate(order):
        sources = tuple(s for s in g.sources if find(s.name) == root)
        procs = tuple(p for p in g.processors if find(p.name) == root)
        sinks = tuple(s for s in g.sinks if find(s.name) == root)
        stores: list[str] = []
        for proc in procs:
            for store in proc.stores:
                if not g.stores[store].is_global and store not in stores:
                    stores.append(store)
        topics = {s.topic for s in sources}
        groups = tuple(grp for grp in g.copartition_groups if set(grp) <= topics)
        subs.append(SubTopology(i, sources, procs, sinks, tuple(stores), groups))
    return subs


def _check_every_store_used(g: Graph) -> None:
    used = {s for p in g.processors for s in p.stores}
    used |= {gt.store for gt in g.global_tables}
    unused = sorted(set(g.stores) - used)
    if unused:
        raise TopologyError(f"stores added but used by no processor: {', '.join(unused)}")
