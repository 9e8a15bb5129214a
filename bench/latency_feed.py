"""The latency part's input and output sides (bench/latency.py), and its statistics.

:func:`feed` produces record ``i`` at ``i / rate`` seconds after its start (a fixed rate): a new
US position ``l<i>`` of client ``c<i mod clients>`` whose value carries its produce wall-clock
time (``produced_ns``). In the seed topology each such record adds ``l<i>`` to its client's list
of US positions, so its effect is visible once a client's list holds ``l<i>``:
:class:`OutputWatcher` reads the output topic from its start (``read_committed``) and keeps, for
each position id, the wall-clock time its first list holding it arrived; the store probe in the
app's process (bench/latency_probe.py) does the same through ``app.store(...)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench.latency_settings import LatencySettings
from bench.queries import percentiles
from bench.results_latency import LatencyStats


def position_id(i: int) -> str:
    return f"l{i}"


def index_of(position: str) -> int:
    """The ``i`` of position id ``l<i>``."""
    if not position.startswith("l"):
        raise ValueError(f"not a latency position id: {position!r}")
    return int(position[1:])


def client_of(i: int, clients: int) -> str:
    return f"c{i % clients}"


def position(i: int, clients: int, produced_ns: int) -> bytes:
    """Record ``i``'s value: a US position (the seed topology's filter keeps it)."""
    return orjson.dumps(
        {
            "id": position_id(i),
            "client": client_of(i, clients),
            "ticker": "T000",
            "exchange": "NASDAQ",
            "amount": 1,
            "produced_ns": produced_ns,
        }
    )


def feed(bootstrap: str, topic: str, s: LatencySettings) -> tuple[dict[str, int], float]:
    """Produce ``s.records`` records at ``s.rate_per_s``; the produce wall-clock times (ns) of
    the measured ones (after the warm-up) by position id, and the seconds they took."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",  # keys partitioned like Java's default
            "linger.ms": 0,  # sent at once: the producer adds no latency of its own
            "enable.idempotence": True,
        }
    )
    produced: dict[str, int] = {}
    started = time.monotonic()
    measured_from = started + s.warmup_s
    for i in range(s.records):
        delay = started + i / s.rate_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now_ns = time.time_ns()
        producer.produce(topic, key=position_id(i).encode(), value=position(i, s.clients, now_ns))
        producer.poll(0)
        if i >= s.warmup_records:
            produced[position_id(i)] = now_ns
    took = time.monotonic() - measured_from
    if producer.flush(60) != 0:
        raise RuntimeError("latency: the producer could not deliver every record within 60 s")
    return produced, took


class OutputWatcher:
    """A thread reading ``topic`` from the start: ``seen`` maps each position id to the
    wall-clock time (ns) the first record whose list holds it was received."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.seen: dict[str, int] = {}
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-latency-{time.time_ns()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 100,
            }
        )
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )
        self._stop = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="bench-latency-out", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self._consumer.consume(num_messages=1000, timeout=0.1)
                received_ns = time.time_ns()
                for msg in batch:
                    value = msg.value() if msg.error() is None else None
                    for element in orjson.loads(value) if value else ():
                        self.seen.setdefault(str(element), received_ns)
        except Exception as exc:  # reported by wait_for and close
            self._error = exc

    def wait_for(self, ids: Mapping[str, int], timeout_s: float) -> None:
        """Until every one of ``ids`` was seen, or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not all(i in self.seen for i in ids):
            self._raise_error()
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._consumer.close()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"latency: reading the output failed: {self._error!r}")


def seen_lines(lines: list[tuple[float, str]]) -> dict[str, int]:
    """The store probe's ``SEEN <id> <ns>`` lines: the first time each id was seen."""
    seen: dict[str, int] = {}
    for _, line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "SEEN":
            seen.setdefault(parts[1], int(parts[2]))
    return seen


def latency_stats(produced: Mapping[str, int], seen: Mapping[str, int]) -> LatencyStats:
    """For each of ``produced`` (id -> produce ns): seen - produced; those never seen are
    ``missing``. p50/p99 by nearest rank (bench/queries.py's percentiles), max and mean, in ms."""
    samples = [seen[i] - at for i, at in produced.items() if i in seen]
    missing = len(produced) - len(samples)
    if not samples:
        return LatencyStats(
            n=0, missing=missing, p50_ms=None, p99_ms=None, max_ms=None, mean_ms=None
        )
    stats = percentiles(samples)
    return LatencyStats(
        n=stats.n,
        missing=missing,
        p50_ms=round(stats.p50_ms, 2),
        p99_ms=round(stats.p99_ms, 2),
        max_ms=round(max(samples) / 1e6, 2),
        mean_ms=round(stats.mean_ms, 2),
    )
