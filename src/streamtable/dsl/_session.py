"""SessionWindowedKStream: a grouped stream cut into sessions of activity."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from streamtable.dsl._table import KTable
from streamtable.dsl._windowed import (
    ON_UPDATE,
    add_window_node,
    add_window_stores,
    check_emit_strategy,
    store_retention_ms,
)
from streamtable.processors import GetterSpec
from streamtable.processors.session_aggregate import SessionWindowAggregate
from streamtable.processors.session_emit_final import SessionWindowAggregateFinal
from streamtable.serde import DEFAULT, Serde, SessionWindowedSerde
from streamtable.suppression import EmitStrategy
from streamtable.topology._nodes import ProcessorSpec, StoreSpec
from streamtable.windowing import SessionWindows

if TYPE_CHECKING:
    from streamtable.dsl._stream import KStream


def _zero() -> int:
    return 0


def _none() -> None:
    return None


def _count_adder(key: Any, value: Any, agg: int) -> int:
    return agg + 1


def _count_merger(key: Any, one: int, two: int) -> int:
    return one + two


def _reduce_aggregator(reducer: Callable[[Any, Any], Any], key: Any, value: Any, agg: Any) -> Any:
    return value if agg is None else reducer(agg, value)


def _reduce_merger(reducer: Callable[[Any, Any], Any], key: Any, one: Any, two: Any) -> Any:
    # As Kafka Streams: the reduce aggregator with the merged session's aggregate as the value.
    return two if one is None else reducer(one, two)


def _check_callable(name: str, fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


def session_retention_ms(windows: SessionWindows, store: str, retention: timedelta | None) -> int:
    """A session store's retention in ms (see ``store_retention_ms``)."""
    parts = {"gap": windows.gap_ms, "grace": windows.grace_ms}
    least = "the inactivity gap plus the grace period"
    return store_retention_ms(store, retention, "session", least, parts)


@dataclass(frozen=True)
class SessionWindowedKStream:
    """A grouped stream in sessions, waiting for ``count``, ``reduce`` or ``aggregate``.

    Each returns a :class:`KTable` keyed by :class:`~streamtable.Windowed` with a
    :class:`~streamtable.SessionWindow` (its key serde a
    :class:`~streamtable.serde.SessionWindowedSerde`: key bytes + 8-byte end + 8-byte start),
    updated on every record of a session that has not closed (a merge deletes the sessions
    merged away first), and materialized in a session store that keeps each session for
    ``retention`` after its end (default: gap + grace, the least allowed), in stream time.
    Read it with ``app.session_store(name)`` or the test driver's ``session_store(name)``.
    With :meth:`emit_strategy` ``(EmitStrategy.on_window_close())`` each session is emitted
    once instead, when stream time passes its end + gap + grace (see
    ``streamtable.processors.session_emit_final``); ``KTable.suppress(Suppressed
    .until_window_closes(...))`` holds the updates back until then too.

    Example::

        clicks.group_by_key().windowed_by(
            st.SessionWindows.of_inactivity_gap_with_no_grace(timedelta(minutes=30))
        ).count(store="sessions")
    """

    _stream: KStream
    _windows: SessionWindows
    _emit: EmitStrategy = ON_UPDATE

    def emit_strategy(self, strategy: EmitStrategy) -> SessionWindowedKStream:
        """The same sessions, emitting as ``strategy`` says:
        ``EmitStrategy.on_window_update()`` (the default) or ``EmitStrategy.on_window_close()``."""
        return dataclasses.replace(self, _emit=check_emit_strategy(strategy))

    def count(self, *, store: str | None = None, retention: timedelta | None = None) -> KTable:
        """Records per key and session."""
        return self._aggregate(_zero, _count_adder, _count_merger, store, DEFAULT, retention)

    def reduce(
        self,
        reducer: Callable[[Any, Any], Any],
        *,
        store: str | None = None,
        retention: timedelta | None = None,
    ) -> KTable:
        """``reducer(agg, value)`` per session, a session's first value taken as is; merged
        sessions combine as ``reducer(agg, other session's agg)``, earliest end first."""
        _check_callable("reducer", reducer)
        return self._aggregate(
            _none,
            partial(_reduce_aggregator, reducer),
            partial(_reduce_merger, reducer),
            store,
            self._stream.value_serde,
            retention,
        )

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        merger: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
        retention: timedelta | None = None,
    ) -> KTable:
        """``aggregator(key, value, agg)`` per session, from ``initializer()``; when a record
        joins sessions, ``merger(key, agg, session agg)`` folds their aggregates into one."""
        _check_callable("initializer", initializer)
        _check_callable("aggregator", aggregator)
        _check_callable("merger", merger)
        return self._aggregate(
            initializer, aggregator, merger, store, value_serde or DEFAULT, retention
        )

    def _aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[..., Any],
        merger: Callable[..., Any],
        store: str | None,
        agg_serde: Serde[Any],
        retention: timedelta | None,
    ) -> KTable:
        g = self._stream._graph
        name = g.new_name("KSTREAM-AGGREGATE")
        store = store or f"{name}-STATE-STORE"
        retention_ms = session_retention_ms(self._windows, store, retention)
        stream = self._stream._co_partitioned(name=store)
        final = self._emit.on_close
        spec = StoreSpec(
            store, stream.key_serde, agg_serde, store_type="session", retention_ms=retention_ms
        )
        stores = add_window_stores(g, spec, final)
        windows = self._windows
        kind = SessionWindowAggregateFinal if final else SessionWindowAggregate
        make = partial(kind, name, windows, initializer, aggregator, merger, store)
        node = ProcessorSpec(name, (stream._node,), make, stores)
        add_window_node(g, node, windows.gap_ms + windows.grace_ms)  # as Kafka Streams' grace
        key_serde = SessionWindowedSerde(stream.key_serde)
        return KTable(g, name, key_serde, agg_serde, GetterSpec(store), stream._topics, store)
