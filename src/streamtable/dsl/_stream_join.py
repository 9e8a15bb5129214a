"""KStream-KStream windowed joins in the DSL: :class:`StreamJoined` and the graph they add.

As Kafka Streams' ``KStreamImplJoin``: each input (repartitioned first if its key may have
changed) goes through a node that records it in its side's window store, then through its
side's join node; both join nodes feed one merge node, the joined stream. Stores and nodes are
named as Kafka Streams names them: ``KSTREAM-JOINTHIS-<n>-store`` and
``KSTREAM-JOINOTHER-<n>-store`` (``OUTERTHIS`` / ``OUTEROTHER`` on outer sides) and, for left
and outer joins, the shared store of unjoined records ``KSTREAM-OUTERSHARED-<n>-store``; with
``StreamJoined.with_store_name(s)``: ``s-this-join-store``, ``s-other-join-store`` (``-outer-``
before ``this``/``other`` on an outer side), ``s-left-shared-join-store`` /
``s-outer-shared-join-store``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from streamtable.dsl._graph import Graph
from streamtable.errors import TopologyError
from streamtable.processors.stream_stream_join import (
    JoinWindowRecorder,
    PassThrough,
    StreamJoinSide,
    TimeTrackers,
)
from streamtable.serde import DEFAULT, Serde
from streamtable.serde._join import SidedValueListSerde, TimestampedKeyAndSideSerde, ValueListSerde
from streamtable.topology._nodes import ProcessorSpec, StoreSpec
from streamtable.windowing import JoinWindows

if TYPE_CHECKING:
    from streamtable.dsl._stream import KStream


@dataclass(frozen=True)
class StreamJoined:
    """Options of a stream-stream join, as Kafka Streams' ``StreamJoined``: the serdes of the
    key and of each side's values in the join's stores (default: the streams' own), a base name
    for its stores (``store_name``) and for its processors and repartition topics (``name``),
    and whether its stores are changelogged (``logging_enabled``).

    Example: ``StreamJoined.with_(st.serde.STRING, st.serde.JSON, st.serde.JSON)
    .with_store_name("orders-payments")``.
    """

    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    other_value_serde: Serde[Any] | None = None
    store_name: str | None = None
    name: str | None = None
    logging_enabled: bool = True

    @staticmethod
    def with_(
        key_serde: Serde[Any] | None,
        value_serde: Serde[Any] | None,
        other_value_serde: Serde[Any] | None,
    ) -> StreamJoined:
        """Kafka Streams' ``StreamJoined.with(keySerde, valueSerde, otherValueSerde)``."""
        return StreamJoined(key_serde, value_serde, other_value_serde)

    @staticmethod
    def as_(store_name: str) -> StreamJoined:
        """Kafka Streams' ``StreamJoined.as(storeName)``."""
        return StreamJoined(store_name=store_name)

    def with_store_name(self, store_name: str) -> StreamJoined:
        return replace(self, store_name=store_name)

    def with_name(self, name: str) -> StreamJoined:
        return replace(self, name=name)

    def with_key_serde(self, key_serde: Serde[Any]) -> StreamJoined:
        return replace(self, key_serde=key_serde)

    def with_value_serde(self, value_serde: Serde[Any]) -> StreamJoined:
        return replace(self, value_serde=value_serde)

    def with_other_value_serde(self, other_value_serde: Serde[Any]) -> StreamJoined:
        return replace(self, other_value_serde=other_value_serde)

    def with_logging_disabled(self) -> StreamJoined:
        return replace(self, logging_enabled=False)

    def with_logging_enabled(self) -> StreamJoined:
        return replace(self, logging_enabled=True)


def _check_args(
    kind: str, this: KStream, other: Any, joiner: Any, windows: Any, joined: Any
) -> StreamJoined:
    from streamtable.dsl._stream import KStream

    if not isinstance(other, KStream):
        raise TypeError(
            f"KStream.{kind}(other, joiner, windows) joins two KStreams within JoinWindows; "
            f"other must be a KStream, got {type(other).__name__} (a KTable or GlobalKTable "
            "is joined with join(table, joiner) or join(global_table, key_selector, joiner))"
        )
    if other._graph is not this._graph:
        raise TopologyError("cannot join streams from different StreamsBuilders")
    if not callable(joiner):
        raise TypeError(
            f"the joiner must be callable as joiner(value, other_value), got {joiner!r}"
        )
    if not isinstance(windows, JoinWindows):
        raise TypeError(
            f"KStream.{kind} needs st.JoinWindows (e.g. JoinWindows.of_time_difference_and_grace"
            f"(timedelta(seconds=5), timedelta(seconds=1))), got {type(windows).__name__}"
        )
    if windows.retention_ms <= 0:
        raise TopologyError(
            "a stream-stream join needs before + after + grace > 0 ms (its window stores keep "
            f"records that long; got before={windows.before_ms}, after={windows.after_ms}, "
            f"grace={windows.grace_ms})"
        )
    if joined is None:
        return StreamJoined()
    if not isinstance(joined, StreamJoined):
        raise TypeError(f"stream_joined must be st.StreamJoined, got {type(joined).__name__}")
    return joined


def join_stream(
    this: KStream, other: Any, args: tuple[Any, ...], joined: StreamJoined | None, kind: str
) -> KStream:
    """``KStream.join``/``left_join`` with a KStream: ``args`` are ``(joiner, join_windows)``
    and optionally ``stream_joined`` (positional, as in Kafka Streams, or by keyword)."""
    if len(args) == 3 and joined is None:
        joined = args[2]
        args = args[:2]
    if len(args) != 2:
        raise TypeError(
            f"KStream.{kind} with a KStream takes (other_stream, joiner, join_windows, "
            f"stream_joined=None); got {len(args)} argument(s) after other"
        )
    joiner, windows = args
    return stream_stream_join(this, other, joiner, windows, joined, kind=kind)


@dataclass(frozen=True)
class _JoinNames:
    """The names of a join's nodes and stores (``unjoined``: left and outer joins only)."""

    this_windowed: str
    other_windowed: str
    this_join: str
    other_join: str
    merge: str
    this_store: str
    other_store: str
    unjoined: str | None


def _names(g: Graph, options: StreamJoined, left_outer: bool, right_outer: bool) -> _JoinNames:
    """Kafka Streams' names, in the order it draws them (see the module docstring)."""
    base, store_base = options.name, options.store_name

    def named(suffix: str, prefix: str) -> str:
        return g.new_name(prefix, None if base is None else f"{base}{suffix}")

    this_windowed = named("-this-windowed", "KSTREAM-WINDOWED")
    other_windowed = named("-other-windowed", "KSTREAM-WINDOWED")
    this_suffix = "-outer-this-join" if right_outer else "-this-join"
    other_suffix = "-outer-other-join" if left_outer else "-other-join"
    this_generated = g.new_name("KSTREAM-OUTERTHIS" if right_outer else "KSTREAM-JOINTHIS")
    other_generated = g.new_name("KSTREAM-OUTEROTHER" if left_outer else "KSTREAM-JOINOTHER")
    this_join = this_generated if base is None else named(this_suffix, "")
    other_join = other_generated if base is None else named(other_suffix, "")
    merge = named("-merge", "KSTREAM-MERGE")
    this_store = f"{store_base}{this_suffix}" if store_base else this_generated
    other_store = f"{store_base}{other_suffix}" if store_base else other_generated
    unjoined = None
    if left_outer:
        shared = "-outer-shared-join" if right_outer else "-left-shared-join"
        number = this_generated.rsplit("-", 1)[1]
        unjoined = f"{store_base}{shared}" if store_base else f"KSTREAM-OUTERSHARED-{number}"
        unjoined = f"{unjoined}-store"
    return _JoinNames(
        this_windowed,
        other_windowed,
        this_join,
        other_join,
        merge,
        f"{this_store}-store",
        f"{other_store}-store",
        unjoined,
    )


def _add_stores(
    g: Graph,
    names: _JoinNames,
    windows: JoinWindows,
    logged: bool,
    serdes: tuple[Serde[Any], Serde[Any], Serde[Any]],
) -> int:
    """Both sides' window stores and the store of unjoined records; returns the window size
    the window stores' keys are written with."""
    key_serde, this_serde, other_serde = serdes
    size = max(1, windows.size_ms)  # the stores' windowed keys need an end after the start
    for store, serde in ((names.this_store, this_serde), (names.other_store, other_serde)):
        g.add_store(
            StoreSpec(
                store,
                key_serde,
                ValueListSerde(serde),
                logged=logged,
                cached=False,
                store_type="window",
                retention_ms=windows.retention_ms,
                window_size_ms=size,
            )
        )
    if names.unjoined is not None:
        unjoined_values = SidedValueListSerde(this_serde, other_serde)
        g.add_store(
            StoreSpec(
                names.unjoined,
                TimestampedKeyAndSideSerde(key_serde),
                unjoined_values,
                logged=logged,
                cached=False,
            )
        )
    return size


def stream_stream_join(
    this: KStream,
    other: KStream,
    joiner: Callable[[Any, Any], Any],
    windows: JoinWindows,
    joined: StreamJoined | None,
    *,
    kind: str,
) -> KStream:
    """The joined stream of ``this`` and ``other`` (``kind``: join, left_join, outer_join)."""
    options = _check_args(kind, this, other, joiner, windows, joined)
    left_outer, right_outer = kind != "join", kind == "outer_join"
    g = this._graph
    base = options.name
    left = this._co_partitioned(None if base is None else f"{base}-left")
    right = other._co_partitioned(None if base is None else f"{base}-right")
    g.copartition_groups.append(tuple(sorted({*left._topics, *right._topics})))
    key_serde = options.key_serde or left.key_serde
    serdes = (
        key_serde,
        options.value_serde or left.value_serde,
        options.other_value_serde or right.value_serde,
    )
    names = _names(g, options, left_outer, right_outer)
    size = _add_stores(g, names, windows, options.logging_enabled, serdes)
    for windowed, parent, store in (
        (names.this_windowed, left._node, names.this_store),
        (names.other_windowed, right._node, names.other_store),
    ):
        record = partial(JoinWindowRecorder, windowed, store, size)
        g.add_processor(ProcessorSpec(windowed, (parent,), record, (store,)))
    trackers = TimeTrackers()
    shared = () if names.unjoined is None else (names.unjoined,)
    for name, parent, is_left, outer, store in (
        (names.this_join, names.this_windowed, True, left_outer, names.other_store),
        (names.other_join, names.other_windowed, False, right_outer, names.this_store),
    ):
        side = partial(
            StreamJoinSide,
            name,
            is_left=is_left,
            windows=windows,
            joiner=joiner,
            outer=outer,
            other_store=store,
            unjoined_store=names.unjoined,
            trackers=trackers,
        )
        g.add_processor(ProcessorSpec(name, (parent,), side, (store, *shared)))
    merge = names.merge
    sides = (names.this_join, names.other_join)
    g.add_processor(ProcessorSpec(merge, sides, partial(PassThrough, merge)))
    from streamtable.dsl._stream import KStream

    return KStream(g, merge, key_serde, DEFAULT, False, (*left._topics, *right._topics))
