"""The HTTP query server: an ASGI app (Starlette) over one :class:`~streamtable.StreamsApp`.

Routes::

    GET /stores/{store}/keys/{key}   the value of one key, from the instance that owns it
    GET /stores/{store}              a scan: ?from=&to=&prefix=&limit=&cursor= (&local=true)
    GET /instances                   the live instances and their partitions per store

``?stale=true`` on the store routes opts in to stale reads (restoring tasks answer).

A key request is answered locally when this instance owns the key's partition and forwarded
otherwise (one hop: a forwarded request carries :data:`FORWARDED_HEADER` and is never forwarded
again; the receiver answers ``not_owner`` if the metadata was stale). A cluster scan asks every
instance for its part (``local=true``) and merges the pages in serialized-key order, the order of
the opaque ``cursor``; it fails, rather than answering partially, unless the instances' parts
cover every partition of the store exactly once. Mounted under a path (``api.mount("/query",
create_query_app(app))``), it forwards to the same path on its peers.

Failures are :class:`QueryResult` values mapped to status codes: ``not_ready``/``not_owner`` 503
with ``Retry-After``, ``not_found``/``unknown_store`` 404, ``bad_key``/``bad_request`` 400,
``owner_unreachable`` 504. Error bodies are ``{"error": reason, "message": ..., "store": ...}``.

Example::

    import uvicorn
    from streamtable.query import create_query_app

    uvicorn.run(create_query_app(app), host="0.0.0.0", port=8080)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streamtable.errors import SerializationError, StoreNotFound, StoreNotReady
from streamtable.query._codec import (
    cursor_key,
    decode_cursor,
    dumps,
    encode_cursor,
    parse_key,
    prefix_bytes,
    render,
)
from streamtable.query._local import (
    QueryableApp,
    ScanPage,
    ScanRequest,
    is_global,
    local_get,
    local_scan,
)
from streamtable.query._result import FailureReason, QueryResult
from streamtable.runtime._metadata import HostInfo, StreamsMetadata
from streamtable.serde import StringSerde
from streamtable.topology import StoreSpec

FORWARDED_HEADER = "x-streamtable-forwarded"
"""Set on requests one instance sends another; such a request is answered locally or refused."""

COLUMNS = "columns"
"""``format=columns``: the compact page one instance asks another for in a cluster scan."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

