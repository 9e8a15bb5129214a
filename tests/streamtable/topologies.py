"""Topologies shared by the unit, property and differential tests (same shapes as the Java
reference in bench/reference)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import streamtable as st
from streamtable.serde import JSON, STRING

US = frozenset({"NASDAQ", "NYSE"})


def seed() -> st.Topology:
    """The seed's topology: US positions grouped by client, as a set of position ids."""
    b = st.StreamsBuilder()
    (
        b.table("positions", key_serde=STRING, value_serde=JSON, store="positions-store")
        .filter(lambda k, v: v["exchange"] in US)
        .group_by(lambda k, v: (v["client"], [k]), key_serde=STRING, value_serde=JSON)
        .reduce(
            adder=lambda agg, v: sorted(set(agg) | set(v)),
            subtractor=lambda agg, v: sorted(set(agg) - set(v)) or None,
            store="us-holders",
        )
        .to_stream()
        .to("seed-out")
    )
    return b.build()


def _agg_add(key: Any, amount: Any, agg: dict[str, int]) -> dict[str, int]:
    return {"count": agg["count"] + 1, "total": agg["total"] + amount}


def _agg_sub(key: Any, amount: Any, agg: dict[str, int]) -> dict[str, int] | None:
    if agg["count"] - 1 == 0:
        return None
    return {"count": agg["count"] - 1, "total": agg["total"] - amount}


def aggregate() -> st.Topology:
    b = st.StreamsBuilder()
    (
        b.table("positions", key_serde=STRING, value_serde=JSON, store="positions-store")
        .group_by(lambda k, v: (v["client"], v["amount"]), key_serde=STRING, value_serde=JSON)
        .aggregate(
            lambda: {"count": 0, "total": 0},
            _agg_add,
            _agg_sub,
            store="client-totals",
            value_serde=JSON,
        )
        .to_stream()
        .to("aggregate-out")
    )
    return b.build()


def count() -> st.Topology:
    b = st.StreamsBuilder()
    (
        b.table("positions", key_serde=STRING, value_serde=JSON, store="positions-store")
        .group_by(lambda k, v: (v["ticker"], v), key_serde=STRING, value_serde=JSON)
        .count(store="ticker-counts")
        .to_stream()
        .to("count-out", value_serde=JSON)
    )
    return b.build()


def table_join(mode: str) -> st.Topology:
    b = st.StreamsBuilder()
    left = b.table("left", key_serde=STRING, value_serde=JSON, store="left-store")
    right = b.table("right", key_serde=STRING, value_serde=JSON, store="right-store")
    method = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[mode]
    method(
        right, lambda lv, rv: {"l": lv, "r": rv}, store="join-store", value_serde=JSON
    ).to_stream().to("join-out")
    return b.build()


def _fk(v: Any) -> Any:
    product = v.get("product")
    return None if product is None else str(product)


def fk_join(left: bool) -> st.Topology:
    b = st.StreamsBuilder()
    orders = b.table("orders", key_serde=STRING, value_serde=JSON, store="orders-store")
    products = b.table("products", key_serde=STRING, value_serde=JSON, store="products-store")
    method = orders.fk_left_join if left else orders.fk_join
    method(
        products, _fk, lambda o, p: {"o": o, "p": p}, store="fk-store", value_serde=JSON
    ).to_stream().to("fk-out")
    return b.build()


def stream_table_join(left: bool) -> st.Topology:
    b = st.StreamsBuilder()
    events = b.stream("events", key_serde=STRING, value_serde=JSON)
    right = b.table("right", key_serde=STRING, value_serde=JSON, store="right-store")
    joiner = lambda e, r: {"e": e, "r": r}  # noqa: E731
    (events.left_join(right, joiner) if left else events.join(right, joiner)).to(
        "stj-out", value_serde=JSON
    )
    return b.build()


def _ref(k: Any, v: Any) -> Any:
    ref = v.get("ref")
    return None if ref is None else str(ref)


