"""``GET /holders`` (the whole cluster, a page at a time, sorted by client) and
``GET /holders/{client}`` (from the instance that owns the client), on the library's
:class:`~streamtable.query.ClusterQueries`: its fan-out, coverage check and forwarding.

A page: ``GET /holders?limit=N&cursor=C`` -> ``{"holders": [...], "next_cursor": C2 or null}``;
pass ``next_cursor`` back as ``cursor`` until it is null. ``?local=true``: this instance's
partitions only (paged the same way).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from streamtable.query import (
    FORWARDED_HEADER,
    MAX_LIMIT,
    ClusterQueries,
    FailureReason,
    parse_flag,
    parse_scan_params,
    render,
)
from us_shareholders.api.errors import documented, failure_response
from us_shareholders.digest import HOLDERS_STORE

DEFAULT_LIMIT = 1000
"""Holders in a page of ``GET /holders`` when ``limit`` is not given."""


class Position(BaseModel):
    id: str
    ticker: str
    exchange: str
    amount: float


class Holder(BaseModel):
    """A client's US positions, sorted by id."""

    client: str
    positions: list[Position]


class HoldersPage(BaseModel):
    """Holders sorted by client; ``next_cursor`` is null on the last page."""

    holders: list[Holder]
    next_cursor: str | None = Field(description="pass back as cursor for the next page")


def holder_json(client: str, positions: dict[str, Any]) -> dict[str, Any]:
    return {
        "client": client,
        "positions": [{"id": pid, **positions[pid]} for pid in sorted(positions)],
    }


def holders_router(queries: ClusterQueries) -> APIRouter:
    router = APIRouter()
    key_serde = queries.app.topology.stores[HOLDERS_STORE].key_serde

    @router.get(
        "/holders",
        response_model=HoldersPage,
        responses=documented(400, 503, 504, s400="bad_request: limit, cursor or local"),
    )
    async def holders(
        request: Request,
        limit: str | None = Query(None, description=f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}"),
        cursor: str | None = Query(None, description="the next_cursor of the previous page"),
        local: str | None = Query(None, description="this instance only: true/false, 1/0"),
    ) -> Response:
        # The parameters are read as text and parsed by the library, so that a bad one is
        # answered with the library's error body (400 bad_request), not FastAPI's 422.
        params = request.query_params
        only_here = parse_flag(params, "local")
        if not only_here.is_ok:
            return failure_response(only_here.reason, only_here.message)
        paging = {name: params[name] for name in ("limit", "cursor") if name in params}
        parsed = parse_scan_params(paging, key_serde, default_limit=DEFAULT_LIMIT)
        if not parsed.is_ok:
            return failure_response(parsed.reason, parsed.message)
        forwarded = FORWARDED_HEADER in request.headers
        page = await queries.scan(
            HOLDERS_STORE, parsed.unwrap(), local=only_here.unwrap() or forwarded
        )
        if not page.is_ok:
            return failure_response(page.reason, page.message)
        found = page.unwrap()
        return JSONResponse(
            {
                "holders": [holder_json(c, render(p)) for _, c, p in found.items],
                "next_cursor": found.next_cursor,
            }
        )

    @router.get(
        "/holders/{client}",
        response_model=Holder,
        responses=documented(404, 503, 504, s404="not_found: the client holds no US stock"),
    )
    async def holder(request: Request, client: str) -> Response:
        found = await queries.get(
            HOLDERS_STORE, client, forwarded=FORWARDED_HEADER in request.headers
        )
        if found.reason is FailureReason.NOT_FOUND:
            return failure_response(found.reason, f"{client} holds no US stock")
        if not found.is_ok:
            return failure_response(found.reason, found.message)
        return JSONResponse(holder_json(client, found.unwrap()[1]))

    return router
