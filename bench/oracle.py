"""The seed topology's truth: each client's final set of US position ids, and a checker.

:func:`expected_holders` replays the generated input (``bench.datagen.generate``) as the seed
topology's semantics say (a position counts for its current client while its exchange is a US
one; a tombstone closes it); :func:`read_holders` reads an implementation's output topic to its
end (the last value per key; a tombstone removes the client); :func:`verdict` compares the two.

    truth = expected_holders(generate(settings.data))
    result = verdict(truth, read_holders(bootstrap, output_topic))
    assert result is None, result  # None: correct; else what is wrong, in a sentence
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

US_EXCHANGES = frozenset({"NASDAQ", "NYSE"})

Holders = dict[str, list[str]]
"""Client id -> its US position ids, sorted; a client without any is absent."""


def expected_holders(events: Iterable[tuple[str, bytes | None]]) -> Holders:
    """The final per-client sets after ``events`` (position id, JSON value or ``None``)."""
    client_of: dict[str, str] = {}  # US position -> its client
    for position, raw in events:
        value = None if raw is None else orjson.loads(raw)
        if value is not None and value["exchange"] in US_EXCHANGES:
            client_of[position] = value["client"]
        else:
            client_of.pop(position, None)
    holders: dict[str, list[str]] = {}
    for position, client in client_of.items():
        holders.setdefault(client, []).append(position)
    return {client: sorted(ids) for client, ids in holders.items()}


def apply_output(holders: Holders, key: bytes | None, value: bytes | None) -> None:
    """One output record into ``holders``: a tombstone (or an empty list) removes the client."""
    if key is None:
        raise ValueError("an output record without a key")
    client = key.decode()
    ids = None if value is None else orjson.loads(value)
    if ids:
        holders[client] = list(ids)
    else:
        holders.pop(client, None)


def read_holders(bootstrap: str, topic: str, timeout_s: float = 120.0) -> Holders:
    """``topic`` read from the beginning to its end offsets: the last value of each key."""
    holders: Holders = {}
    read_topic(bootstrap, topic, lambda key, value: apply_output(holders, key, value), timeout_s)
    return holders


def read_topic(
    bootstrap: str,
    topic: str,
    apply: Callable[[bytes | None, bytes | None], None],
    timeout_s: float = 120.0,
) -> None:
    """``apply(key, value)`` for every record of ``topic``, from the beginning to the end
    offsets it has when the read starts, in each partition's order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-oracle-{time.time_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        ends = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout_s:.0f}s")
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                if msg.error() is None:
                    apply(msg.key(), msg.value())
            # The position, not the last record: under exactly-once a partition ends with a
            # transaction marker, which is never handed over but which the position passes.
            for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
    finally:
        consumer.close()


def verdict(
    expected: Mapping[Any, Any], actual: Mapping[Any, Any], what: str = "clients"
) -> str | None:
    """``None`` when ``actual`` is ``expected``; else what differs, with an example."""
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    differ = sorted(c for c in expected.keys() & actual.keys() if expected[c] != actual[c])
    if not (missing or extra or differ):
        return None
    parts = [
        f"{len(what)} {name}"
        for what, name in ((missing, "missing"), (extra, "unexpected"), (differ, "different"))
        if what
    ]
    example = (
        f"{missing[0]} expected {expected[missing[0]]}, absent"
        if missing
        else f"{extra[0]} expected absent, got {actual[extra[0]]}"
        if extra
        else f"{differ[0]} expected {expected[differ[0]]}, got {actual[differ[0]]}"
    )
    return f"{' / '.join(parts)} of {len(expected):,} expected {what} (e.g. {example[:300]})"


def check(
    bootstrap: str, topic: str, expected: Holders, attempts: int = 4, pause_s: float = 2.0
) -> str | None:
    """:func:`verdict` of ``topic``; while it is wrong, read again after ``pause_s`` (records
    produced just before the implementation was seen done may still be on their way)."""
    for attempt in range(attempts):
        wrong = verdict(expected, read_holders(bootstrap, topic))
        if wrong is None or attempt == attempts - 1:
            return wrong
        time.sleep(pause_s)
    return None
