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
from typing import TYPE_CHECKING, Any, overload

from streamtable.dsl._cogroup_build import Aggregator, Inputs, build_cogroup, check_callable
from streamtable.dsl._cogroup_windowed import (
    SessionWindowedCogroupedKStream,
    SlidingWindowedCogroupedKStream,
    TimeWindowedCogroupedKStream,
)
from streamtable.dsl._table import KTable
from streamtable.errors import TopologyError
from streamtable.processors import Node
from streamtable.processors.stream_aggregate import StreamAggregate
from streamtable.serde import DEFAULT, Serde
from streamtable.topology._nodes import StoreSpec
from streamtable.windowing import SessionWindows, SlidingWindows, TimeWindows

if TYPE_CHECKING:
    from streamtable.dsl._grouped_stream import KGroupedStream


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

    _inputs: Inputs

    def cogroup(self, grouped: KGroupedStream, aggregator: Aggregator) -> CogroupedKStream:
        """Add ``grouped``, aggregated into the same table with ``aggregator``."""
        _check_aggregator(aggregator)
        if grouped._stream._graph is not self._inputs[0][0]._stream._graph:
            raise TopologyError("cogroup: the grouped streams must come from one StreamsBuilder")
        if any(grouped is g for g, _ in self._inputs):
            raise TopologyError("cogroup: a grouped stream can be cogrouped only once")
        return CogroupedKStream((*self._inputs, (grouped, aggregator)))

    @overload
    def windowed_by(self, windows: TimeWindows) -> TimeWindowedCogroupedKStream: ...

    @overload
    def windowed_by(self, windows: SlidingWindows) -> SlidingWindowedCogroupedKStream: ...

    @overload
    def windowed_by(self, windows: SessionWindows) -> SessionWindowedCogroupedKStream: ...

    def windowed_by(
        self, windows: TimeWindows | SlidingWindows | SessionWindows
    ) -> (
        TimeWindowedCogroupedKStream
        | SlidingWindowedCogroupedKStream
        | SessionWindowedCogroupedKStream
    ):
        """Aggregate per key and time window (tumbling or hopping), sliding window or
        session."""
        if isinstance(windows, TimeWindows):
            return TimeWindowedCogroupedKStream(self._inputs, windows)
        if isinstance(windows, SlidingWindows):
            return SlidingWindowedCogroupedKStream(self._inputs, windows)
        if isinstance(windows, SessionWindows):
            return SessionWindowedCogroupedKStream(self._inputs, windows)
        raise TypeError(
            "cogroup windowed_by takes st.TimeWindows (tumbling or hopping), "
            f"st.SlidingWindows or st.SessionWindows, got {type(windows).__name__}"
        )

    def aggregate(
        self,
        initializer: Callable[[], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """The table of aggregates per key: each record of an input applies that input's
        aggregator to the key's aggregate (``initializer()`` for a new key)."""
        check_callable("initializer", initializer)
        first = self._inputs[0][0]._stream
        name = store or first._graph.new_name("COGROUPKSTREAM-AGGREGATE-STATE-STORE")
        spec = StoreSpec(name, first.key_serde, value_serde or DEFAULT)

        def step(node: str, aggregator: Aggregator) -> Callable[[], Node]:
            return partial(StreamAggregate, node, initializer, aggregator, name)

        return build_cogroup(self._inputs, spec, step, first.key_serde)


def _check_aggregator(aggregator: Any) -> None:
    if not callable(aggregator):
        raise TypeError(f"cogroup: aggregator must be callable, got {aggregator!r}")
