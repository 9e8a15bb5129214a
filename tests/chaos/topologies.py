"""The topologies the fault harness runs, each with a brute-force oracle.

Every topology reads the same generated input (see ``plan.py``): ``positions`` (a table or a
stream of ``{"id", "client", "ticker", "exchange", "amount"}`` (``amount`` is the record's
sequence number, unique) keyed by position id; None
closes a position) and, for some, ``notes`` (keyed by position id, co-partitioned) or
``clients`` (keyed by client id). Positions are validated by the service's serde, so malformed
records go to the dead-letter topic.

What each topology is checked against after the run:

- ``reduce`` (the seed): client -> set of US position ids, ``reduce(union, difference)``;
- ``aggregate`` (the service's shape): client -> {position id: ticker};
- ``count``: a STREAM of positions counted per client (``KGroupedStream.count``), also written to
  an output topic: exact under exactly_once_v2, never below the truth under at_least_once (a
  replay counts again, as in Kafka Streams);
- ``join``: positions joined with notes on the position id (co-partitioned table-table join);
- ``fkjoin``: positions joined with clients on ``client`` (foreign-key join);
- ``global``: the positions stream joined with a GlobalKTable of clients, written to an output
  topic: every input record's result exactly once (EOS) or at least once (ALOS);
- ``windowed``: the positions STREAM counted per position id in time windows (tumbling or
  hopping, drawn), in a window store with a short retention; its input carries explicit record
  timestamps and its oracle and checks are in ``windowed.py``; with ``emit_final`` or
  ``suppress`` (drawn) each window's final count goes to the output topic once it closes
  (``emit_strategy(on_window_close())``, or ``suppress(until_window_closes(unbounded()))``);
- ``sessions``: the same stream counted per position id in session windows (the gap drawn), in
  a session store with a short retention; the same record times, its oracle in ``sessions.py``;
  final results (emit-final or suppress) drawn as for ``windowed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import streamtable as st
from us_shareholders.records import CLIENT, POSITION

US = frozenset({"NASDAQ", "NYSE"})

Event = tuple[str, str, dict[str, Any] | None]  # (topic role, key, value)


def _keep_us(key: str, pos: dict[str, Any]) -> bool:
    return pos["exchange"] in US


def reduce_topology(t: dict[str, str]) -> st.Topology:
    builder = st.StreamsBuilder()
    (
        builder.table(
            t["positions"], key_serde=st.serde.STRING, value_serde=POSITION,
            store="positions-store", reject_null_keys=True,
        )
        .filter(_keep_us)
        .group_by(lambda key, pos: (pos["client"], frozenset({key})), key_serde=st.serde.STRING)
        .reduce(
            adder=lambda agg, v: agg | v,
            subtractor=lambda agg, v: (agg - v) or None,
            store="result",
        )
    )  # fmt: skip
    return builder.build()


def aggregate_topology(t: dict[str, str]) -> st.Topology:
    def add(client: str, held: tuple[str, str], agg: dict[str, str]) -> dict[str, str]:
        return {**agg, held[0]: held[1]}

    def subtract(client: str, held: tuple[str, str], agg: dict[str, str]) -> dict[str, str] | None:
        rest = {pid: ticker for pid, ticker in agg.items() if pid != held[0]}
        return rest or None

    builder = st.StreamsBuilder()
    (
        builder.table(
            t["positions"], key_serde=st.serde.STRING, value_serde=POSITION,
            store="positions-store", reject_null_keys=True,
        )
        .filter(_keep_us)
        .group_by(lambda key, pos: (pos["client"], (key, pos["ticker"])), key_serde=st.serde.STRING)
        .aggregate(dict, add, subtract, store="result", value_serde=st.serde.JSON)
    )  # fmt: skip
    return builder.build()


def count_topology(t: dict[str, str]) -> st.Topology:
    builder = st.StreamsBuilder()
    (
        builder.stream(t["positions"], key_serde=st.serde.STRING, value_serde=POSITION)
        .filter(lambda key, pos: pos is not None)
        .group_by(lambda key, pos: pos["client"], key_serde=st.serde.STRING)
        .count(store="result")
        .to_stream()
        .to(t["output"], key_serde=st.serde.STRING, value_serde=st.serde.JSON)
    )
    return builder.build()


def join_topology(t: dict[str, str]) -> st.Topology:
    builder = st.StreamsBuilder()
    positions = builder.table(
        t["positions"], key_serde=st.serde.STRING, value_serde=POSITION,
        store="positions-store", reject_null_keys=True,
    )  # fmt: skip
    notes = builder.table(
        t["notes"], key_serde=st.serde.STRING, value_serde=st.serde.JSON, store="notes-store"
    )
    positions.join(
        notes, lambda pos, note: [pos["ticker"], note["note"]], store="result",
        value_serde=st.serde.JSON,
    )  # fmt: skip
    return builder.build()


def fkjoin_topology(t: dict[str, str]) -> st.Topology:
    builder = st.StreamsBuilder()
    positions = builder.table(
        t["positions"], key_serde=st.serde.STRING, value_serde=POSITION,
        store="positions-store", reject_null_keys=True,
    )  # fmt: skip
    clients = builder.table(
        t["clients"], key_serde=st.serde.STRING, value_serde=CLIENT, store="clients-store"
    )
    positions.fk_join(
        clients, lambda pos: pos["client"], lambda pos, client: [pos["ticker"], client["name"]],
        store="result", value_serde=st.serde.JSON,
    )  # fmt: skip
    return builder.build()


def global_topology(t: dict[str, str]) -> st.Topology:
    builder = st.StreamsBuilder()
    clients = builder.global_table(
        t["clients"], key_serde=st.serde.STRING, value_serde=CLIENT, store="clients-store"
    )
    (
        builder.stream(t["positions"], key_serde=st.serde.STRING, value_serde=POSITION)
        .filter(lambda key, pos: pos is not None)
        .join(clients, lambda key, pos: pos["client"],
              lambda pos, client: [pos["amount"], pos["ticker"], client["name"]])
        .to(t["output"], key_serde=st.serde.STRING, value_serde=st.serde.JSON)
    )  # fmt: skip
    return builder.build()


@dataclass(frozen=True)
class WindowShape:
    """The ``windowed`` (or ``sessions``) kind's windows and store, in milliseconds of record
    time.

    ``disorder_ms`` bounds how far a record's timestamp falls behind an earlier record's (the
    generator's out-of-order records); it is below the grace period, so no record is ever late,
    whatever the faults (within a partition records keep their produce order, and the count
    reads the input partitions without a repartition)."""

    size_ms: int  # the sessions kind: the inactivity gap
    advance_ms: int  # == size_ms: tumbling (and sessions)
    grace_ms: int
    retention_ms: int
    disorder_ms: int
    sessions: bool = False  # the sessions kind's session windows
    emit_final: bool = False  # the windowed kind: on_window_close, final counts to "output"
    suppress: bool = False  # the windowed kind: suppress(until_window_closes), the same

    def __post_init__(self) -> None:
        if not 0 <= self.disorder_ms < self.grace_ms:
            raise ValueError(f"disorder {self.disorder_ms} ms must be below the grace period")
        if self.retention_ms < self.size_ms + self.grace_ms:
            raise ValueError(f"retention {self.retention_ms} ms is below size + grace")
        if ALIGN_MS % self.advance_ms:
            raise ValueError(f"the advance {self.advance_ms} ms must divide {ALIGN_MS} ms")


ALIGN_MS = 60_000
"""A run's time base is a multiple of this, so of every window advance."""

Build = Callable[[dict[str, str], WindowShape | None], st.Topology]  # (topics, shape)


def windowed_topology(t: dict[str, str], shape: WindowShape | None) -> st.Topology:
    assert shape is not None, "the windowed kind is built with its window shape"
    windows = st.TimeWindows.of_size_and_grace(
        timedelta(milliseconds=shape.size_ms), timedelta(milliseconds=shape.grace_ms)
    )
    if shape.advance_ms != shape.size_ms:
        windows = windows.advance_by(timedelta(milliseconds=shape.advance_ms))
    return _counted_in(t, windows, shape)


def sessions_topology(t: dict[str, str], shape: WindowShape | None) -> st.Topology:
    assert shape is not None, "the sessions kind is built with its session shape"
    windows = st.SessionWindows.of_inactivity_gap_and_grace(
        timedelta(milliseconds=shape.size_ms), timedelta(milliseconds=shape.grace_ms)
    )
    return _counted_in(t, windows, shape)


def _counted_in(
    t: dict[str, str], windows: st.TimeWindows | st.SessionWindows, shape: WindowShape
) -> st.Topology:
    """The positions stream counted per position id in ``windows``, in the store ``result``."""
    builder = st.StreamsBuilder()
    grouped = (
        builder.stream(t["positions"], key_serde=st.serde.STRING, value_serde=POSITION)
        .filter(lambda key, pos: pos is not None)
        .group_by_key()
    )
    retention = timedelta(milliseconds=shape.retention_ms)
    windowed = grouped.windowed_by(windows)
    if shape.emit_final:  # each window's count once, when it closes, to the output topic
        windowed = windowed.emit_strategy(st.EmitStrategy.on_window_close())
    counts = windowed.count(store="result", retention=retention)
    if shape.suppress:
        unbounded = st.BufferConfig.unbounded()
        counts = counts.suppress(st.Suppressed.until_window_closes(unbounded))
    if shape.emit_final or shape.suppress:
        counts.to_stream().to(t["output"])
    return builder.build()


def _fixed(build: Callable[[dict[str, str]], st.Topology]) -> Build:
    """A kind whose topology has no drawn shape."""

    def with_shape(t: dict[str, str], shape: WindowShape | None) -> st.Topology:
        return build(t)

    return with_shape


# -- oracles ---------------------------------------------------------------------------------


def snapshot(events: list[Event], role: str) -> dict[str, dict[str, Any]]:
    """The table ``role`` stands for after ``events``: the latest value per key."""
    table: dict[str, dict[str, Any]] = {}
    for r, key, value in events:
        if r != role:
            continue
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def reduce_oracle(events: list[Event]) -> dict[str, Any]:
    holders: dict[str, list[str]] = {}
    for pid, pos in snapshot(events, "positions").items():
        if pos["exchange"] in US:
            holders.setdefault(pos["client"], []).append(pid)
    return {client: sorted(ids) for client, ids in holders.items()}


def aggregate_oracle(events: list[Event]) -> dict[str, Any]:
    holders: dict[str, dict[str, str]] = {}
    for pid, pos in snapshot(events, "positions").items():
        if pos["exchange"] in US:
            holders.setdefault(pos["client"], {})[pid] = pos["ticker"]
    return holders


def count_oracle(events: list[Event]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for role, _, value in events:
        if role == "positions" and value is not None:
            counts[value["client"]] = counts.get(value["client"], 0) + 1
    return counts


def join_oracle(events: list[Event]) -> dict[str, Any]:
    notes = snapshot(events, "notes")
    return {
        pid: [pos["ticker"], notes[pid]["note"]]
        for pid, pos in snapshot(events, "positions").items()
        if pid in notes
    }


def fkjoin_oracle(events: list[Event]) -> dict[str, Any]:
    clients = snapshot(events, "clients")
    return {
        pid: [pos["ticker"], clients[pos["client"]]["name"]]
        for pid, pos in snapshot(events, "positions").items()
        if pos["client"] in clients
    }


def global_oracle(events: list[Event]) -> dict[str, Any]:
    """The expected output records by the input's sequence number (its ``amount``, unique per
    record): ``{seq: [key, value]}``."""
    clients = snapshot(events, "clients")
    out: dict[str, Any] = {}
    for role, key, value in events:
        if role == "positions" and value is not None and value["client"] in clients:
            name = clients[value["client"]]["name"]
            out[str(value["amount"])] = [key, [value["amount"], value["ticker"], name]]
    return out


@dataclass(frozen=True)
class TopologyKind:
    name: str
    build: Build
    oracle: Callable[[list[Event]], dict[str, Any]] | None  # None: windowed/sessions.py
    inputs: tuple[str, ...]  # topic roles besides "positions"
    output: bool  # writes the "output" topic
    exact_under_alos: bool  # replays are idempotent: the store is exact under at_least_once too
    static_clients: bool = False  # clients never change during the run (a global join's input)


KINDS: dict[str, TopologyKind] = {
    k.name: k
    for k in (
        TopologyKind("reduce", _fixed(reduce_topology), reduce_oracle, (), False, True),
        TopologyKind("aggregate", _fixed(aggregate_topology), aggregate_oracle, (), False, True),
        TopologyKind("count", _fixed(count_topology), count_oracle, (), True, False),
        TopologyKind("join", _fixed(join_topology), join_oracle, ("notes",), False, True),
        TopologyKind("fkjoin", _fixed(fkjoin_topology), fkjoin_oracle, ("clients",), False, True),
        TopologyKind(
            "global", _fixed(global_topology), global_oracle, ("clients",), True, False, True
        ),
        TopologyKind("windowed", windowed_topology, None, (), True, False),
        TopologyKind("sessions", sessions_topology, None, (), True, False),
    )
}
