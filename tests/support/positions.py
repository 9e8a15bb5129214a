"""Positions for runtime tests: the seed topology, a seeded generator, an oracle, a producer."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

import streamtable as st

US = frozenset({"NASDAQ", "NYSE"})
EXCHANGES = ["NASDAQ", "NYSE", "LSE", "XETRA", "TSE"]


def seed_topology(topic: str) -> st.Topology:
    builder = st.StreamsBuilder()
    (
        builder.table(
            topic, key_serde=st.serde.STRING, value_serde=st.serde.JSON, store="share-holder-store"
        )
        .filter(lambda key, pos: pos["exchange"] in US)
        .group_by(lambda key, pos: (pos["client"], frozenset({key})))
        .reduce(
            adder=lambda agg, v: agg | v,
            subtractor=lambda agg, v: (agg - v) or None,
            store="us-share-holders",
        )
    )
    return builder.build()


def generate(seed: int, count: int, ids: int) -> list[tuple[str, dict[str, Any] | None]]:
    """Positions with updates, moves between clients and exchanges, and tombstones."""
    rng = random.Random(seed)
    events: list[tuple[str, dict[str, Any] | None]] = []
    for _ in range(count):
        pid = f"p{rng.randrange(ids)}"
        if rng.random() < 0.15:
            events.append((pid, None))
        else:
            events.append(
                (
                    pid,
                    {
                        "id": pid,
                        "client": f"c{rng.randrange(40)}",
                        "ticker": rng.choice(["AAPL", "MSFT", "SAP", "BP"]),
                        "exchange": rng.choice(EXCHANGES),
                        "amount": rng.randrange(1, 1000),
                    },
                )
            )
    return events


def generate_moves(
    seed: int, count: int, ids: int, clients: int, deletes: float = 0.10
) -> list[tuple[str, dict[str, Any] | None]]:
    """Positions whose updates mostly keep their client (amount or exchange changes), some
    move to another client, and ``deletes`` of them are tombstones (of live or absent ids)."""
    rng = random.Random(seed)
    owner: dict[str, str] = {}
    events: list[tuple[str, dict[str, Any] | None]] = []
    for _ in range(count):
        pid = f"p{rng.randrange(ids)}"
        if rng.random() < deletes:
            owner.pop(pid, None)
            events.append((pid, None))
            continue
        same = pid in owner and rng.random() < 0.6  # a same-client update, else new or a move
        client = owner[pid] if same else f"c{rng.randrange(clients)}"
        owner[pid] = client
        events.append(
            (
                pid,
                {
                    "id": pid,
                    "client": client,
                    "ticker": rng.choice(["AAPL", "MSFT", "SAP", "BP"]),
                    "exchange": rng.choice(["NASDAQ", "NYSE", "NASDAQ", "LSE"]),
                    "amount": rng.randrange(1, 1000),
                },
            )
        )
    return events


def oracle(events: list[tuple[str, dict[str, Any] | None]]) -> dict[str, frozenset[str]]:
    snapshot: dict[str, dict[str, Any]] = {}
    for pid, pos in events:
        if pos is None:
            snapshot.pop(pid, None)
        else:
            snapshot[pid] = pos
    holders: dict[str, set[str]] = {}
    for pid, pos in snapshot.items():
        if pos["exchange"] in US:
            holders.setdefault(pos["client"], set()).add(pid)
    return {client: frozenset(ids) for client, ids in holders.items()}


class RecordsRefused(AssertionError):
    """The broker refused some records (``refused``: key, partition, error of each).

    ``flush() == 0`` only says that every record got its delivery report, not that the broker
    took it: a compacted topic refuses a null key with INVALID_RECORD, and with it every other
    record of the same produce batch, so a load that ignores the reports is silently short."""

    def __init__(self, topic: str, refused: list[tuple[bytes | None, int | None, str]]) -> None:
        super().__init__(f"{len(refused)} record(s) refused by {topic}, first: {refused[0]}")
        self.refused = refused


def produce(bootstrap: str, topic: str, records: Sequence[tuple[str | None, bytes | None]]) -> None:
    """Write ``records`` (key None: a null key); raises :class:`RecordsRefused` unless the
    broker acknowledged every one of them."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5}
    )
    refused: list[tuple[bytes | None, int | None, str]] = []

    def delivered(error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            refused.append((msg.key(), msg.partition(), str(error)))

    for key, value in records:
        encoded = None if key is None else key.encode()
        producer.produce(topic, key=encoded, value=value, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0
    if refused:
        raise RecordsRefused(topic, refused)


def produce_positions(
    bootstrap: str, topic: str, events: list[tuple[str, dict[str, Any] | None]]
) -> None:
    produce(
        bootstrap, topic, [(k, None if v is None else json.dumps(v).encode()) for k, v in events]
    )