def stream_global_join(left: bool) -> st.Topology:
    b = st.StreamsBuilder()
    events = b.stream("events", key_serde=STRING, value_serde=JSON)
    globals_ = b.global_table("globals", key_serde=STRING, value_serde=JSON, store="globals-store")
    joiner = lambda e, g: {"e": e, "g": g}  # noqa: E731
    joined = (
        events.left_join(globals_, _ref, joiner) if left else events.join(globals_, _ref, joiner)
    )
    joined.to("sgj-out", value_serde=JSON)
    return b.build()


def _bought(key: Any, buy: Any, agg: Any) -> Any:
    return {"b": agg["b"] + buy["n"], "s": agg["s"], "last": "b"}


def _sold(key: Any, sell: Any, agg: Any) -> Any:
    return {"b": agg["b"], "s": agg["s"] + sell["n"], "last": "s"}


def cogroup(rekeyed: bool) -> st.Topology:
    """``buys`` and ``sells`` (``{"n", "to"}``) cogrouped into ``cog-store``: the sums of each
    and which came last; ``rekeyed``: buys are grouped by their ``to`` (repartitioned)."""
    b = st.StreamsBuilder()
    buys = b.stream("buys", key_serde=STRING, value_serde=JSON)
    sells = b.stream("sells", key_serde=STRING, value_serde=JSON)
    grouped = (
        buys.group_by(lambda k, v: k if v is None else v["to"], key_serde=STRING)
        if rekeyed
        else buys.group_by_key()
    )
    (
        grouped.cogroup(_bought)
        .cogroup(sells.group_by_key(), _sold)
        .aggregate(lambda: {"b": 0, "s": 0, "last": None}, store="cog-store", value_serde=JSON)
        .to_stream()
        .to("cog-out")
    )
    return b.build()


TOPOLOGIES: dict[str, Callable[[], st.Topology]] = {
    "seed": seed,
    "aggregate": aggregate,
    "count": count,
    "join_inner": lambda: table_join("inner"),
    "join_left": lambda: table_join("left"),
    "join_outer": lambda: table_join("outer"),
    "fk_join": lambda: fk_join(False),
    "fk_left_join": lambda: fk_join(True),
    "stream_table_join": lambda: stream_table_join(False),
    "stream_table_left_join": lambda: stream_table_join(True),
    "stream_global_join": lambda: stream_global_join(False),
    "stream_global_left_join": lambda: stream_global_join(True),
    "cogroup": lambda: cogroup(False),
    "cogroup_rekeyed": lambda: cogroup(True),
}


@dataclass(frozen=True)
class WindowShape:
    """A windowed reference topology: windows and store retention in milliseconds (retention 0:
    the default, size + grace), the operation: ``count``, ``reduce`` or ``aggregate``, and how
    results are emitted: ``update`` (every update), ``final``
    (``emit_strategy(EmitStrategy.on_window_close())``), ``suppress``
    (``suppress(until_window_closes(unbounded()))``) or ``limit`` (``suppress(until_time_limit(5
    s, ...))``: unbounded for tumbling windows, at most 3 records emitted early for hopping
    ones). ``sliding``: ``SlidingWindows`` with time difference ``size_ms`` instead (retention 0:
    2 * difference + grace; ``advance_ms`` unused)."""

    size_ms: int
    advance_ms: int
    grace_ms: int
    retention_ms: int
    op: str
    emit: str = "update"
    sliding: bool = False

    @property
    def default_retention_ms(self) -> int:
        return (2 if self.sliding else 1) * self.size_ms + self.grace_ms

    def windows(self) -> st.TimeWindows | st.SlidingWindows:
        ms = timedelta(milliseconds=1)
        if self.sliding:
            diff, grace = self.size_ms * ms, self.grace_ms * ms
            return st.SlidingWindows.of_time_difference_and_grace(diff, grace)
        tumbling = st.TimeWindows.of_size_and_grace(self.size_ms * ms, self.grace_ms * ms)
        return tumbling.advance_by(self.advance_ms * ms)


