"""W5's reads: their figures, the sample of US holders, and the reader's two phases."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from bench.holder_reads import NO_ANSWER, HolderReader, Read, holder_sample, read_latency
from bench.results import HolderReads

from us_shareholders.venues import VenueMatcher

pytestmark = pytest.mark.unit

MS = 1_000_000


def test_read_latency_counts_percentiles_max_and_non_200() -> None:
    reads = [Read(i * MS, 200) for i in range(1, 98)]
    reads += [Read(98 * MS, 404), Read(99 * MS, 503), Read(30_000 * MS, NO_ANSWER)]
    figures = read_latency(reads)
    assert figures == HolderReads(n=100, p50_ms=51.0, p99_ms=30_000.0, max_ms=30_000.0, non_200=3)


def test_read_latency_of_a_few_reads_in_any_order() -> None:
    figures = read_latency([Read(3 * MS, 200), Read(1_500_000, 200), Read(2 * MS, 200)])
    assert (figures.n, figures.p50_ms, figures.p99_ms, figures.max_ms) == (3, 2.0, 3.0, 3.0)
    assert figures.non_200 == 0


def test_read_latency_of_no_reads_has_no_figures() -> None:
    figures = read_latency([])
    assert figures == HolderReads(n=0, p50_ms=None, p99_ms=None, max_ms=None, non_200=0)


def position(client: str, exchange: str) -> dict[str, Any]:
    return {"id": "x", "client": client, "ticker": "AAPL", "exchange": exchange, "amount": 1}


DATA: dict[str, list[tuple[str, Any]]] = {
    "positions": [
        ("p1", position("us", "NASDAQ")),
        ("p2", position("london", "LON")),
        ("p3", position("closed", "NYSE")),
        ("p3", None),
        ("p4", position("moved_away", "NYSE")),
        ("p4", position("moved_to", "NYSE")),
        ("p5", position("left_us", "NYSE")),
        ("p5", position("left_us", "LON")),
        ("p6", None),  # a close of a position never opened
    ]
}


def test_the_sample_is_the_clients_holding_us_stock_at_the_end() -> None:
    assert sorted(holder_sample(DATA, VenueMatcher())) == ["moved_to", "us"]


def test_the_sample_is_seeded_and_at_most_n() -> None:
    data = {"positions": [(f"p{i}", position(f"c{i}", "NYSE")) for i in range(50)]}
    picked = holder_sample(data, VenueMatcher(), n=10, seed=3)
    assert len(picked) == len(set(picked)) == 10
    assert picked == holder_sample(data, VenueMatcher(), n=10, seed=3)
    assert picked != holder_sample(data, VenueMatcher(), n=10, seed=4)
    with pytest.raises(ValueError, match="n must be at least 1"):
        holder_sample(data, VenueMatcher(), n=0)


class Service:
    """A fake service: ``/holders/{client}`` answers from ``answers``; counts the reads after
    ``digest`` is set, and sets ``enough`` after three of them."""

    def __init__(self, answers: dict[str, int | Exception]) -> None:
        self.answers = answers
        self.paths: list[str] = []
        self.digest = threading.Event()
        self.during = 0
        self.enough = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.raw_path.decode())
        client = request.url.path.removeprefix("/holders/")
        if self.digest.is_set():
            self.during += 1
            if self.during >= 3:
                self.enough.set()
        answer = self.answers[client]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={})


def reader(service: Service, clients: list[str]) -> HolderReader:
    return HolderReader(
        "http://svc", clients, timeout_s=5.0, transport=httpx.MockTransport(service)
    )


def test_idle_reads_then_reads_until_the_digest_ends() -> None:
    service = Service({"a": 200, "b/c": 404, "d": httpx.ReadTimeout("slow")})
    holders = reader(service, ["a", "b/c", "d"])
    idle = holders.idle(count=5, timeout_s=5.0)
    assert [r.status for r in idle] == [200, 404, NO_ANSWER, 200, 404]
    assert service.paths[:3] == ["/holders/a", "/holders/b%2Fc", "/holders/d"]
    service.digest.set()
    holders.begin_digest()
    assert service.enough.wait(5.0)
    holders.end_digest()
    during = holders.close()
    assert len(during) >= 3
    assert len(idle) + len(during) == len(service.paths)  # every read counted, once
    assert read_latency(during).non_200 == sum(1 for r in during if r.status != 200)


def test_no_read_starts_before_the_digest_begins_or_after_it_ends() -> None:
    service = Service({"a": 200})
    holders = reader(service, ["a"])
    holders.idle(count=2, timeout_s=5.0)
    assert len(service.paths) == 2  # waiting for begin_digest()
    assert holders.close() == []
    assert len(service.paths) == 2


def test_a_reader_failure_is_raised_in_the_bench_thread() -> None:
    holders = reader(Service({"a": ValueError("boom")}), ["a"])
    with pytest.raises(RuntimeError, match="the holder reader failed: ValueError"):
        holders.idle(count=3, timeout_s=5.0)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="no clients"):
        HolderReader("http://svc", [])
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        HolderReader("http://svc", ["a"], timeout_s=0)
    holders = reader(Service({"a": 200}), ["a"])
    with pytest.raises(ValueError, match="count must be at least 1"):
        holders.idle(count=0, timeout_s=1.0)
    holders.idle(count=1, timeout_s=5.0)
    with pytest.raises(RuntimeError, match="already started"):
        holders.idle(count=1, timeout_s=5.0)
    holders.close()
