"""Deterministic position events for the benchmarks.

``generate(settings)`` yields ``(position id, JSON bytes or None)``: every position is opened once
(in a shuffled order), after which each event picks a random position and updates its amount,
moves it to another client, moves it to another exchange or closes it (a tombstone), in the
configured ratios; a closed position that is picked again is reopened. Same settings, same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

US_EXCHANGES = ("NASDAQ", "NYSE")
OTHER_EXCHANGES = ("LSE", "XETRA", "TSE", "HKEX", "EURONEXT")
TICKERS = tuple(f"T{i:03d}" for i in range(500))


@dataclass(frozen=True)
class DataSettings:
    records: int = 1_000_000
    positions: int = 100_000
    clients: int = 10_000
    partitions: int = 4
    update_ratio: float = 0.6
    client_move_ratio: float = 0.15
    exchange_move_ratio: float = 0.15
    close_ratio: float = 0.10
    us_ratio: float = 0.6
    seed: int = 7

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _exchange(rng: random.Random, us_ratio: float) -> str:
    return rng.choice(US_EXCHANGES) if rng.random() < us_ratio else rng.choice(OTHER_EXCHANGES)


def generate(s: DataSettings) -> Iterator[tuple[str, bytes | None]]:
    rng = random.Random(s.seed)
    positions = max(1, min(s.positions, s.records))
    live: dict[str, dict[str, Any]] = {}
    order = list(range(positions))
    rng.shuffle(order)

    def opened(pid: str) -> dict[str, Any]:
        pos = {
            "id": pid,
            "client": f"c{rng.randrange(s.clients)}",
            "ticker": rng.choice(TICKERS),
            "exchange": _exchange(rng, s.us_ratio),
            "amount": rng.randrange(1, 100_000),
        }
        live[pid] = pos
        return pos

    for n in order:
        pid = f"p{n}"
        yield pid, orjson.dumps(opened(pid))
    weights = (s.update_ratio, s.client_move_ratio, s.exchange_move_ratio, s.close_ratio)
    bounds = [sum(weights[: i + 1]) / sum(weights) for i in range(len(weights))]
    for _ in range(s.records - positions):
        pid = f"p{rng.randrange(positions)}"
        pos = live.get(pid)
        if pos is None:
            yield pid, orjson.dumps(opened(pid))
            continue
        r = rng.random()
        if r < bounds[0]:
            pos = {**pos, "amount": rng.randrange(1, 100_000)}
        elif r < bounds[1]:
            pos = {**pos, "client": f"c{rng.randrange(s.clients)}"}
        elif r < bounds[2]:
            pos = {**pos, "exchange": _exchange(rng, s.us_ratio)}
        else:
            del live[pid]
            yield pid, None
            continue
        live[pid] = pos
        yield pid, orjson.dumps(pos)


def create_topic(admin: AdminClient, topic: str, partitions: int) -> None:
    """A compacted topic that the log cleaner leaves alone while the benchmark runs."""
    config = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000)}
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config)])
    for future in futures.values():
        future.result(60)


def produce(bootstrap: str, topic: str, s: DataSettings) -> int:
    """Produce ``generate(s)`` to ``topic`` (keys partitioned like Java's default); the count."""
    return produce_records(bootstrap, topic, ((key, value, None) for key, value in generate(s)))


def produce_records(
    bootstrap: str, topic: str, records: Iterable[tuple[str, bytes | None, int | None]]
) -> int:
    """Produce ``(key, value, timestamp or None for now)`` records to ``topic`` in order, keys
    partitioned like Java's default; the count."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            # retries (a new topic's leaders are still being elected) must not reorder a key's
            # records: the oracle replays them in the generated order
            "enable.idempotence": True,
        }
    )
    count = 0
    for key, value, timestamp in records:
        while True:
            try:
                producer.produce(topic, key=key.encode(), value=value, timestamp=timestamp or 0)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("producer could not deliver every record within 120 s")
    return count