WINDOW_SHAPES: dict[str, WindowShape] = {
    "win_tumbling_count": WindowShape(10_000, 10_000, 3_000, 0, "count"),
    "win_hopping_count": WindowShape(10_000, 4_000, 2_000, 0, "count"),
    "win_tumbling_reduce": WindowShape(10_000, 10_000, 3_000, 0, "reduce"),
    "win_hopping_reduce": WindowShape(10_000, 4_000, 2_000, 0, "reduce"),
    "win_tumbling_aggregate": WindowShape(10_000, 10_000, 3_000, 150_000, "aggregate"),
    "win_hopping_aggregate": WindowShape(10_000, 4_000, 2_000, 0, "aggregate"),
}
"""The windowed topologies of bench/reference's WindowedTopologies.java, with the same names."""

EMIT_SHAPES: dict[str, WindowShape] = {
    f"{name}_{emit}": dataclasses.replace(shape, emit=emit)
    for emit in ("final", "suppress", "limit")
    for name, shape in WINDOW_SHAPES.items()
}
"""The same with their results emitted once per window or held back by ``suppress``
(``<name>_final``, ``<name>_suppress``, ``<name>_limit``)."""

SLIDING_BASE: dict[str, WindowShape] = {
    "sli_count": WindowShape(5_000, 5_000, 2_000, 0, "count", sliding=True),
    "sli_reduce": WindowShape(4_000, 4_000, 3_000, 0, "reduce", sliding=True),
    "sli_aggregate": WindowShape(5_000, 5_000, 1_000, 30_000, "aggregate", sliding=True),
}
SLIDING_SHAPES: dict[str, WindowShape] = {
    **SLIDING_BASE,
    **{
        f"{name}_{emit}": dataclasses.replace(shape, emit=emit)
        for emit in ("final", "suppress")
        for name, shape in SLIDING_BASE.items()
    },
}
"""The sliding-window topologies of WindowedTopologies.java (``sli_*``), with the same names."""

ALL_WINDOW_SHAPES = {**WINDOW_SHAPES, **EMIT_SHAPES, **SLIDING_SHAPES}


def _totals(key: Any, trade: Any, agg: dict[str, int]) -> dict[str, int]:
    return {"count": agg["count"] + 1, "total": agg["total"] + trade["amount"]}


def _held_back(table: st.KTable, shape: WindowShape) -> st.KTable:
    """``table`` as the shape's ``emit`` says (``final`` is the aggregation's own)."""
    if shape.emit == "suppress":
        return table.suppress(st.Suppressed.until_window_closes(st.BufferConfig.unbounded()))
    if shape.emit == "limit":
        tumbling = shape.advance_ms == shape.size_ms
        config = (
            st.BufferConfig.unbounded()
            if tumbling
            else st.BufferConfig.max_records(3).emit_early_when_full()
        )
        return table.suppress(st.Suppressed.until_time_limit(timedelta(seconds=5), config))
    return table


