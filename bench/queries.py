"""W3: interactive queries over HTTP, streamtable only (Kafka Streams has no query server).

``run_w3(ctx)`` (called by ``bench/run.py``) produces ``keys`` positions (one record per key) to
a fresh topic, starts two instances of a one-table topology (``positions-store``) in separate
processes, each serving ``create_query_app(app)`` with uvicorn on 127.0.0.1 and advertising it as
its ``application_server``, waits until the group has committed the whole topic and a cluster
scan is possible, and then measures:

* local gets: ``app.store("positions-store").get(key)`` in instance A's process for random keys
  A owns (``GET /bench/local-gets`` runs the loop there and answers the percentiles);
* routed gets: ``GET /stores/positions-store/keys/{key}`` sent to A (httpx, keep-alive) for keys
  B owns, so A forwards each one to B;
* a full scan: ``GET /stores/positions-store?limit=N`` on A, following ``next_cursor``
  (A merges its own page with B's), counting the keys; once with the largest page the server
  allows (N = 10,000: ``scan_s``) and once with N = 1,000 (``scan_s_by_limit``).

``python -m bench.queries serve --bootstrap B --application-id A --input T --state-dir D --port P``
is one instance; it prints ``STATE <state>`` on every change and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

import streamtable as st
from bench.datagen import DataSettings, create_topic, produce
from bench.harness import STATE_ROOT, Child, Ctx, free_port, log
from bench.results import LocalGets, Percentiles, QueriesResult
from streamtable.query import create_query_app
from streamtable.serde import JSON, STRING

STORE = "positions-store"
SCAN_LIMITS = (10_000, 1_000)  # the largest page the server allows, and a tenth of it


def table_topology(input_topic: str) -> st.Topology:
    b = st.StreamsBuilder()
    b.table(input_topic, key_serde=STRING, value_serde=JSON, store=STORE)
    return b.build()


def percentiles(samples_ns: list[int]) -> Percentiles:
    """p50, p99 and mean of ``samples_ns`` (nanoseconds), in milliseconds."""
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 4)

    return Percentiles(
        p50_ms=at(0.50),
        p99_ms=at(0.99),
        mean_ms=round(statistics.fmean(ordered) / 1e6, 4),
        n=len(ordered),
    )


# -- one instance (a child process) ---------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    config = st.StreamsConfig(
        application_id=args.application_id,
        bootstrap_servers=args.bootstrap,
        state_dir=Path(args.state_dir),
        application_server=f"127.0.0.1:{args.port}",
    )
    app = st.StreamsApp(table_topology(args.input), config)

    def local_gets(request: Request) -> dict[str, Any]:
        n = int(request.query_params.get("n", "20000"))
        store = app.store(STORE)
        keys = [k for k, _ in store.all()]
        rng = random.Random(int(request.query_params.get("seed", "1")))
        chosen = [rng.choice(keys) for _ in range(n)]
        for key in chosen[:500]:  # warm-up
            store.get(key)
        samples: list[int] = []
        missing = 0
        for key in chosen:
            started = time.perf_counter_ns()
            value = store.get(key)
            samples.append(time.perf_counter_ns() - started)
            missing += value is None
        return {"local_keys": len(keys), "missing": missing, **percentiles(samples).model_dump()}

    async def local_gets_route(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(local_gets, request))

    web = Starlette(
        routes=[
            Route("/bench/local-gets", local_gets_route, methods=["GET"]),
            Mount("/", app=create_query_app(app)),
        ]
    )
    server = uvicorn.Server(
        uvicorn.Config(web, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="bench-http", daemon=True)
    thread.start()

    def on_state(old: st.AppState, new: st.AppState) -> None:
        sys.stdout.write(f"STATE {new.name}\n")
        sys.stdout.flush()

    app.add_state_listener(on_state)
    try:
        return app.run_until_signal()
    finally:
        server.should_exit = True
        thread.join(10)


# -- the measurement (in bench/run.py's process) --------------------------------------------------


def run_w3(ctx: Ctx) -> QueriesResult:
    """W3 in ``ctx``'s run, with its settings (``BENCH_W3_KEYS``) and a timeout of 300 s at most."""
    return measure(
        ctx, ports=(free_port(), free_port()), timeout_s=min(ctx.settings.timeout_s, 300)
    )


