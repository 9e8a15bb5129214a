"""TimeWindowedKStream: a grouped stream cut into time windows (tumbling, hopping or sliding)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from streamtable.dsl._table import KTable
from streamtable.errors import TopologyError
from streamtable.processors import GetterSpec
from streamtable.processors.sliding_window_aggregate import (
    SlidingWindowAggregate,
    SlidingWindowAggregateFinal,
)
from streamtable.processors.window_aggregate import TimeWindowAggregate
from streamtable.processors.window_emit_final import TimeWindowAggregateFinal, emit_store_name
from streamtable.serde import DEFAULT, STRING, Serde, TimeWindowedSerde
from streamtable.suppression import EmitStrategy
from streamtable.topology._nodes import ProcessorSpec, StoreSpec
from streamtable.windowing import SlidingWindows, TimeWindows, duration_ms

if TYPE_CHECKING:
    from streamtable.dsl._graph import Graph
    from streamtable.dsl._stream import KStream

ON_UPDATE = EmitStrategy.on_window_update()


def _count_adder(key: Any, value: Any, agg: int) -> int:
    return agg + 1


def _zero() -> int:
    return 0


def _no_aggregate() -> None:
    return None


def _reducing(reducer: Callable[[Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """``reducer`` as an aggregator from None (Kafka Streams' ``aggregatorForReducer``)."""

    def aggregator(key: Any, value: Any, agg: Any) -> Any:
        return value if agg is None else reducer(agg, value)

    return aggregator


def store_retention_ms(
    store: str, retention: timedelta | None, kind: str, least: str, parts: dict[str, int]
) -> int:
    """A window or session store's retention in ms: the sum of ``parts`` (e.g. size and
    grace) when not given, else ``retention``, which may not be smaller (``least`` names
    that sum in the error)."""
    least_ms = sum(parts.values())
    if retention is None:
        return least_ms
    retention_ms = duration_ms(retention, "retention")
    if retention_ms < least_ms:
        given = ", ".join(f"{name}={ms} ms" for name, ms in parts.items())
        raise TopologyError(
            f"store {store!r}: the retention of a {kind} store must be no smaller than "
            f"{least} ({given}, retention: got {retention_ms} ms)"
        )
    return retention_ms


def window_retention_ms(
    windows: TimeWindows | SlidingWindows, store: str, retention: timedelta | None
) -> int:
    """A window store's retention in ms (see :func:`store_retention_ms`)."""
    if isinstance(windows, SlidingWindows):
        diff = windows.time_difference_ms
        parts = {"2 * time_difference": 2 * diff, "grace": windows.grace_ms}
        least = "2 * the time difference plus the grace period"
    else:
        parts = {"size": windows.size_ms, "grace": windows.grace_ms}
        least = "its window size plus the grace period"
    return store_retention_ms(store, retention, "window", least, parts)


def check_emit_strategy(strategy: Any) -> EmitStrategy:
    """``strategy``, if it is an :class:`EmitStrategy`."""
    if not isinstance(strategy, EmitStrategy):
        raise TypeError(
            "emit_strategy takes st.EmitStrategy.on_window_update() or "
            f"st.EmitStrategy.on_window_close(), got {type(strategy).__name__}"
        )
    return strategy


def add_window_stores(g: Graph, spec: StoreSpec, final: bool) -> tuple[str, ...]:
    """Adds a windowed aggregation's window or session store (uncached when it emits final
    results: it forwards from the store, not a record cache, as Kafka Streams) and, when it
    emits final results, the key-value store where it keeps the close time up to which it has
    emitted. Returns the stores its processors use."""
    g.add_store(dataclasses.replace(spec, cached=not final))
    if not final:
        return (spec.name,)
    emit_store = emit_store_name(spec.name)
    g.add_store(StoreSpec(emit_store, STRING, DEFAULT, cached=False))
    return (spec.name, emit_store)


def add_window_node(g: Graph, spec: ProcessorSpec, grace_ms: int | None) -> None:
    """Adds a stream aggregation's processor; a windowed one's windows close ``grace_ms``
    after they end (what ``suppress(Suppressed.until_window_closes(...))`` downstream waits
    for)."""
    g.add_processor(spec)
    if grace_ms is not None:
        g.window_grace[spec.name] = grace_ms
    g.old_value_parents[spec.name] = ()


@dataclass(frozen=True)
class TimeWindowedKStream:
    """A grouped stream in time windows (:class:`~streamtable.TimeWindows` or
    :class:`~streamtable.SlidingWindows`), waiting for ``count``, ``reduce`` or ``aggregate``.

    Each returns a :class:`KTable` keyed by :class:`~streamtable.Windowed` (its key serde a
    :class:`~streamtable.serde.TimeWindowedSerde`: key bytes + 8-byte window start), updated on
    every record of a window that has not closed, and materialized in a window store that keeps
    each window for ``retention`` after its start (default: window size + grace, the least
    allowed; for sliding windows 2 * time difference + grace), in stream time. Read it with
    ``app.window_store(name)`` or the test driver's ``window_store(name)``. With
    :meth:`emit_strategy` ``(EmitStrategy.on_window_close())`` each window is emitted once
    instead, when it closes (see ``streamtable.processors.window_emit_final`` and
    ``sliding_window_aggregate``). Sliding windows' ends are inclusive: a window keyed
    ``Window(start, end)`` holds the records at ``start <= t <= end``.
    """

    _stream: KStream
    _windows: TimeWindows | SlidingWindows
    _emit: EmitStrategy = ON_UPDATE

    def emit_strategy(self, strategy: EmitStrategy) -> TimeWindowedKStream:
        """The same windowed stream, emitting as ``strategy`` says:
        ``EmitStrategy.on_window_update()`` (the default) or ``EmitStrategy.on_window_close()``."""
        return dataclasses.replace(self, _emit=check_emit_strategy(strategy))

    def count(self, *, store: str | None = None, retention: timedelta | None = None) -> KTable:
        """Records per key and window."""
        return self._aggregate(_count_adder, _zero, store, DEFAULT, retention)

    def reduce(
        self,
        reducer: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
        retention: timedelta | None = None,
    ) -> KTable:
        """``reducer(agg, value)`` per window; a window's first value is taken as is."""
        return self._aggregate(reducer, None, store, self._stream.value_serde, retention)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
        retention: timedelta | None = None,
    ) -> KTable:
        """``adder(key, value, agg)`` per window, from ``initializer()``."""
        return self._aggregate(adder, initializer, store, value_serde or DEFAULT, retention)

    def _retention_ms(self, store: str, retention: timedelta | None) -> int:
        return window_retention_ms(self._windows, store, retention)

    def _processor(
        self,
        name: str,
        adder: Callable[..., Any],
        initializer: Callable[[], Any] | None,
        store: str,
    ) -> Callable[[], Any]:
        """What makes the aggregation's processor for these windows and emit strategy."""
        windows, final = self._windows, self._emit.on_close
        if isinstance(windows, TimeWindows):
            kind = TimeWindowAggregateFinal if final else TimeWindowAggregate
            return partial(kind, name, windows, initializer, adder, store)
        sliding = SlidingWindowAggregateFinal if final else SlidingWindowAggregate
        if initializer is None:  # reduce
            initializer, adder = _no_aggregate, _reducing(adder)
        return partial(sliding, name, windows, initializer, adder, store)

    def _aggregate(
        self,
        adder: Callable[..., Any],
        initializer: Callable[[], Any] | None,
        store: str | None,
        agg_serde: Serde[Any],
        retention: timedelta | None,
    ) -> KTable:
        g = self._stream._graph
        name = g.new_name("KSTREAM-AGGREGATE")
        store = store or f"{name}-STATE-STORE"
        windows = self._windows
        retention_ms = self._retention_ms(store, retention)
        stream = self._stream._co_partitioned(name=store)
        size = windows.size_ms
        final = self._emit.on_close
        spec = StoreSpec(
            store,
            stream.key_serde,
            agg_serde,
            store_type="window",
            # Kafka Streams' emit-final store (time-ordered) keeps a window until it starts
            # retention + 1 ms before its latest one: 1 ms more than its other window stores.
            retention_ms=retention_ms + 1 if final else retention_ms,
            window_size_ms=size,
        )
        stores = add_window_stores(g, spec, final)
        make = self._processor(name, adder, initializer, store)
        add_window_node(g, ProcessorSpec(name, (stream._node,), make, stores), windows.grace_ms)
        key_serde = TimeWindowedSerde(stream.key_serde, size)
        return KTable(g, name, key_serde, agg_serde, GetterSpec(store), stream._topics, store)