def windowed(name: str) -> st.Topology:
    """``trades`` (key: a string, value: ``{"client", "amount"}``) counted per key, or its
    amounts summed (reduce) or counted and totalled (aggregate) per client, in the windows of
    ``ALL_WINDOW_SHAPES[name]``, stored in ``win-store`` and written to ``win-out``."""
    shape = ALL_WINDOW_SHAPES[name]
    b = st.StreamsBuilder()
    trades = b.stream("trades", key_serde=STRING, value_serde=JSON)
    retention = timedelta(milliseconds=shape.retention_ms) if shape.retention_ms else None
    strategy = (
        st.EmitStrategy.on_window_close()
        if shape.emit == "final"
        else st.EmitStrategy.on_window_update()
    )
    if shape.op == "count":
        table = (
            trades.group_by_key()
            .windowed_by(shape.windows())
            .emit_strategy(strategy)
            .count(store="win-store", retention=retention)
        )
    elif shape.op == "reduce":
        amounts = trades.map(
            lambda k, v: (v["client"], v["amount"]), key_serde=STRING, value_serde=JSON
        )
        table = (
            amounts.group_by_key()
            .windowed_by(shape.windows())
            .emit_strategy(strategy)
            .reduce(lambda agg, v: agg + v, store="win-store", retention=retention)
        )
    else:
        table = (
            trades.group_by(lambda k, v: v["client"], key_serde=STRING)
            .windowed_by(shape.windows())
            .emit_strategy(strategy)
            .aggregate(
                lambda: {"count": 0, "total": 0},
                _totals,
                store="win-store",
                value_serde=JSON,
                retention=retention,
            )
        )
    _held_back(table, shape).to_stream().to("win-out", value_serde=JSON)
    return b.build()


WINDOWED_TOPOLOGIES: dict[str, Callable[[], st.Topology]] = {
    name: partial(windowed, name) for name in WINDOW_SHAPES
}

EMIT_TOPOLOGIES: dict[str, Callable[[], st.Topology]] = {
    name: partial(windowed, name) for name in EMIT_SHAPES
}


@dataclass(frozen=True)
class StreamJoinShape:
    """A stream-stream join reference topology: the join (``join``, ``left``, ``outer``), its
    windows in milliseconds, and whether the left stream is re-keyed (repartitioned) first."""

    op: str
    before_ms: int
    after_ms: int
    grace_ms: int
    rekey_left: bool

    def windows(self) -> st.JoinWindows:
        ms = timedelta(milliseconds=1)
        windows = st.JoinWindows.of_time_difference_and_grace(
            self.before_ms * ms, self.grace_ms * ms
        )
        return windows.before(self.before_ms * ms).after(self.after_ms * ms)


STREAM_JOIN_SHAPES: dict[str, StreamJoinShape] = {
    "ssj_inner": StreamJoinShape("join", 5_000, 5_000, 2_000, False),
    "ssj_left": StreamJoinShape("left", 5_000, 5_000, 2_000, False),
    "ssj_outer": StreamJoinShape("outer", 5_000, 5_000, 2_000, False),
    "ssj_inner_asym": StreamJoinShape("join", 1_000, 4_000, 1_500, False),
    "ssj_left_asym": StreamJoinShape("left", 1_000, 4_000, 1_500, False),
    "ssj_outer_asym": StreamJoinShape("outer", 4_000, 0, 3_000, False),
    "ssj_left_rekeyed": StreamJoinShape("left", 3_000, 3_000, 1_000, True),
    "ssj_outer_rekeyed": StreamJoinShape("outer", 3_000, 3_000, 1_000, True),
}
"""The stream-stream joins of bench/reference's StreamJoinTopologies.java, same names."""


def _pair(left: Any, right: Any) -> dict[str, Any]:
    return {"l": left, "r": right}


def stream_join(name: str) -> st.Topology:
    """``left`` joined with ``right`` (both: string keys, JSON values) in the windows of
    ``STREAM_JOIN_SHAPES[name]``, ``{"l": left value, "r": right value}`` to ``ssj-out``."""
    shape = STREAM_JOIN_SHAPES[name]
    b = st.StreamsBuilder()
    left = b.stream("left", key_serde=STRING, value_serde=JSON)
    right = b.stream("right", key_serde=STRING, value_serde=JSON)
    if shape.rekey_left:
        left = left.select_key(lambda k, v: k if v is None else v["to"], key_serde=STRING)
    windows = shape.windows()
    if shape.op == "join":
        joined = left.join(right, _pair, windows)
    elif shape.op == "left":
        joined = left.left_join(right, _pair, windows)
    else:
        joined = left.outer_join(right, _pair, windows)
    joined.to("ssj-out", value_serde=JSON)
    return b.build()


