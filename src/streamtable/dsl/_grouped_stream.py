"""KGroupedStream: a stream grouped by key, waiting for an aggregation or time windows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, overload

from streamtable.dsl._cogroup import CogroupedKStream, _check_aggregator
from streamtable.dsl._session import SessionWindowedKStream
from streamtable.dsl._table import KTable
from streamtable.dsl._windowed import TimeWindowedKStream
from streamtable.processors import GetterSpec
from streamtable.processors.stream_aggregate import StreamAggregate
from streamtable.serde import DEFAULT, Serde
from streamtable.topology._nodes import ProcessorSpec, StoreSpec
from streamtable.windowing import SessionWindows, SlidingWindows, TimeWindows

if TYPE_CHECKING:
    from streamtable.dsl._stream import KStream


@dataclass(frozen=True)
class KGroupedStream:
    """A stream grouped by key, waiting for ``count``, ``reduce`` or ``aggregate``, or for
    time or session windows (:meth:`windowed_by`)."""

    _stream: KStream
    _name: str | None

    @overload
    def windowed_by(self, windows: TimeWindows | SlidingWindows) -> TimeWindowedKStream: ...

    @overload
    def windowed_by(self, windows: SessionWindows) -> SessionWindowedKStream: ...

    def windowed_by(
        self, windows: TimeWindows | SlidingWindows | SessionWindows
    ) -> TimeWindowedKStream | SessionWindowedKStream:
        """Aggregate per key and time window (``st.TimeWindows.of_size_...(...)``, or
        ``st.SlidingWindows.of_time_difference_...(...)``) or per key and session
        (``st.SessionWindows.of_inactivity_gap_...(...)``)."""
        if isinstance(windows, (TimeWindows, SlidingWindows)):
            return TimeWindowedKStream(self._stream, windows)
        if isinstance(windows, SessionWindows):
            return SessionWindowedKStream(self._stream, windows)
        raise TypeError(
            "windowed_by takes st.TimeWindows (tumbling or hopping), st.SlidingWindows or "
            f"st.SessionWindows, got {type(windows).__name__}"
        )

    def cogroup(self, aggregator: Callable[[Any, Any, Any], Any]) -> CogroupedKStream:
        """Start a cogroup: this stream aggregated with ``aggregator(key, value, agg)``,
        joined by others with :meth:`CogroupedKStream.cogroup`, into one table."""
        _check_aggregator(aggregator)
        return CogroupedKStream(((self, aggregator),))

    def count(self, *, store: str | None = None) -> KTable:
        """Records per key."""
        return self._aggregate(lambda k, v, agg: agg + 1, lambda: 0, store, DEFAULT)

    def reduce(self, reducer: Callable[[Any, Any], Any], *, store: str | None = None) -> KTable:
        """``reducer(agg, value)``; the first value of a key is taken as is."""
        return self._aggregate(reducer, None, store, self._stream.value_serde)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> KTable:
        """``adder(key, value, agg)`` from ``initializer()``."""
        return self._aggregate(adder, initializer, store, value_serde or DEFAULT)

    def _aggregate(
        self,
        adder: Callable[..., Any],
        initializer: Callable[[], Any] | None,
        store: str | None,
        agg_serde: Serde[Any],
    ) -> KTable:
        g = self._stream._graph
        name = g.new_name("KSTREAM-AGGREGATE")
        store = store or f"{name}-STATE-STORE"
        stream = self._stream._co_partitioned(name=store)
        g.add_store(StoreSpec(store, stream.key_serde, agg_serde))
        g.add_processor(
            ProcessorSpec(
                name,
                (stream._node,),
                partial(StreamAggregate, name, initializer, adder, store),
                (store,),
            )
        )
        g.old_value_parents[name] = ()
        return KTable(
            g, name, stream.key_serde, agg_serde, GetterSpec(store), stream._topics, store
        )
