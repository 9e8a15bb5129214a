"""``KGroupedStream.cogroup``: several grouped streams aggregated into one table.

As Kafka Streams' ``CogroupedKStream``: each grouped stream (repartitioned first if its key may
have changed) goes through an aggregate node of its own, with its own aggregator, and all of
them read and write one shared store; their changes flow through one merge node, the table.
The inputs must be co-partitioned (one store, one task per partition). Records with a ``None``
key or value are dropped, as by ``KGroupedStream.aggregate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from streamtable.dsl._table import KTable
from streamtable.errors import TopologyError
from streamtable.processors import GetterSpec
from streamtable.processors.stream_aggregate import StreamAggregate
from streamtable.processors.stream_stream_join import PassThrough
from streamtable.serde import DEFAULT, Serde
from streamtable.topology._nodes import ProcessorSpec, StoreSpec

if TYPE_CHECKING:
    from streamtable.dsl._grouped_stream import KGroupedStream

Aggregator = Callable[[Any, Any, Any], Any]
"""``aggregator(key, value, aggregate) -> new aggregate``, as Kafka Streams' ``Aggregator``."""


@dataclass(frozen=True)
class CogroupedKStream:
    """Grouped streams waiting for :meth:`aggregate`, each with its aggregator.

    Example::

        totals = (
            buys.group_by_key().cogroup(lambda k, buy, agg: agg + buy["amount"])
            .cogroup(sells.group_by_key(), lambda k, sell, agg: agg - sell["amount"])
            .aggregate(lambda: 0, store="net-positions")
        )
    """

    _inputs: tuple[tuple[KGroupedStream, Aggregator], ...]

    def cogroup(self, grouped: KGroupedStream, aggregator: Aggregator) -> CogroupedKStream:
        """Add ``grouped``, aggregated into the same table with ``aggregator``."""
        _check_aggregator(aggregator)
        if grouped._stream._graph is not self._inputs[0][0]._stream._graph:
            raise TopologyError("cogroup: the grouped streams must come from one StreamsBuilder")
        if any(grouped is g for g, _ in self._inputs):
            raise TopologyError("cogroup: a grouped stream can be cogrouped only once")
        return CogroupedKStream((*self._inputs, (grouped, aggregator)))

    def aggregate(
        self,
        initializer: Callable[[], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """The table of aggregates per key: each record of an input applies that input's
        aggregator to the key's aggregate (``initializer()`` for a new key)."""
        if not callable(initializer):
            raise TypeError(f"cogroup aggregate: initializer must be callable, got {initializer!r}")
        first = self._inputs[0][0]._stream
        g = first._graph
        store = store or f"{g.new_name('COGROUPKSTREAM-AGGREGATE-STATE-STORE')}"
        agg_serde = value_serde or DEFAULT
        g.add_store(StoreSpec(store, first.key_serde, agg_serde))
        merge = g.new_name("COGROUPKSTREAM-MERGE")
        nodes: list[str] = []
        topics: list[str] = []
        for n, (grouped, aggregator) in enumerate(self._inputs):
            stream = grouped._stream._co_partitioned(name=f"{store}-{n}")
            name = g.new_name("COGROUPKSTREAM-AGGREGATE")
            step = partial(StreamAggregate, name, initializer, aggregator, store)
            g.add_processor(ProcessorSpec(name, (stream._node,), step, (store,)))
            g.old_value_parents[name] = ()
            nodes.append(name)
            topics.extend(stream._topics)
        g.add_processor(ProcessorSpec(merge, tuple(nodes), partial(PassThrough, merge), ()))
        g.old_value_parents[merge] = tuple(nodes)
        g.copartition_groups.append(tuple(sorted(set(topics))))
        return KTable(
            g, merge, first.key_serde, agg_serde, GetterSpec(store), tuple(sorted(set(topics))),
            store,
        )  # fmt: skip


def _check_aggregator(aggregator: Any) -> None:
    if not callable(aggregator):
        raise TypeError(f"cogroup: aggregator must be callable, got {aggregator!r}")