STREAM_JOIN_TOPOLOGIES: dict[str, Callable[[], st.Topology]] = {
    name: partial(stream_join, name) for name in STREAM_JOIN_SHAPES
}


@dataclass(frozen=True)
class SessionShape:
    """A session-windowed reference topology: gap, grace and store retention in milliseconds
    (grace 0: ``of_inactivity_gap_with_no_grace``; retention 0: the default, gap + grace), and
    the operation: ``count``, ``reduce`` or ``aggregate``, and how results are emitted:
    ``update`` (every update), ``final`` (``emit_strategy(EmitStrategy.on_window_close())``) or
    ``suppress`` (``suppress(until_window_closes(unbounded()))``)."""

    gap_ms: int
    grace_ms: int
    retention_ms: int
    op: str
    emit: str = "update"

    def windows(self) -> st.SessionWindows:
        gap = timedelta(milliseconds=self.gap_ms)
        if self.grace_ms == 0:
            return st.SessionWindows.of_inactivity_gap_with_no_grace(gap)
        grace = timedelta(milliseconds=self.grace_ms)
        return st.SessionWindows.of_inactivity_gap_and_grace(gap, grace)


SESSION_SHAPES: dict[str, SessionShape] = {
    "ses_count": SessionShape(5_000, 2_000, 0, "count"),
    "ses_count_no_grace": SessionShape(3_000, 0, 0, "count"),
    "ses_reduce": SessionShape(5_000, 3_000, 0, "reduce"),
    "ses_reduce_no_grace": SessionShape(4_000, 0, 0, "reduce"),
    "ses_aggregate": SessionShape(4_000, 1_000, 0, "aggregate"),
    "ses_aggregate_retained": SessionShape(4_000, 2_000, 60_000, "aggregate"),
}
"""The session topologies of bench/reference's SessionTopologies.java, with the same names."""

SESSION_EMIT_SHAPES: dict[str, SessionShape] = {
    f"{name}_{emit}": dataclasses.replace(shape, emit=emit)
    for emit in ("final", "suppress")
    for name, shape in SESSION_SHAPES.items()
}
"""The same with each session emitted once (``<name>_final``, ``<name>_suppress``)."""

ALL_SESSION_SHAPES = {**SESSION_SHAPES, **SESSION_EMIT_SHAPES}


def _amounts(key: Any, trade: Any, agg: dict[str, Any]) -> dict[str, Any]:
    amount = trade["amount"]
    return {
        "count": agg["count"] + 1,
        "total": agg["total"] + amount,
        "amounts": [*agg["amounts"], amount],
    }


