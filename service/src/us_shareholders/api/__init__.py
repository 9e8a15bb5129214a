"""The HTTP API of one instance (FastAPI on uvicorn; OpenAPI at ``/openapi.json``), a router
per concern, each typed against the library's :class:`~streamtable.query.QueryableApp`:

    GET  /holders            whole cluster, a page at a time (?limit=&cursor=), sorted by
                             client; ?local=true: this instance
    GET  /holders/{client}   routed to the owner; 404 if not a US holder
    GET  /healthz            200 while the stream processing and the delivery worker are alive
    GET  /readyz             200 only when running and restored
    GET  /metrics            Prometheus
    GET  /digests            per partition of this instance: last week done, counts
    POST /digests/run        run this week's digest now (every partition; durable; idempotent)
    /query/...               the library's interactive-query server (any store)

Failures are answers with the library's error body: not ready or rebalancing -> 503 with
Retry-After; owner unreachable -> 504; a bad parameter -> 400; never a partial or wrong list.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.routing import Mount
from starlette.types import ASGIApp

from streamtable.query import ClusterQueries, QueryableApp, create_query_app
from us_shareholders.api.digests import digests_router
from us_shareholders.api.errors import failure_response
from us_shareholders.api.health import health_router
from us_shareholders.api.holders import holder_json, holders_router
from us_shareholders.digest import DigestControl
from us_shareholders.schedule import DigestSchedule, WeekId

__all__ = ["QUERY_MOUNT", "create_api", "failure_response", "holder_json"]

QUERY_MOUNT = "/query"
"""Where every instance serves the library's query server; reads forwarded between instances
go there."""
FORWARD_TIMEOUT_S = 5.0


def create_api(
    app: QueryableApp,
    control: DigestControl,
    schedule: DigestSchedule,
    registry: CollectorRegistry,
    request_digest: Callable[[WeekId, datetime], None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    delivery_alive: Callable[[], bool] = lambda: True,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """``request_digest(week, now)`` makes a digest request durable (the service writes it to
    the requests topic, read by every instance) and returns once the broker has it.
    ``transport`` replaces the network between instances (a test seam)."""
    queries = ClusterQueries(
        app, mount=QUERY_MOUNT, forward_timeout_s=FORWARD_TIMEOUT_S, transport=transport
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await queries.aclose()

    api = FastAPI(title="us-shareholders", version="0.1.0", lifespan=lifespan)
    api.include_router(health_router(app, registry, delivery_alive))
    api.include_router(holders_router(queries))
    api.include_router(digests_router(app, control, schedule, request_digest, clock))
    api.router.routes.append(_QueryMount(QUERY_MOUNT, create_query_app(app, transport=transport)))
    return api


class _QueryMount(Mount):
    """``api.mount(path, app)``, but the rest of the path may hold a newline, as a key may:
    Starlette matches it with ``.*``, which stops at one, so a holder whose client id has a
    newline, read from the instance that does not own it, was forwarded to the owner's
    ``/query/...``, got FastAPI's bare 404, and answered 504 ``owner_unreachable``."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(rf"^{re.escape(self.path)}/(?P<path>[\s\S]*)$")
