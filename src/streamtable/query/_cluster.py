"""Queries over the whole cluster from one instance: a key from the instance that owns it, a
scan page merged from every instance's part. The query server answers with these, and so can
an application's own routes (the us-shareholders service's ``GET /holders`` does).

A key is read locally when this instance owns its partition, and forwarded otherwise (one hop:
the request carries :data:`FORWARDED_HEADER` and its receiver never forwards it again; it
answers ``not_owner`` if the metadata was stale). A cluster scan asks every instance for its
part (``local=true``, in the compact ``format=columns``) and merges the pages in serialized-key
order, the order of the opaque cursor; it fails, rather than answering partially, unless the
instances' parts cover every partition of the store exactly once.

Example::

    queries = ClusterQueries(app, mount="/query")  # where every instance serves the query app
    page = await queries.scan("us-share-holders", ScanRequest(limit=1000))
    if page.is_ok:
        rows = [(key, render(value)) for _, key, value in page.unwrap().items]
        more = page.unwrap().next_cursor  # pass to parse_scan_params as "cursor"
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from starlette.concurrency import run_in_threadpool

from streamtable.errors import SerializationError, StoreNotFound, StoreNotReady
from streamtable.query._codec import cursor_key, dumps, encode_cursor, parse_key, render
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

Body = dict[str, Any]


class ClusterQueries:
    """Reads of ``app``'s stores across the cluster (see the module docstring).

    ``mount`` is the path where every instance serves the query app (``""`` at the root,
    ``"/query"`` under ``api.mount("/query", create_query_app(app))``): forwarded reads go
    there. ``forward_timeout_s`` bounds each call to another instance; ``transport`` replaces
    the network (a test seam, e.g. ``httpx.ASGITransport``). Call :meth:`aclose` when done.
    """

    def __init__(
        self,
        app: QueryableApp,
        *,
        mount: str = "",
        forward_timeout_s: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app = app
        self.mount = mount.rstrip("/")
        self.timeout_s = forward_timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def queryable(self, store: str) -> QueryResult[StoreSpec]:
        """The store's spec, if it exists and the app is alive to answer for it."""
        spec = self.app.topology.stores.get(store)
        if spec is None:
            return QueryResult.failure(FailureReason.UNKNOWN_STORE, f"no store named {store!r}")
        if spec.store_type != "key_value":
            return QueryResult.failure(
                FailureReason.BAD_REQUEST,
                f"store {store!r} is a {spec.store_type} store: HTTP queries serve key-value "
                "stores only (read window stores in-process with app.window_store)",
            )
        if not self.app.state.is_alive():
            return QueryResult.failure(FailureReason.NOT_READY, f"the app is {self.app.state.name}")
        return QueryResult.ok(spec)

    async def get(
        self,
        store: str,
        key_text: str,
        *,
        stale: bool = False,
        forwarded: bool = False,
        mount: str | None = None,
    ) -> QueryResult[tuple[Any, Any]]:
        """``(key, value)`` of the key written ``key_text`` (parsed by the store's key serde),
        from the instance that owns it, both rendered as plain JSON data. ``forwarded``:
        another instance sent this request, so answer locally or refuse (``not_owner``)."""
        found = self.queryable(store)
        if not found.is_ok:
            return _failed(found)
        parsed = parse_key(key_text, found.unwrap().key_serde)
        if not parsed.is_ok:
            return _failed(parsed)
        key = parsed.value
        try:
            where = self.app.metadata_for_key(store, key)
        except StoreNotReady as exc:
            return QueryResult.failure(FailureReason.NOT_READY, str(exc))
        except (StoreNotFound, SerializationError) as exc:
            return QueryResult.failure(FailureReason.BAD_KEY, str(exc))
        if where.is_local or forwarded:
            value = await run_in_threadpool(local_get, self.app, store, key, stale)
            if not value.is_ok:
                return _failed(value)
            return QueryResult.ok((render(key), render(value.value)))
        if where.active_host is None:
            who = "no live instance" if where.active_instance is None else "its owner"
            return QueryResult.failure(
                FailureReason.NOT_READY,
                f"partition {where.partition} of {store!r}: {who} advertises an "
                "application_server yet; retry",
            )
        base = self.mount if mount is None else mount
        path = f"{base}/stores/{quote(store, safe='')}/keys/{quote(key_text, safe='')}"
        body = await self._forward(where.active_host, path, {"stale": "true"} if stale else {})
        if not body.is_ok:
            return _failed(body)
        answer = body.unwrap()
        if "value" not in answer:
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE, f"instance {where.active_host} sent no value"
            )
        return QueryResult.ok((answer.get("key", render(key)), answer["value"]))

    async def scan(
        self,
        store: str,
        request: ScanRequest,
        *,
        local: bool = False,
        stale: bool = False,
        mount: str | None = None,
    ) -> QueryResult[ScanPage]:
        """One page of ``store``: this instance's partitions (``local``, or a global store) or
        every instance's, merged; a failure rather than a page with a partition missing."""
        found = self.queryable(store)
        if not found.is_ok:
            return _failed(found)
        if local or is_global(self.app, store):
            return await run_in_threadpool(local_scan, self.app, store, request, stale)
        return await self._fan_out(store, request, stale, self.mount if mount is None else mount)

    async def _fan_out(
        self, store: str, request: ScanRequest, stale: bool, mount: str
    ) -> QueryResult[ScanPage]:
        instances = await run_in_threadpool(self.app.all_metadata)
        covered = _coverage(store, instances)
        if not covered.is_ok:
            return _failed(covered)
        count = covered.unwrap()
        params = _forwarded_params(request)
        if not params.is_ok:
            return _failed(params)
        if stale:
            params.unwrap()["stale"] = "true"
        path = f"{mount}/stores/{quote(store, safe='')}"
        keys_are_text = text_keys(self.app, store)
        targets = [m for m in instances if m.active.get(store)]
        silent = next((m for m in targets if not m.is_local and m.host_info is None), None)
        if silent is not None:
            return QueryResult.failure(
                FailureReason.NOT_READY, f"instance {silent.instance_id} has no application_server"
            )
        parts = await asyncio.gather(
            *(
                run_in_threadpool(local_scan, self.app, store, request, stale)
                if target.is_local or target.host_info is None
                else self._remote_part(target.host_info, path, params.unwrap(), keys_are_text)
                for target in targets
            )
        )
        for part in parts:
            if not part.is_ok:
                return _failed(part)
        return _merge(store, [p.unwrap() for p in parts], count, request.limit)

    async def _remote_part(
        self, host: HostInfo, path: str, params: Mapping[str, str], text_keys: bool
    ) -> QueryResult[ScanPage]:
        body = await self._forward(host, path, params)
        if not body.is_ok:
            return _failed(body)
        try:
            return QueryResult.ok(page_of(body.unwrap(), text_keys))
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
        """Close the connections to other instances."""
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