Body = dict[str, Any]


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
    server = _QueryServer(app, forward_timeout_s, retry_after_s, transport)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await server.aclose()

    return Starlette(
        routes=[
            Route("/instances", server.instances, methods=["GET"]),
            Route("/stores/{store}", server.scan, methods=["GET"]),
            Route("/stores/{store}/keys/{key:anykey}", server.get_key, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={404: _no_route, 405: _no_route},
    )


class _QueryServer:
    def __init__(
        self,
        app: QueryableApp,
        timeout_s: float,
        retry_after_s: int,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    # -- routes ------------------------------------------------------------------------------
    async def instances(self, request: Request) -> Response:
        found = await run_in_threadpool(self.app.all_metadata)
        return _json(200, {"instances": [_instance_body(m) for m in found]})

    async def get_key(self, request: Request) -> Response:
        store = request.path_params["store"]
        key_text = request.path_params["key"]
        forwarded = FORWARDED_HEADER in request.headers
        stale = _flag(request.query_params, "stale")
        if stale.reason is not None:
            return self._respond(store, QueryResult.failure(stale.reason, stale.message))
        result = await self._get_key(
            store, key_text, forwarded, stale.unwrap(), _mount_path(request)
        )
        return self._respond(store, result)

    async def scan(self, request: Request) -> Response:
        store = request.path_params["store"]
        params = request.query_params
        forwarded = FORWARDED_HEADER in request.headers
        local, stale = _flag(params, "local"), _flag(params, "stale")
        for bad in (local, stale):
            if bad.reason is not None:
                return self._respond(store, QueryResult.failure(bad.reason, bad.message))
        result = await self._scan(
            store, params, local.unwrap() or forwarded, stale.unwrap(), forwarded,
            _mount_path(request),
        )  # fmt: skip
        return self._respond(store, result)

    def _queryable(self, store: str) -> QueryResult[StoreSpec]:
        """The store's spec, if it exists and the app is alive to answer for it."""
        spec = self.app.topology.stores.get(store)
        if spec is None:
            return QueryResult.failure(FailureReason.UNKNOWN_STORE, f"no store named {store!r}")
        if not self.app.state.is_alive():
            return QueryResult.failure(FailureReason.NOT_READY, f"the app is {self.app.state.name}")
        return QueryResult.ok(spec)

    # -- key lookups -------------------------------------------------------------------------
    async def _get_key(
        self, store: str, key_text: str, forwarded: bool, stale: bool, mount: str
    ) -> QueryResult[Body]:
        found = self._queryable(store)
        if not found.is_ok:
            return QueryResult.failure(_reason(found), found.message)
        spec = found.unwrap()
        parsed = parse_key(key_text, spec.key_serde)
        if not parsed.is_ok:
            return QueryResult.failure(FailureReason.BAD_KEY, parsed.message)
        key = parsed.value
        try:
            where = self.app.metadata_for_key(store, key)
        except StoreNotReady as exc:
            return QueryResult.failure(FailureReason.NOT_READY, str(exc))
        except (StoreNotFound, SerializationError) as exc:
            return QueryResult.failure(FailureReason.BAD_KEY, str(exc))
        if where.is_local or forwarded:
            found = await run_in_threadpool(local_get, self.app, store, key, stale)
            if not found.is_ok:
                return QueryResult.failure(_reason(found), found.message)
            return QueryResult.ok(
                {"store": store, "key": render(key), "value": render(found.value)}
            )
        if where.active_host is None:
            who = "no live instance" if where.active_instance is None else "its owner"
            return QueryResult.failure(
                FailureReason.NOT_READY,
                f"partition {where.partition} of {store!r}: {who} advertises an "
                "application_server yet; retry",
            )
        path = f"{mount}/stores/{quote(store, safe='')}/keys/{quote(key_text, safe='')}"
        return await self._forward(where.active_host, path, {"stale": "true"} if stale else {})

    # -- scans -------------------------------------------------------------------------------
    async def _scan(
        self,
        store: str,
        params: Mapping[str, str],
        local: bool,
        stale: bool,
        forwarded: bool,
        mount: str,
    ) -> QueryResult[Body]:
        found = self._queryable(store)
        if not found.is_ok:
            return QueryResult.failure(_reason(found), found.message)
        parsed = _scan_request(params, found.unwrap().key_serde)
        if not parsed.is_ok:
            return QueryResult.failure(_reason(parsed), parsed.message)
        request = parsed.unwrap()
        if local or is_global(self.app, store):
            page = await run_in_threadpool(local_scan, self.app, store, request, stale)
            if not page.is_ok:
                return QueryResult.failure(_reason(page), page.message)
            if forwarded and params.get("format") == COLUMNS:
                text_keys = _text_keys(self.app, store)
                return QueryResult.ok(_columns_body(store, page.unwrap(), text_keys))
            return QueryResult.ok(_page_body(store, page.unwrap(), with_cursors=local))
        return await self._fan_out(store, request, params, stale, mount)

    async def _fan_out(
        self,
        store: str,
        request: ScanRequest,
        params: Mapping[str, str],
        stale: bool,
        mount: str,
    ) -> QueryResult[Body]:
        instances = await run_in_threadpool(self.app.all_metadata)
        local = next((m for m in instances if m.is_local), None)
        count = None if local is None else local.partition_counts.get(store)
        if count is None:
            return QueryResult.failure(FailureReason.NOT_READY, "the app has not started")
        targets = [m for m in instances if m.active.get(store)]
        advertised = sorted(p for m in targets for p in m.active[store])
        if advertised != list(range(count)):
            return QueryResult.failure(
                FailureReason.NOT_READY,
                f"the live instances do not cover the {count} partitions of {store!r} "
                "exactly once (rebalancing); retry",
            )
        forward = {k: v for k, v in params.items() if k in ("from", "to", "prefix", "cursor")}
        forward.update(local="true", limit=str(request.limit), format=COLUMNS)
        if stale:
            forward["stale"] = "true"
        path = f"{mount}/stores/{quote(store, safe='')}"
        text_keys = _text_keys(self.app, store)
        calls = []
        for target in targets:
            if target.is_local:
                calls.append(self._local_run(store, request, stale))
            elif target.host_info is None:
                return QueryResult.failure(
                    FailureReason.NOT_READY,
                    f"instance {target.instance_id} has no application_server",
                )
            else:
                calls.append(self._remote_run(target.host_info, path, forward, text_keys))
        runs = await asyncio.gather(*calls)
        for run in runs:
            if not run.is_ok:
                return QueryResult.failure(_reason(run), run.message)
        return _merge(store, [r.unwrap() for r in runs], count, request.limit)

    async def _local_run(self, store: str, request: ScanRequest, stale: bool) -> QueryResult[_Run]:
        page = await run_in_threadpool(local_scan, self.app, store, request, stale)
        if not page.is_ok:
            return QueryResult.failure(_reason(page), page.message)
        found = page.unwrap()
        return QueryResult.ok(_Run(list(found.items), list(found.partitions), found.has_more))

    async def _remote_run(
        self, host: HostInfo, path: str, params: Mapping[str, str], text_keys: bool
    ) -> QueryResult[_Run]:
        body = await self._forward(host, path, params)
        if not body.is_ok:
            return QueryResult.failure(_reason(body), body.message)
        try:
            return QueryResult.ok(_run_of(body.unwrap(), text_keys))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a peer of another kind
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE, f"instance {host} sent a malformed page: {exc!r}"
            )

    # -- forwarding --------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self.timeout_s, follow_redirects=False
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _forward(
        self, host: HostInfo, path: str, params: Mapping[str, str]
    ) -> QueryResult[Body]:
        url = f"http://{host}{path}"
        try:
            response = await self._http().get(
                url, params=dict(params), headers={FORWARDED_HEADER: "1"}
            )
            body: Any = orjson.loads(response.content)
        except httpx.TimeoutException:
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE,
                f"instance {host} did not answer within {self.timeout_s:g}s",
            )
        except httpx.HTTPError as exc:
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE, f"instance {host} is unreachable: {exc!r}"
            )
        except orjson.JSONDecodeError:
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE,
                f"instance {host} answered {response.status_code} without JSON",
            )
        if response.status_code == 200 and isinstance(body, dict):
            return QueryResult.ok(body)
        try:
            reason = FailureReason(body["error"])
            message = str(body.get("message", ""))
        except (TypeError, KeyError, ValueError):
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE,
                f"instance {host} answered {response.status_code}: {response.text[:200]}",
            )
        return QueryResult.failure(reason, f"{message} (from {host})")

    # -- responses ---------------------------------------------------------------------------
    def _respond(self, store: str, result: QueryResult[Body]) -> Response:
        if result.reason is None:
            return _json(200, result.unwrap())
        body = {"error": result.reason.value, "message": result.message, "store": store}
        headers = {"Retry-After": str(self.retry_after_s)} if result.reason.retriable else None
        return _json(result.reason.status, body, headers)