def _wait(
    what: str, check: Callable[[], bool], timeout_s: float, alive: Callable[[], None]
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        alive()
        if check():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"W3: timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


def measure(
    ctx: Ctx,
    *,
    ports: tuple[int, int],
    local_gets: int = 20_000,
    routed_gets: int = 2_000,
    timeout_s: float = 300.0,
) -> QueriesResult:
    """See the module docstring: two instances on ``ports``, then the three measurements."""
    topic = f"{ctx.run_id}-w3-positions"
    app_id = f"{ctx.run_id}-w3"
    keys = ctx.settings.w3_keys
    create_topic(ctx.offsets.admin, topic, ctx.settings.data.partitions)
    data = DataSettings(records=keys, positions=keys, clients=1000)
    produced = produce(ctx.bootstrap, topic, data)
    log(f"W3: produced {produced:,} keys to {topic}; starting two query instances")
    children: list[Child] = []
    try:
        for name, port in zip(("w3-a", "w3-b"), ports, strict=True):
            argv = [
                sys.executable, "-m", "bench.queries", "serve",
                "--bootstrap", ctx.bootstrap,
                "--application-id", app_id,
                "--input", topic,
                "--state-dir", str(STATE_ROOT / f"{app_id}-{name}"),
                "--port", str(port),
            ]  # fmt: skip
            children.append(ctx.child(argv, name))

        def alive() -> None:
            for child in children:
                child.check_alive()

        started = time.monotonic()
        caught_up = _caught_up(ctx, app_id, topic)
        _wait("the group to commit the whole topic", caught_up, timeout_s, alive)
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        with httpx.Client(timeout=30) as http:
            _wait("a cluster scan to be possible", _scannable(http, a, b), timeout_s, alive)
            log(f"W3: both instances ready after {time.monotonic() - started:.1f}s")
            local = _local_gets(http, a, local_gets)
            routed = _routed_gets(http, a, b, routed_gets)
            scans = {limit: _checked_scan(http, a, limit, produced) for limit in SCAN_LIMITS}
    finally:
        for child in children:
            child.stop()
    seen, pages, scan_s = scans[SCAN_LIMITS[0]]
    return QueriesResult(
        keys=produced,
        local_get=local,
        routed_get=routed,
        scan_s=round(scan_s, 3),
        scan_keys=seen,
        scan_pages=pages,
        scan_s_by_limit={str(limit): round(s, 3) for limit, (_, _, s) in scans.items()},
    )


def _caught_up(ctx: Ctx, app_id: str, topic: str) -> Callable[[], bool]:
    """Whether the group has committed the whole topic (as it is now)."""
    end = ctx.offsets.ends(topic)
    if end is None:
        raise RuntimeError(f"W3: no metadata for {topic}")

    def check() -> bool:
        done = ctx.offsets.committed(app_id)
        return all(done.get((topic, p), 0) >= e for p, e in end.items())

    return check


def _scannable(http: httpx.Client, a: str, b: str) -> Callable[[], bool]:
    """Whether A answers a cluster scan and B a local one."""

    def check() -> bool:
        try:
            reply = http.get(f"{a}/stores/{STORE}", params={"limit": 1})
            owned = http.get(f"{b}/stores/{STORE}", params={"local": "true", "limit": 1})
        except httpx.HTTPError:
            return False
        return reply.status_code == 200 and owned.status_code == 200

    return check


def _local_gets(http: httpx.Client, a: str, n: int) -> LocalGets:
    local = http.get(f"{a}/bench/local-gets", params={"n": n}, timeout=120)
    local.raise_for_status()
    stats = LocalGets.model_validate(local.json())
    log(f"W3: local gets on A: {stats.model_dump()}")
    return stats


def _owned_keys(http: httpx.Client, b: str, n: int) -> list[str]:
    """At least ``n`` keys B owns (or all of them): B's own part of the store, page by page."""
    keys: list[str] = []
    cursor: str | None = None
    while len(keys) < n:
        params: dict[str, Any] = {"local": "true", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = http.get(f"{b}/stores/{STORE}", params=params)
        page.raise_for_status()
        body = page.json()
        keys += [item["key"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    return keys


def _routed_gets(http: httpx.Client, a: str, b: str, n: int) -> Percentiles:
    """``n`` gets sent to A of random keys B owns (A forwards each to B)."""
    b_keys = _owned_keys(http, b, n)
    rng = random.Random(3)
    rng.shuffle(b_keys)
    b_keys = b_keys[:n]
    for key in b_keys[:100]:  # warm-up (A's connection pool to B)
        http.get(f"{a}/stores/{STORE}/keys/{key}").raise_for_status()
    samples: list[int] = []
    for key in b_keys:
        t0 = time.perf_counter_ns()
        reply = http.get(f"{a}/stores/{STORE}/keys/{key}")
        samples.append(time.perf_counter_ns() - t0)
        if reply.status_code != 200:
            raise RuntimeError(f"W3: routed get of {key!r}: {reply.status_code}")
    routed = percentiles(samples)
    log(f"W3: routed gets A -> B: {routed.model_dump()}")
    return routed


def _checked_scan(http: httpx.Client, a: str, limit: int, produced: int) -> tuple[int, int, float]:
    """A full scan on A in pages of ``limit``, which must see every key produced."""
    seen, pages, scan_s = _scan(http, f"{a}/stores/{STORE}", limit)
    log(f"W3: full scan, limit {limit}: {seen:,} keys in {pages} pages, {scan_s:.2f}s")
    if seen != produced:
        raise RuntimeError(f"W3: the scan saw {seen:,} keys, expected {produced:,}")
    return seen, pages, scan_s


def _scan(http: httpx.Client, url: str, limit: int) -> tuple[int, int, float]:
    """Follow ``next_cursor`` from the first page to the last: (keys, pages, seconds)."""
    seen = pages = 0
    cursor = None
    t0 = time.perf_counter_ns()
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        reply = http.get(url, params=params)
        if reply.status_code != 200:
            raise RuntimeError(f"W3: scan page {pages}: {reply.status_code} {reply.text}")
        body = reply.json()
        seen += len(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            return seen, pages, (time.perf_counter_ns() - t0) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queries")
    parser.add_argument("mode", choices=["serve"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--application-id", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
