"""Windowed cogroups: ``CogroupedKStream.windowed_by(TimeWindows | SlidingWindows |
SessionWindows)``.

As Kafka Streams' ``TimeWindowedCogroupedKStream`` (its ``SlidingWindowedCogroupedKStreamImpl``
for sliding windows) and ``SessionWindowedCogroupedKStream``: each input goes through a windowed
aggregate node of its own (``TimeWindowAggregate``, ``SlidingWindowAggregate``,
``SessionWindowAggregate``) with its own aggregator and its own stream time (a record is late
for the windows of its input's node), all of them reading and writing one window or session
store; their changes flow through one merge node, the table, keyed by
:class:`~streamtable.Windowed`. Every update is emitted: Kafka Streams gives windowed cogroups
no emit strategy (they always emit on window update), and neither does this; hold results
back with ``suppress(Suppressed.until_window_closes(...))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, ClassVar

from streamtable.dsl._cogroup_build import Aggregator, Inputs, build_cogroup, check_callable
from streamtable.dsl._session import session_retention_ms
from streamtable.dsl._table import KTable
from streamtable.dsl._windowed import window_retention_ms
from streamtable.processors import Node
from streamtable.processors.session_aggregate import SessionWindowAggregate
from streamtable.processors.sliding_window_aggregate import SlidingWindowAggregate
from streamtable.processors.window_aggregate import TimeWindowAggregate
from streamtable.serde import DEFAULT, Serde, SessionWindowedSerde, TimeWindowedSerde
from streamtable.topology._nodes import StoreSpec
from streamtable.windowing import SessionWindows, SlidingWindows, TimeWindows

_STORE = "COGROUPKSTREAM-AGGREGATE-STATE-STORE"


def _store(
    inputs: Inputs,
    store: str | None,
    value_serde: Serde[Any] | None,
    retention_ms: Callable[[str], int],
    **shape: Any,
) -> StoreSpec:
    """The shared window or session store (``shape``: its type and window size), named
    ``store`` or after Kafka Streams' default; ``retention_ms(name)`` checks its retention."""
    name = store or inputs[0][0]._stream._graph.new_name(_STORE)
    key_serde = inputs[0][0]._stream.key_serde
    return StoreSpec(
        name, key_serde, value_serde or DEFAULT, retention_ms=retention_ms(name), **shape
    )


@dataclass(frozen=True)
class _WindowStoreCogroup:
    """What time- and sliding-windowed cogroups share: :meth:`aggregate` into one window
    store, through an aggregate node per input made by ``_node``."""

    _inputs: Inputs
    _windows: TimeWindows | SlidingWindows
    _node: ClassVar[Callable[..., Node]]

    def aggregate(
        self,
        initializer: Callable[[], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
        retention: timedelta | None = None,
    ) -> KTable:
        """The table of aggregates per key and window: each record of an input applies that
        input's aggregator to each of its windows' aggregate, from ``initializer()`` for a new
        window (sliding windows: or from the aggregate of the window with the same records,
        as ``TimeWindowedKStream.aggregate`` over sliding windows). The window store keeps a
        window ``retention`` after its start (default, and the least allowed: size + grace;
        2 * time difference + grace for sliding windows); its window size, as the windowed
        keys', is the windows' (the time difference for sliding windows)."""
        check_callable("initializer", initializer)
        windows = self._windows
        spec = _store(
            self._inputs,
            store,
            value_serde,
            partial(window_retention_ms, windows, retention=retention),
            store_type="window",
            window_size_ms=windows.size_ms,
        )
        make = self._node

        def step(node: str, aggregator: Aggregator) -> Callable[[], Node]:
            return partial(make, node, windows, initializer, aggregator, spec.name)

        windowed = TimeWindowedSerde(spec.key_serde, windows.size_ms)
        return build_cogroup(self._inputs, spec, step, windowed, windows.grace_ms)


@dataclass(frozen=True)
class TimeWindowedCogroupedKStream(_WindowStoreCogroup):
    """Cogrouped streams in time windows (tumbling or hopping), waiting for
    :meth:`aggregate`.

    Example::

        minutes = st.TimeWindows.of_size_with_no_grace(timedelta(minutes=1))
        per_minute = cogrouped.windowed_by(minutes).aggregate(lambda: 0, store="per-minute")
    """

    _windows: TimeWindows
    _node = TimeWindowAggregate


@dataclass(frozen=True)
class SlidingWindowedCogroupedKStream(_WindowStoreCogroup):
    """Cogrouped streams in sliding windows (``Window(start, start + time difference)``, both
    ends inclusive), waiting for :meth:`aggregate`: each input's records update and create
    windows as ``TimeWindowedKStream`` over sliding windows (see
    ``streamtable.processors.sliding_window_aggregate``), all in one window store.

    Example::

        ten_s = st.SlidingWindows.of_time_difference_with_no_grace(timedelta(seconds=10))
        recent = cogrouped.windowed_by(ten_s).aggregate(lambda: 0, store="recent")
    """

    _windows: SlidingWindows
    _node = SlidingWindowAggregate


@dataclass(frozen=True)
class SessionWindowedCogroupedKStream:
    """Cogrouped streams in sessions, waiting for :meth:`aggregate`.

    Example::

        visits = (
            views.group_by_key().cogroup(lambda k, view, agg: {**agg, "views": agg["views"] + 1})
            .cogroup(clicks.group_by_key(), lambda k, c, agg: {**agg, "clicks": agg["clicks"] + 1})
            .windowed_by(st.SessionWindows.of_inactivity_gap_with_no_grace(timedelta(minutes=30)))
            .aggregate(
                lambda: {"views": 0, "clicks": 0},
                lambda k, one, two: {n: one[n] + two[n] for n in one},
                store="visits",
            )
        )
    """

    _inputs: Inputs
    _windows: SessionWindows

    def aggregate(
        self,
        initializer: Callable[[], Any],
        merger: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
        value_serde: Serde[Any] | None = None,
        retention: timedelta | None = None,
    ) -> KTable:
        """The table of aggregates per key and session: each record of an input applies that
        input's aggregator; when a record joins sessions, ``merger(key, agg, session agg)``
        folds their aggregates into one (see ``SessionWindowedKStream.aggregate``). The session
        store keeps a session ``retention`` after its end (default: gap + grace)."""
        check_callable("initializer", initializer)
        check_callable("merger", merger)
        windows = self._windows
        retention_ms = partial(session_retention_ms, windows, retention=retention)
        spec = _store(self._inputs, store, value_serde, retention_ms, store_type="session")

        def step(node: str, aggregator: Aggregator) -> Callable[[], Node]:
            make = SessionWindowAggregate
            return partial(make, node, windows, initializer, aggregator, merger, spec.name)

        keys = SessionWindowedSerde(spec.key_serde)
        return build_cogroup(self._inputs, spec, step, keys, windows.gap_ms + windows.grace_ms)