def _mount_path(request: Request) -> str:
    """Where this server is mounted (``/query`` under ``app.mount("/query", ...)``; empty at
    the root): peers run the same server at the same path, so a forward goes there too."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _text_keys(app: QueryableApp, store: str) -> bool:
    """STRING keys: a key's UTF-8 bytes are its serialized form (and its order)."""
    return isinstance(app.topology.stores[store].key_serde, StringSerde)


def _reason(result: QueryResult[Any]) -> FailureReason:
    assert result.reason is not None
    return result.reason


_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no", "")


def _flag(params: Mapping[str, str], name: str) -> QueryResult[bool]:
    """A boolean parameter: absent is false; anything but true/false (1/0, yes/no) is a bad
    request rather than quietly false (``stale=1.7e308`` was taken as false)."""
    value = params.get(name)
    if value is None or value.lower() in _FALSE:
        return QueryResult.ok(False)
    if value.lower() in _TRUE:
        return QueryResult.ok(True)
    return QueryResult.failure(FailureReason.BAD_REQUEST, f"{name} must be true or false")


async def _no_route(request: Request, exc: Exception) -> Response:
    """A path or method this server does not serve, answered with its own error body (not a
    bare text 404)."""
    status = getattr(exc, "status_code", 404)
    message = f"no route for {request.method} {request.url.path!r}"
    return _json(status, {"error": FailureReason.BAD_REQUEST.value, "message": message})


