"""``GET /healthz``, ``GET /readyz`` and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel

import streamtable as st
from streamtable.query import QueryableApp
from us_shareholders.api.errors import RETRY_AFTER_S


class Health(BaseModel):
    """``status`` ok or down; the app's ``state``; the delivery worker running or stopped."""

    status: str
    state: str
    delivery: str


class Readiness(BaseModel):
    """``status`` ready or not_ready (then the app's ``state``)."""

    status: str
    state: str | None = None


def _also(status: int, model: type[BaseModel], description: str) -> dict[int | str, Any]:
    return {status: {"model": model, "description": description}}


def health_router(
    app: QueryableApp, registry: CollectorRegistry, delivery_alive: Callable[[], bool]
) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/healthz",
        response_model=Health,
        responses=_also(503, Health, "the stream processing or the delivery worker stopped"),
    )
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

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses=_also(503, Readiness, "not running, or restoring: retry after Retry-After"),
    )
    def readyz() -> JSONResponse:
        if app.state is st.AppState.RUNNING:
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {"status": "not_ready", "state": app.state.name},
            503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
