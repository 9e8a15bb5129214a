"""The HTTP query server: an ASGI app (Starlette) over one :class:`~streamtable.StreamsApp`.

Routes::

    GET /stores/{store}/keys/{key}     the value of one key, from the instance that owns it
    GET /stores/{store}                a scan: ?from=&to=&prefix=&limit=&cursor= (&local=true)
    GET /stores/{store}/windows/{key}  a window store's windows of one key starting in
                                       ?time_from=&time_to= (epoch ms), from the key's owner
    GET /stores/{store}/windows        a page of every key's windows starting in
                                       ?time_from=&time_to=, &limit=&cursor= (&local=true);
                                       without the times, all of them (``all()``)
    GET /stores/{store}/sessions/{key} a session store's sessions of one key that end at or
                                       after ?time_from= and start at or before &time_to=
                                       (without them ``fetch(key)``), from the key's owner
    GET /instances                     the live instances and their partitions per store
    GET /openapi.json                  the OpenAPI document of these routes

``?stale=true`` on the store routes opts in to stale reads (restoring tasks answer). A store
asked for at another type's routes (a window store at a key-value route, a key-value store at a
session route...) is a ``bad_request`` whose message says where to ask.

Keys are routed and scans fanned out by :class:`~streamtable.query.ClusterQueries` (see there:
one forwarding hop, a scan covers every partition exactly once or fails). Mounted under a path
(``api.mount("/query", create_query_app(app))``), it forwards to the same path on its peers.

Failures are :class:`QueryResult` values mapped to status codes: ``not_ready``/``not_owner`` 503
with ``Retry-After``, ``not_found``/``unknown_store`` 404, ``bad_key``/``bad_request`` 400,
``owner_unreachable`` 504. Error bodies are ``{"error": reason, "message": ..., "store": ...}``;
a path or method it does not serve answers 404 or 405 with ``{"error": "bad_request", ...}``.

Example::

    import uvicorn
    from streamtable.query import create_query_app

    uvicorn.run(create_query_app(app), host="0.0.0.0", port=8080)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streamtable.query._cluster import ClusterQueries
from streamtable.query._local import QueryableApp
from streamtable.query._openapi import openapi_document
from streamtable.query._pages import COLUMNS, columns_body, text_keys
from streamtable.query._params import (
    parse_flag,
    parse_scan_params,
    parse_time_range,
    parse_window_params,
)
from streamtable.query._peers import FORWARDED_HEADER
from streamtable.query._responses import error_response, instance_body, json_response, page_body
from streamtable.query._result import FailureReason, QueryResult
from streamtable.query._windows import WindowRequest, window_page_body
from streamtable.topology import StoreSpec


def create_query_app(
    app: QueryableApp,
    *,
    forward_timeout_s: float = 2.0,
    retry_after_s: int = 1,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """An ASGI app serving interactive queries on ``app`` (see the module docstring).

    ``forward_timeout_s`` bounds each call to another instance; ``retry_after_s`` is sent with
    every retriable failure; ``transport`` replaces the network for calls between instances
    (a test seam, e.g. ``httpx.ASGITransport``).
    """
    queries = ClusterQueries(app, forward_timeout_s=forward_timeout_s, transport=transport)
    server = _QueryServer(queries, retry_after_s)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await queries.aclose()

    return Starlette(
        routes=[
            Route("/instances", server.instances, methods=["GET"]),
            Route("/openapi.json", server.openapi, methods=["GET"]),
            Route("/stores/{store}", server.scan, methods=["GET"]),
            Route("/stores/{store}/keys/{key:anykey}", server.get_key, methods=["GET"]),
            Route("/stores/{store}/windows", server.fetch_all, methods=["GET"]),
            Route("/stores/{store}/windows/{key:anykey}", server.fetch, methods=["GET"]),
            Route("/stores/{store}/sessions/{key:anykey}", server.find_sessions, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={404: _no_route, 405: _no_route},
    )


class _QueryServer:
    def __init__(self, queries: ClusterQueries, retry_after_s: int) -> None:
        self.queries = queries
        self.retry_after_s = retry_after_s

    async def instances(self, request: Request) -> Response:
        found = await run_in_threadpool(self.queries.app.all_metadata)
        return json_response(200, {"instances": [instance_body(m) for m in found]})

    async def openapi(self, request: Request) -> Response:
        return json_response(200, _document(_mount_path(request)))

    async def get_key(self, request: Request) -> Response:
        store = request.path_params["store"]
        stale = parse_flag(request.query_params, "stale")
        if not stale.is_ok:
            return self._failure(store, stale)
        found = await self.queries.get(
            store,
            request.path_params["key"],
            stale=stale.unwrap(),
            forwarded=FORWARDED_HEADER in request.headers,
            mount=_mount_path(request),
        )
        if not found.is_ok:
            return self._failure(store, found)
        key, value = found.unwrap()
        return json_response(200, {"store": store, "key": key, "value": value})

    async def scan(self, request: Request) -> Response:
        store = request.path_params["store"]
        params = request.query_params
        asked = self._page_of_store(request, "key_value")
        if not asked.is_ok:
            return self._failure(store, asked)
        spec, only_here, stale = asked.unwrap()
        parsed = parse_scan_params(params, spec.key_serde)
        if not parsed.is_ok:
            return self._failure(store, parsed)
        page = await self.queries.scan(
            store, parsed.unwrap(), local=only_here, stale=stale, mount=_mount_path(request)
        )
        if not page.is_ok:
            return self._failure(store, page)
        if FORWARDED_HEADER in request.headers and params.get("format") == COLUMNS:
            keys_are_text = text_keys(self.queries.app, store)
            return json_response(200, columns_body(store, page.unwrap(), keys_are_text))
        return json_response(200, page_body(store, page.unwrap(), with_cursors=only_here))

    async def fetch(self, request: Request) -> Response:
        """One key's windows in a time range, from the instance that owns the key."""
        return await self._key_in_time_range(request, "windows")

    async def find_sessions(self, request: Request) -> Response:
        """One key's sessions overlapping a time range, from the instance that owns the key."""
        return await self._key_in_time_range(request, "sessions")

    async def _key_in_time_range(self, request: Request, field: str) -> Response:
        """``{"store", "key", field: [...]}``: a window store's ``fetch`` (``windows``) or a
        session store's ``find_sessions`` (``sessions``) of the key in the path, bounded by
        ``time_from`` and ``time_to``."""
        store = request.path_params["store"]
        stale = parse_flag(request.query_params, "stale")
        if not stale.is_ok:
            return self._failure(store, stale)
        spec = self.queries.queryable(store, _STORE_TYPE[field])
        if not spec.is_ok:
            return self._failure(store, spec)
        times = parse_time_range(request.query_params)
        if not times.is_ok:
            return self._failure(store, times)
        key_text = request.path_params["key"]
        routing: dict[str, Any] = {
            "stale": stale.unwrap(),
            "forwarded": FORWARDED_HEADER in request.headers,
            "mount": _mount_path(request),
        }
        if field == "windows":
            found = await self.queries.fetch(
                store, key_text, WindowRequest(*times.unwrap()), **routing
            )
        else:
            found = await self.queries.find_sessions(store, key_text, *times.unwrap(), **routing)
        if not found.is_ok:
            return self._failure(store, found)
        key, items = found.unwrap()
        return json_response(200, {"store": store, "key": key, field: items})

    async def fetch_all(self, request: Request) -> Response:
        """A page of every key's windows in a time range, over every instance."""
        store = request.path_params["store"]
        asked = self._page_of_store(request, "window")
        if not asked.is_ok:
            return self._failure(store, asked)
        _, only_here, stale = asked.unwrap()
        parsed = parse_window_params(request.query_params)
        if not parsed.is_ok:
            return self._failure(store, parsed)
        page = await self.queries.fetch_all(
            store, parsed.unwrap(), local=only_here, stale=stale, mount=_mount_path(request)
        )
        if not page.is_ok:
            return self._failure(store, page)
        return json_response(200, window_page_body(store, page.unwrap(), with_cursors=only_here))

    def _page_of_store(
        self, request: Request, store_type: str
    ) -> QueryResult[tuple[StoreSpec, bool, bool]]:
        """A page request's store spec, whether to read this instance only (``local=true``,
        or a peer asked for its part) and ``stale``; or the first failure."""
        flags = _flags(request.query_params, "local", "stale")
        if not flags.is_ok:
            return QueryResult.failure(FailureReason.BAD_REQUEST, flags.message)
        local, stale = flags.unwrap()
        spec = self.queries.queryable(request.path_params["store"], store_type)
        if not spec.is_ok:
            assert spec.reason is not None
            return QueryResult.failure(spec.reason, spec.message)
        only_here = local or FORWARDED_HEADER in request.headers
        return QueryResult.ok((spec.unwrap(), only_here, stale))

    def _failure(self, store: str, result: QueryResult[Any]) -> Response:
        assert result.reason is not None
        return error_response(
            result.reason, result.message, store=store, retry_after_s=self.retry_after_s
        )