class _AnyKey(Convertor[str]):
    """A key: any text, newlines included (Starlette's ``path`` stops at one, and such a key
    fell through to a bare 404)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anykey", _AnyKey())


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


def _scan_request(params: Mapping[str, str], serde: Any) -> QueryResult[ScanRequest]:
    bounds: dict[str, Any] = {}
    for name in ("from", "to"):
        text = params.get(name)
        if text is not None:
            parsed = parse_key(text, serde)
            if not parsed.is_ok:
                return QueryResult.failure(FailureReason.BAD_KEY, f"{name}: {parsed.message}")
            bounds[name] = parsed.value
    prefix = None
    if params.get("prefix") is not None:
        found = prefix_bytes(params["prefix"], serde)
        if not found.is_ok:
            return QueryResult.failure(_reason(found), found.message)
        prefix = found.unwrap()
    after = None
    if params.get("cursor"):
        decoded = decode_cursor(params["cursor"])
        if not decoded.is_ok:
            return QueryResult.failure(_reason(decoded), decoded.message)
        after = decoded.unwrap()
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        return QueryResult.failure(
            FailureReason.BAD_REQUEST, f"limit must be an integer in [1, {MAX_LIMIT}]"
        )
    lo = bounds.get("from")
    return QueryResult.ok(
        ScanRequest(
            lo=lo,
            hi=bounds.get("to"),
            lo_bytes=None if lo is None else serde.serialize(lo),
            prefix=prefix,
            after=after,
            limit=limit,
        )
    )


def _page_body(store: str, page: ScanPage, *, with_cursors: bool) -> Body:
    """The page as a response body; keys and values are rendered when it is dumped."""
    if with_cursors:
        items = [
            {"key": key, "value": value, "cursor": encode_cursor(kb)}
            for kb, key, value in page.items
        ]
    else:
        items = [{"key": key, "value": value} for _, key, value in page.items]
    last = page.items[-1][0] if page.items and page.has_more else None
    return {
        "store": store,
        "items": items,
        "partitions": list(page.partitions),
        "has_more": page.has_more,
        "next_cursor": None if last is None else encode_cursor(last),
    }


def _columns_body(store: str, page: ScanPage, text_keys: bool) -> Body:
    """A page for the instance merging a cluster scan (``format=columns``): keys, each value's
    JSON text (a string: the merging instance passes it on without parsing it) and, unless the
    keys are text (their UTF-8 bytes order them), each key's cursor."""
    body: Body = {
        "store": store,
        "keys": [key for _, key, _ in page.items],
        "values": [dumps(value).decode() for _, _, value in page.items],
        "partitions": list(page.partitions),
        "has_more": page.has_more,
    }
    if not text_keys:
        body["cursors"] = [encode_cursor(kb) for kb, _, _ in page.items]
    return body


@dataclass(frozen=True)
class _Run:
    """One instance's part of a cluster scan page: ``(order bytes, key, value)`` rows in
    order, the partitions they come from, and whether that instance has more."""

    rows: list[tuple[bytes, Any, Any]]
    partitions: list[int]
    has_more: bool


def _run_of(body: Body, text_keys: bool) -> _Run:
    """A peer's page as a run; raises KeyError, TypeError or ValueError if it is malformed."""
    if "keys" in body:  # format=columns
        keys, values = body["keys"], [orjson.Fragment(v) for v in body["values"]]
        if len(keys) != len(values):
            raise ValueError("keys and values differ in length")
        if text_keys:
            order = [key.encode() for key in keys]
        else:
            order = [cursor_key(c) for c in body["cursors"]]
            if len(order) != len(keys):
                raise ValueError("keys and cursors differ in length")
        rows = list(zip(order, keys, values, strict=True))
    else:  # a page with items (a peer that does not know format=columns)
        rows = [(cursor_key(i["cursor"]), i["key"], i["value"]) for i in body["items"]]
    return _Run(rows, [int(p) for p in body["partitions"]], bool(body["has_more"]))


def _merge(store: str, runs: list[_Run], count: int, limit: int) -> QueryResult[Body]:
    """Merge the instances' runs (each sorted by key bytes) into the first ``limit`` items."""
    served = sorted(p for run in runs for p in run.partitions)
    if served != list(range(count)):
        return QueryResult.failure(
            FailureReason.NOT_READY, f"partitions of {store!r} moved during the scan; retry"
        )
    rows = sorted((row for run in runs for row in run.rows), key=itemgetter(0))
    more = len(rows) > limit or any(run.has_more for run in runs)
    del rows[limit:]
    last = rows[-1][0] if more and rows else None
    body = {
        "store": store,
        "items": [{"key": key, "value": value} for _, key, value in rows],
        "partitions": served,
        "has_more": more,
        "next_cursor": None if last is None else encode_cursor(last),
    }
    return QueryResult.ok(body)


def _instance_body(m: StreamsMetadata) -> Body:
    return {
        "instance_id": m.instance_id,
        "application_server": None if m.host_info is None else str(m.host_info),
        "is_local": m.is_local,
        "state": m.state,
        "generation": m.generation,
        "timestamp_ms": m.timestamp_ms,
        "active": {s: list(p) for s, p in sorted(m.active.items()) if p},
        "standby": {s: list(p) for s, p in sorted(m.standby.items()) if p},
        "partition_counts": dict(sorted(m.partition_counts.items())),
    }
