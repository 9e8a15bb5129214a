"""The HTTP API of one instance (FastAPI on uvicorn; OpenAPI at ``/openapi.json``).

    GET  /holders            whole cluster, sorted by client (fan-out); ?local=true: this instance
    GET  /holders/{client}   routed to the owner; 404 if not a US holder
    GET  /healthz            200 while the stream processing and the delivery worker are alive
    GET  /readyz             200 only when running and restored
    GET  /metrics            Prometheus
    GET  /digests            per partition of this instance: last week done, counts
    POST /digests/run        run this week's digest now (every partition; durable; idempotent)
    /query/...               the library's interactive-query server (any store)

Failures are answers: not ready or rebalancing -> 503 with Retry-After; owner unreachable -> 504;
never a partial or wrong list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

import streamtable as st
from streamtable.errors import StoreNotReady
from streamtable.query import FORWARDED_HEADER, FailureReason, create_query_app
from streamtable.query._local import local_get
from us_shareholders.digest import HOLDERS_STORE, PROGRESS_STORE, DigestControl
from us_shareholders.schedule import DigestSchedule, WeekId

RETRY_AFTER = {"Retry-After": "1"}
FORWARD_TIMEOUT_S = 5.0


def holder_json(client: str, positions: dict[str, Any]) -> dict[str, Any]:
    return {
        "client": client,
        "positions": [{"id": pid, **positions[pid]} for pid in sorted(positions)],
    }


def _unavailable(message: str) -> JSONResponse:
    return JSONResponse({"error": "not_ready", "message": message}, 503, headers=RETRY_AFTER)


def failure_response(reason: FailureReason | None, message: str) -> JSONResponse:
    """A query's failure as the library's query server answers it: the reason's value as
    ``error`` (``not_owner``, not ``FailureReason.NOT_OWNER``), its status, and ``Retry-After``
    when asking again may help."""
    if reason is None:
        return _unavailable(message)
    headers = RETRY_AFTER if reason.retriable else None
    return JSONResponse({"error": reason.value, "message": message}, reason.status, headers=headers)


ERROR_BODY: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                "required": ["error"],
            }
        }
    }
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "not ready (restoring, rebalancing)", **ERROR_BODY}
}


def create_api(
    app: st.StreamsApp,
    control: DigestControl,
    schedule: DigestSchedule,
    registry: CollectorRegistry,
    request_digest: Callable[[WeekId, datetime], None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    delivery_alive: Callable[[], bool] = lambda: True,
) -> FastAPI:
    """``request_digest(week, now)`` makes a digest request durable (the service writes it to
    the requests topic, read by every instance) and returns once the broker has it."""
    http = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()

    api = FastAPI(title="us-shareholders", version="0.1.0", lifespan=lifespan)
    api.mount("/query", create_query_app(app))

    def peers() -> list[str]:
        return [str(m.host_info) for m in app.all_metadata() if not m.is_local and m.host_info]

    async def fan_out(path: str) -> list[httpx.Response] | Response:
        try:
            calls = [
                http.get(f"http://{host}{path}", headers={FORWARDED_HEADER: "1"})
                for host in peers()
            ]
            return list(await asyncio.gather(*calls))
        except httpx.TimeoutException:
            return JSONResponse({"error": "owner_unreachable"}, 504)
        except httpx.HTTPError as exc:
            return JSONResponse({"error": "owner_unreachable", "message": str(exc)}, 504)

    def local_holders() -> list[dict[str, Any]]:
        before = app.local_metadata()
        holders = [holder_json(c, p) for c, p in app.store(HOLDERS_STORE).all()]
        if app.local_metadata().generation != before.generation:
            raise StoreNotReady(HOLDERS_STORE, "tasks moved during the read")
        return holders

    @api.get("/healthz")
    def healthz() -> JSONResponse:
        # A dead delivery worker would leave jobs unsent while everything else looks fine.
        alive = app.state.is_alive()
        delivering = delivery_alive()
        return JSONResponse(
            {
                "status": "ok" if alive and delivering else "down",
                "state": app.state.name,
                "delivery": "running" if delivering else "stopped",
            },
            200 if alive and delivering else 503,
        )

    @api.get("/readyz")
    def readyz() -> JSONResponse:
        if app.state is st.AppState.RUNNING:
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {"status": "not_ready", "state": app.state.name}, 503, headers=RETRY_AFTER
        )

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @api.get(
        "/holders",
        responses={**UNAVAILABLE, 504: {"description": "a peer did not answer", **ERROR_BODY}},
    )
    async def holders(request: Request, local: bool = False) -> Response:
        try:
            mine = local_holders()
        except StoreNotReady as exc:
            return _unavailable(str(exc))
        if local or request.headers.get(FORWARDED_HEADER):
            return JSONResponse(mine)
        # Every partition must be answered by a live owner, or the list would be partial.
        metadata = app.all_metadata()
        covered = {p for m in metadata for p in m.active.get(HOLDERS_STORE, ())}
        counts = [m.partition_counts.get(HOLDERS_STORE, 0) for m in metadata]
        if not counts or covered != set(range(max(counts))):
            return _unavailable("not every partition has a live owner (rebalancing)")
        replies = await fan_out("/holders?local=true")
        if isinstance(replies, Response):
            return replies
        merged = list(mine)
        for reply in replies:
            if reply.status_code != 200:
                return _unavailable(f"an instance answered {reply.status_code}")
            merged.extend(reply.json())
        return JSONResponse(sorted(merged, key=lambda h: h["client"]))

    @api.get(
        "/holders/{client}",
        responses={
            404: {"description": "the client holds no US stock", **ERROR_BODY},
            **UNAVAILABLE,
            504: {"description": "the owning instance did not answer", **ERROR_BODY},
        },
    )
    async def holder(request: Request, client: str) -> Response:
        try:
            where = app.metadata_for_key(HOLDERS_STORE, client)
        except StoreNotReady as exc:
            return _unavailable(str(exc))
        if where.is_local or request.headers.get(FORWARDED_HEADER):
            result = local_get(app, HOLDERS_STORE, client, allow_stale=False)
            if result.is_ok:
                return JSONResponse(holder_json(client, result.unwrap()))
            if result.reason is FailureReason.NOT_FOUND:
                return failure_response(result.reason, f"{client} holds no US stock")
            return failure_response(result.reason, result.message)
        if where.active_host is None:
            return _unavailable(f"no live owner known for {client}'s partition")
        try:
            reply = await http.get(
                f"http://{where.active_host}/holders/{client}", headers={FORWARDED_HEADER: "1"}
            )
        except httpx.HTTPError as exc:
            return JSONResponse({"error": "owner_unreachable", "message": str(exc)}, 504)
        return Response(
            reply.content,
            reply.status_code,
            headers=_passed(reply.headers),
            media_type="application/json",
        )

    @api.get("/digests")
    def digests() -> Response:
        try:
            answers = control.answers()
            partitions = [
                {"partition": p, **state, "request_answered": answers.get(p)}
                for p, state in app.store(PROGRESS_STORE).all()
            ]
        except StoreNotReady as exc:
            return _unavailable(str(exc))
        now = clock()
        return JSONResponse(
            {
                "schedule": str(schedule),
                "current_week": str(schedule.week_of(now)),
                "next_run": schedule.next_scheduled_at(now).isoformat(),
                "partitions": partitions,
            }
        )

    @api.post("/digests/run", status_code=202)
    def run_digest() -> Response:
        # Durable, not in memory: every instance reads the request from the requests topic, so
        # it reaches each partition even if an instance crashes or restarts right after it.
        now = clock()
        week = schedule.week_of(now)
        try:
            request_digest(week, now)
        except Exception as exc:  # the broker did not take it: nothing was requested
            return _unavailable(f"the digest request could not be written: {exc}")
        return JSONResponse({"week": str(week), "status": "requested"}, 202)

    return api


def _passed(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() == "retry-after"}
