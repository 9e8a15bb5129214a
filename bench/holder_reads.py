"""W5's reads: ``GET /holders/{client}`` while the service is idle and while it digests.

Issue #11 asks that a read answers within its usual latency during a digest run (before, a read
waited for the processing thread: 13-19 s during a digest). :class:`HolderReader` issues the
reads one at a time on a thread of the bench process (httpx, keep-alive), cycling through a
seeded sample of clients that hold US stock (:func:`holder_sample`), in two phases:

    reader = HolderReader(base, holder_sample(data, VenueMatcher()))
    idle = reader.idle(count=300, timeout_s=60)  # the first phase, once the service caught up
    reader.begin_digest()                         # then POST /digests/run ...
    reader.end_digest()                           # ... until every job is on the digests topic
    during = reader.close()
    idle_figures, during_figures = read_latency(idle), read_latency(during)

Every request counts, whatever its answer: a non-200 answer is counted (``non_200``), and a
request without an answer (timeout, connection error; status 0) counts its time until it failed.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bench.queries import percentiles
from bench.results import HolderReads
from us_shareholders.venues import VenueMatcher

NO_ANSWER = 0
"""The status of a read that got no answer (timeout, connection error)."""


@dataclass(frozen=True)
class Read:
    """One ``GET /holders/{client}``: its time (nanoseconds) and its status."""

    ns: int
    status: int


def read_latency(reads: Sequence[Read]) -> HolderReads:
    """Count, p50, p99 and max (milliseconds, p50/p99 as :func:`bench.queries.percentiles`
    takes them) and the reads not answered 200; no figures (``None``) when there are no reads."""
    if not reads:
        return HolderReads(n=0, p50_ms=None, p99_ms=None, max_ms=None, non_200=0)
    stats = percentiles([r.ns for r in reads])
    return HolderReads(
        n=stats.n,
        p50_ms=stats.p50_ms,
        p99_ms=stats.p99_ms,
        max_ms=round(max(r.ns for r in reads) / 1e6, 4),
        non_200=sum(1 for r in reads if r.status != 200),
    )


def holder_sample(
    data: dict[str, list[tuple[str, Any]]], venues: VenueMatcher, n: int = 200, seed: int = 11
) -> list[str]:
    """``n`` clients (all of them if fewer) holding US stock once ``data`` (``demo.generate``'s
    records per topic) is loaded, picked at random with ``seed``."""
    if n < 1:
        raise ValueError(f"holder_sample: n must be at least 1, not {n}")
    final = dict(data["positions"])  # the last value per position id (None: closed)
    holders = sorted(
        {p["client"] for p in final.values() if p is not None and venues.is_us(p["exchange"])}
    )
    return random.Random(seed).sample(holders, min(n, len(holders)))


class HolderReader:
    """``GET {base}/holders/{client}`` in a loop on its own thread, one request at a time."""

    def __init__(
        self,
        base: str,
        clients: Sequence[str],
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport``: httpx's default unless given (tests pass an ``httpx.MockTransport``)."""
        if not clients:
            raise ValueError("HolderReader: no clients to read")
        if timeout_s <= 0:
            raise ValueError(f"HolderReader: timeout_s must be positive, not {timeout_s}")
        self._urls = [f"{base}/holders/{quote(c, safe='')}" for c in clients]
        self._timeout_s = timeout_s
        self._transport = transport
        self._idle: list[Read] = []
        self._during: list[Read] = []
        self._idle_done = threading.Event()
        self._digest = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def idle(self, count: int, timeout_s: float) -> list[Read]:
        """Start the thread and return its first ``count`` reads once they are done."""
        if count < 1:
            raise ValueError(f"HolderReader.idle: count must be at least 1, not {count}")
        if self._thread is not None:
            raise RuntimeError("HolderReader.idle: already started")
        self._thread = threading.Thread(
            target=self._run, args=(count,), name="w5-holder-reads", daemon=True
        )
        self._thread.start()
        if not self._idle_done.wait(timeout_s):
            self.close()
            raise RuntimeError(f"W5: {len(self._idle)} of {count} idle reads after {timeout_s}s")
        self._raise_error()
        return list(self._idle)

    def begin_digest(self) -> None:
        """The thread reads on (the "during digest" reads) until :meth:`end_digest`."""
        self._digest.set()

    def end_digest(self) -> None:
        """No read starts after this; the one in flight, if any, still counts. Does not wait."""
        self._stopped.set()
        self._digest.set()

    def close(self) -> list[Read]:
        """Stop (as :meth:`end_digest`), wait for the thread and return the "during digest"
        reads; raises what the thread raised."""
        self.end_digest()
        if self._thread is not None:
            self._thread.join(self._timeout_s + 5)
            if self._thread.is_alive():
                raise RuntimeError("W5: the holder reader did not stop")
        self._raise_error()
        return list(self._during)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"W5: the holder reader failed: {self._error!r}") from self._error

    def _run(self, idle_count: int) -> None:
        urls = itertools.cycle(self._urls)
        try:
            with httpx.Client(timeout=self._timeout_s, transport=self._transport) as http:
                while len(self._idle) < idle_count and not self._stopped.is_set():
                    self._idle.append(_read(http, next(urls)))
                self._idle_done.set()
                self._digest.wait()
                while not self._stopped.is_set():
                    self._during.append(_read(http, next(urls)))
        except Exception as exc:  # handed to the bench's thread by close() or idle()
            self._error = exc
        finally:
            self._idle_done.set()


def _read(http: httpx.Client, url: str) -> Read:
    started = time.perf_counter_ns()
    try:
        status = http.get(url).status_code
    except httpx.HTTPError:
        status = NO_ANSWER
    return Read(time.perf_counter_ns() - started, status)