_STORE_TYPE = {"windows": "window", "sessions": "session"}
"""The store type each keyed time-range route serves, by its answer's field."""


@lru_cache(maxsize=8)
def _document(mount: str) -> dict[str, Any]:
    return openapi_document(mount)


def _flags(params: Mapping[str, str], *names: str) -> QueryResult[tuple[bool, ...]]:
    """The true/false parameters ``names``, or the first one's failure."""
    values = []
    for name in names:
        flag = parse_flag(params, name)
        if not flag.is_ok:
            return QueryResult.failure(FailureReason.BAD_REQUEST, flag.message)
        values.append(flag.unwrap())
    return QueryResult.ok(tuple(values))


def _mount_path(request: Request) -> str:
    """Where this server is mounted (``/query`` under ``app.mount("/query", ...)``; empty at
    the root): peers run the same server at the same path, so a forward goes there too."""
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _no_route(request: Request, exc: Exception) -> Response:
    """A path or method this server does not serve, answered with its own error body (not a
    bare text 404); a 405 keeps the router's ``Allow`` header (RFC 9110 requires it)."""
    status = getattr(exc, "status_code", 404)
    message = f"no route for {request.method} {request.url.path!r}"
    body = {"error": FailureReason.BAD_REQUEST.value, "message": message}
    return json_response(status, body, getattr(exc, "headers", None))


class _AnyKey(Convertor[str]):
    """A key: any text, newlines included (Starlette's ``path`` stops at one, and such a key
    fell through to a bare 404)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anykey", _AnyKey())