def _failed(result: QueryResult[Any]) -> QueryResult[Any]:
    """A failure passed on as a result of another type."""
    assert result.reason is not None
    return QueryResult.failure(result.reason, result.message)


def _coverage(store: str, instances: list[StreamsMetadata]) -> QueryResult[int]:
    """The store's partition count, if the live instances own each partition exactly once."""
    local = next((m for m in instances if m.is_local), None)
    count = None if local is None else local.partition_counts.get(store)
    if count is None:
        return QueryResult.failure(FailureReason.NOT_READY, "the app has not started")
    advertised = sorted(p for m in instances for p in m.active.get(store, ()))
    if advertised != list(range(count)):
        return QueryResult.failure(
            FailureReason.NOT_READY,
            f"the live instances do not cover the {count} partitions of {store!r} "
            "exactly once (rebalancing); retry",
        )
    return QueryResult.ok(count)


def text_keys(app: QueryableApp, store: str) -> bool:
    """STRING keys: a key's UTF-8 bytes are its serialized form (and its order)."""
    return isinstance(app.topology.stores[store].key_serde, StringSerde)


def _forwarded_params(request: ScanRequest) -> QueryResult[dict[str, str]]:
    """What a cluster scan asks each other instance for: its part of the same page."""
    params = dict(request.bounds_text)
    given = {"from": request.lo, "to": request.hi, "prefix": request.prefix}
    missing = [name for name, bound in given.items() if bound is not None and name not in params]
    if missing:  # a peer parses the text; the parsed bound cannot be written back losslessly
        return QueryResult.failure(
            FailureReason.BAD_REQUEST,
            f"a cluster scan needs {missing} as text: build the request with parse_scan_params",
        )
    params.update(local="true", limit=str(request.limit), format=COLUMNS)
    if request.after is not None:
        params["cursor"] = encode_cursor(request.after)
    return QueryResult.ok(params)


def columns_body(store: str, page: ScanPage, text_keys: bool) -> Body:
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


def page_of(body: Body, text_keys: bool) -> ScanPage:
    """A peer's page; raises KeyError, TypeError or ValueError if it is malformed."""
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
    return ScanPage(rows, tuple(int(p) for p in body["partitions"]), bool(body["has_more"]))


def _merge(store: str, parts: list[ScanPage], count: int, limit: int) -> QueryResult[ScanPage]:
    """Merge the instances' parts (each sorted by key bytes) into the first ``limit`` items."""
    served = sorted(p for part in parts for p in part.partitions)
    if served != list(range(count)):
        return QueryResult.failure(
            FailureReason.NOT_READY, f"partitions of {store!r} moved during the scan; retry"
        )
    rows = sorted((row for part in parts for row in part.items), key=itemgetter(0))
    more = len(rows) > limit or any(part.has_more for part in parts)
    return QueryResult.ok(ScanPage(rows[:limit], tuple(served), more))