def _merge_amounts(key: Any, one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    return {
        "count": one["count"] + two["count"],
        "total": one["total"] + two["total"],
        "amounts": one["amounts"] + two["amounts"],
    }


def sessioned(name: str) -> st.Topology:
    """``trades`` counted per key, or its amounts summed (reduce) or counted, totalled and
    listed in order (aggregate, whose merger concatenates) per client, in the sessions of
    ``SESSION_SHAPES[name]``, stored in ``ses-store`` and written to ``ses-out``."""
    shape = ALL_SESSION_SHAPES[name]
    b = st.StreamsBuilder()
    trades = b.stream("trades", key_serde=STRING, value_serde=JSON)
    retention = timedelta(milliseconds=shape.retention_ms) if shape.retention_ms else None
    strategy = (
        st.EmitStrategy.on_window_close()
        if shape.emit == "final"
        else st.EmitStrategy.on_window_update()
    )
    if shape.op == "count":
        table = (
            trades.group_by_key()
            .windowed_by(shape.windows())
            .emit_strategy(strategy)
            .count(store="ses-store", retention=retention)
        )
    elif shape.op == "reduce":
        amounts = trades.map(
            lambda k, v: (v["client"], v["amount"]), key_serde=STRING, value_serde=JSON
        )
        table = (
            amounts.group_by_key()
            .windowed_by(shape.windows())
            .emit_strategy(strategy)
            .reduce(lambda agg, v: agg + v, store="ses-store", retention=retention)
        )
    else:
        table = (
            trades.group_by(lambda k, v: v["client"], key_serde=STRING)
            .windowed_by(shape.windows())
            .emit_strategy(strategy)
            .aggregate(
                lambda: {"count": 0, "total": 0, "amounts": []},
                _amounts,
                _merge_amounts,
                store="ses-store",
                value_serde=JSON,
                retention=retention,
            )
        )
    if shape.emit == "suppress":
        table = table.suppress(st.Suppressed.until_window_closes(st.BufferConfig.unbounded()))
    table.to_stream().to("ses-out", value_serde=JSON)
    return b.build()


SESSION_TOPOLOGIES: dict[str, Callable[[], st.Topology]] = {
    name: partial(sessioned, name) for name in SESSION_SHAPES
}

SESSION_EMIT_TOPOLOGIES: dict[str, Callable[[], st.Topology]] = {
    name: partial(sessioned, name) for name in SESSION_EMIT_SHAPES
}


@dataclass(frozen=True)
class CogroupWindowShape:
    """A windowed cogroup reference topology (CogroupTopologies.WINDOWED): ``kind`` "time"
    (size, advance, grace), "sliding" (time difference, grace) or "session" (gap, grace), in
    milliseconds."""

    kind: str
    size_or_gap_ms: int
    advance_ms: int
    grace_ms: int

    @property
    def session(self) -> bool:
        return self.kind == "session"


COGROUP_WINDOW_SHAPES: dict[str, CogroupWindowShape] = {
    "cogroup_tumbling": CogroupWindowShape("time", 10_000, 10_000, 3_000),
    "cogroup_hopping": CogroupWindowShape("time", 10_000, 4_000, 2_000),
    "cogroup_session": CogroupWindowShape("session", 5_000, 0, 2_000),
    "cogroup_sliding": CogroupWindowShape("sliding", 10_000, 0, 3_000),
}


def _merge_sums(key: Any, one: Any, two: Any) -> Any:
    last = one["last"] if two["last"] is None else two["last"]
    return {"b": one["b"] + two["b"], "s": one["s"] + two["s"], "last": last}


def windowed_cogroup(name: str) -> st.Topology:
    """``buys`` and ``sells`` cogrouped as ``cogroup`` does, per window or session of
    ``COGROUP_WINDOW_SHAPES[name]``, into ``cog-store``; a session merger adds the sums and
    keeps the second's ``last`` (the first's when it has none)."""
    shape = COGROUP_WINDOW_SHAPES[name]
    b = st.StreamsBuilder()
    buys = b.stream("buys", key_serde=STRING, value_serde=JSON)
    sells = b.stream("sells", key_serde=STRING, value_serde=JSON)
    cogrouped = buys.group_by_key().cogroup(_bought).cogroup(sells.group_by_key(), _sold)
    ms = timedelta(milliseconds=1)
    initial = {"b": 0, "s": 0, "last": None}
    if shape.session:
        sessions = st.SessionWindows.of_inactivity_gap_and_grace(
            shape.size_or_gap_ms * ms, shape.grace_ms * ms
        )
        table = cogrouped.windowed_by(sessions).aggregate(
            lambda: initial, _merge_sums, store="cog-store", value_serde=JSON
        )
    else:
        size, grace = shape.size_or_gap_ms * ms, shape.grace_ms * ms
        windowed = (
            cogrouped.windowed_by(st.SlidingWindows.of_time_difference_and_grace(size, grace))
            if shape.kind == "sliding"
            else cogrouped.windowed_by(
                st.TimeWindows.of_size_and_grace(size, grace).advance_by(shape.advance_ms * ms)
            )
        )
        table = windowed.aggregate(lambda: initial, store="cog-store", value_serde=JSON)
    table.to_stream().to("cog-out", value_serde=JSON)
    return b.build()
