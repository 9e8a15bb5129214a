"""Queries over the whole cluster from one instance: a key from the instance that owns it, a
scan page merged from every instance's part, the same for window stores (one key's windows in a
time range; a page of every key's windows in a time range), and a session store's sessions of
one key. The query server answers with these, and so can an application's own routes (the
us-shareholders service's ``GET /holders`` does).

A key is read locally when this instance owns its partition, and forwarded otherwise (one hop:
the request carries :data:`FORWARDED_HEADER` and its receiver never forwards it again; it
answers ``not_owner`` if the metadata was stale); a window or session store's key goes by the
record key's partition, as its records did. A cluster scan asks every instance for its part
(``local=true``; of a key-value store in the compact ``format=columns``) and merges the pages
in serialized-key order (a window store's: windowed key, that is key bytes then window start),
the order of the opaque cursor; it fails, rather than answering partially, unless the
instances' parts cover every partition of the store exactly once.

Example::

    queries = ClusterQueries(app, mount="/query")  # where every instance serves the query app
    page = await queries.scan("us-share-holders", ScanRequest(limit=1000))
    if page.is_ok:
        rows = [(key, render(value)) for _, key, value in page.unwrap().items]
        more = page.unwrap().next_cursor  # pass to parse_scan_params as "cursor"
    hour = WindowRequest(time_from=0, time_to=3_600_000)
    windows = await queries.fetch("trades-per-minute", "c1", hour)  # ("c1", [{"start_ms"...}])
    visits = await queries.find_sessions("visits", "alice")  # every session, earliest end first
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from starlette.concurrency import run_in_threadpool

from streamtable.errors import SerializationError, StoreNotFound, StoreNotReady
from streamtable.query._codec import parse_key, render
from streamtable.query._local import (
    QueryableApp,
    ScanPage,
    ScanRequest,
    is_global,
    local_get,
    local_scan,
)
from streamtable.query._merge import coverage, merge_parts
from streamtable.query._pages import forwarded_params, page_of, text_keys
from streamtable.query._params import check_time_range
from streamtable.query._peers import Body, PeerClient
from streamtable.query._result import FailureReason, QueryResult, failed
from streamtable.query._sessions import local_sessions
from streamtable.query._windows import (
    MAX_TIME_MS,
    WindowRequest,
    local_fetch,
    local_window_scan,
    window_page_of,
    window_params,
)
from streamtable.runtime._metadata import HostInfo
from streamtable.topology import StoreSpec


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
        self._peers = PeerClient(forward_timeout_s, transport)

    def queryable(self, store: str, store_type: str = "key_value") -> QueryResult[StoreSpec]:
        """The store's spec, if it exists, is a ``store_type`` store (``"key_value"``,
        ``"window"`` or ``"session"``) and the app is alive to answer for it."""
        spec = self.app.topology.stores.get(store)
        if spec is None:
            return QueryResult.failure(FailureReason.UNKNOWN_STORE, f"no store named {store!r}")
        if spec.store_type != store_type:
            return QueryResult.failure(
                FailureReason.BAD_REQUEST,
                f"store {store!r} is a {spec.store_type} store, not a {store_type} store: "
                + _WHERE_TO_ASK.get(spec.store_type, "HTTP queries do not serve it").format(
                    store=quote(store, safe="")
                ),
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

        def read_here(key: Any) -> QueryResult[Any]:
            value = local_get(self.app, store, key, stale)
            return QueryResult.ok(render(value.value)) if value.is_ok else value

        return await self._read_key(
            store, key_text, "key_value", read_here, ("keys", {}, "value"),
            stale=stale, forwarded=forwarded, mount=mount,
        )  # fmt: skip

    async def fetch(
        self,
        store: str,
        key_text: str,
        request: WindowRequest,
        *,
        stale: bool = False,
        forwarded: bool = False,
        mount: str | None = None,
    ) -> QueryResult[tuple[Any, list[Body]]]:
        """``(key, windows)`` of window store ``store``: the windows ``{"start_ms", "end_ms",
        "value"}`` of the key written ``key_text`` starting in the request's time range, in
        window-start order, from the instance that owns the key (as :meth:`get`)."""
        params = {"time_from": str(request.time_from), "time_to": str(request.time_to)}
        return await self._read_key(
            store, key_text, "window",
            lambda key: local_fetch(self.app, store, key, request, stale),
            ("windows", params, "windows"), stale=stale, forwarded=forwarded, mount=mount,
        )  # fmt: skip

    async def find_sessions(
        self,
        store: str,
        key_text: str,
        earliest_session_end: int = 0,
        latest_session_start: int = MAX_TIME_MS,
        *,
        stale: bool = False,
        forwarded: bool = False,
        mount: str | None = None,
    ) -> QueryResult[tuple[Any, list[Body]]]:
        """``(key, sessions)`` of session store ``store``: the sessions ``{"start_ms",
        "end_ms", "value"}`` (both inclusive) of the key written ``key_text`` that end at or
        after ``earliest_session_end`` and start at or before ``latest_session_start`` (epoch
        ms, the first not after the second; by default all of them: ``fetch(key)``), earliest
        end first, from the instance that owns the key (as :meth:`get`). Over HTTP the bounds
        are ``time_from`` and ``time_to``."""
        times = check_time_range(
            earliest_session_end,
            latest_session_start,
            ("earliest_session_end", "latest_session_start"),
        )
        if not times.is_ok:
            return failed(times)
        params = {"time_from": str(earliest_session_end), "time_to": str(latest_session_start)}
        return await self._read_key(
            store, key_text, "session",
            lambda key: local_sessions(self.app, store, key, *times.unwrap(), stale),
            ("sessions", params, "sessions"), stale=stale, forwarded=forwarded, mount=mount,
        )  # fmt: skip

    async def _read_key(
        self,
        store: str,
        key_text: str,
        store_type: str,
        read_here: Callable[[Any], QueryResult[Any]],
        remote: tuple[str, dict[str, str], str],
        *,
        stale: bool,
        forwarded: bool,
        mount: str | None,
    ) -> QueryResult[tuple[Any, Any]]:
        """``(key, answer)`` for the key written ``key_text``: ``read_here(key)`` (rendered)
        when this instance answers for it, else the owner's answer at ``remote`` = (the route
        under ``/stores/{store}/``, its parameters, the answer's field in the body)."""
        routed = self._route(store, key_text, store_type, forwarded)
        if not routed.is_ok:
            return failed(routed)
        key, owner = routed.unwrap()
        if owner is None:
            found = await run_in_threadpool(read_here, key)
            if not found.is_ok:
                return failed(found)
            return QueryResult.ok((render(key), found.unwrap()))
        route, params, field = remote
        path = f"/stores/{quote(store, safe='')}/{route}/{quote(key_text, safe='')}"
        answer = await self._ask_owner(
            owner, path, {**params, **({"stale": "true"} if stale else {})}, field, mount
        )
        if not answer.is_ok:
            return failed(answer)
        body = answer.unwrap()
        return QueryResult.ok((body.get("key", render(key)), body[field]))

    def _route(
        self, store: str, key_text: str, store_type: str, forwarded: bool
    ) -> QueryResult[tuple[Any, HostInfo | None]]:
        """The parsed key and the instance to ask: None for this one (it owns the key's
        partition, or the request was forwarded here and is answered or refused here)."""
        found = self.queryable(store, store_type)
        if not found.is_ok:
            return failed(found)
        parsed = parse_key(key_text, found.unwrap().key_serde)
        if not parsed.is_ok:
            return failed(parsed)
        key = parsed.value
        try:
            where = self.app.metadata_for_key(store, key)
        except StoreNotReady as exc:
            return QueryResult.failure(FailureReason.NOT_READY, str(exc))
        except (StoreNotFound, SerializationError) as exc:
            return QueryResult.failure(FailureReason.BAD_KEY, str(exc))
        if where.is_local or forwarded:
            return QueryResult.ok((key, None))
        if where.active_host is None:
            who = "no live instance" if where.active_instance is None else "its owner"
            return QueryResult.failure(
                FailureReason.NOT_READY,
                f"partition {where.partition} of {store!r}: {who} advertises an "
                "application_server yet; retry",
            )
        return QueryResult.ok((key, where.active_host))

    async def _ask_owner(
        self, owner: HostInfo, path: str, params: Mapping[str, str], field: str, mount: str | None
    ) -> QueryResult[Body]:
        """``owner``'s answer at ``path`` under the mount, which must hold ``field``."""
        base = self.mount if mount is None else mount
        body = await self._peers.get(owner, base + path, params)
        if body.is_ok and field not in body.unwrap():
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE, f"instance {owner} sent no {field}"
            )
        return body

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
            return failed(found)
        if local or is_global(self.app, store):
            return await run_in_threadpool(local_scan, self.app, store, request, stale)
        params = forwarded_params(request)
        if not params.is_ok:
            return failed(params)
        keys_are_text = text_keys(self.app, store)
        return await self._fan_out(
            store,
            f"/stores/{quote(store, safe='')}",
            {**params.unwrap(), **({"stale": "true"} if stale else {})},
            lambda: local_scan(self.app, store, request, stale),
            lambda body: page_of(body, keys_are_text),
            request.limit,
            mount,
        )

    async def fetch_all(
        self,
        store: str,
        request: WindowRequest,
        *,
        local: bool = False,
        stale: bool = False,
        mount: str | None = None,
    ) -> QueryResult[ScanPage]:
        """One page of window store ``store``'s windows starting in the request's time range,
        items ``(windowed key bytes, Windowed, value)`` in serialized windowed-key order (key
        bytes, then window start): this instance's partitions (``local``) or every
        instance's, merged as :meth:`scan`'s. ``all()`` is the default (unbounded) request."""
        found = self.queryable(store, "window")
        if not found.is_ok:
            return failed(found)
        if local:
            return await run_in_threadpool(local_window_scan, self.app, store, request, stale)
        return await self._fan_out(
            store,
            f"/stores/{quote(store, safe='')}/windows",
            {**window_params(request), **({"stale": "true"} if stale else {})},
            lambda: local_window_scan(self.app, store, request, stale),
            window_page_of,
            request.limit,
            mount,
        )

    async def _fan_out(
        self,
        store: str,
        path: str,
        params: Mapping[str, str],
        read_here: Callable[[], QueryResult[ScanPage]],
        parse: Callable[[Body], ScanPage],
        limit: int,
        mount: str | None,
    ) -> QueryResult[ScanPage]:
        """Every instance's part of a page (``read_here`` on this one, ``path`` with ``params``
        on the others, their pages read by ``parse``), merged by key bytes."""
        instances = await run_in_threadpool(self.app.all_metadata)
        covered = coverage(store, instances)
        if not covered.is_ok:
            return failed(covered)
        targets = [m for m in instances if m.active.get(store)]
        silent = next((m for m in targets if not m.is_local and m.host_info is None), None)
        if silent is not None:
            return QueryResult.failure(
                FailureReason.NOT_READY, f"instance {silent.instance_id} has no application_server"
            )
        full_path = (self.mount if mount is None else mount) + path
        parts = await asyncio.gather(
            *(
                run_in_threadpool(read_here)
                if target.is_local or target.host_info is None
                else self._remote_part(target.host_info, full_path, params, parse)
                for target in targets
            )
        )
        for part in parts:
            if not part.is_ok:
                return failed(part)
        return merge_parts(store, [p.unwrap() for p in parts], covered.unwrap(), limit)

    async def _remote_part(
        self,
        host: HostInfo,
        path: str,
        params: Mapping[str, str],
        parse: Callable[[Body], ScanPage],
    ) -> QueryResult[ScanPage]:
        body = await self._peers.get(host, path, params)
        if not body.is_ok:
            return failed(body)
        try:
            return QueryResult.ok(parse(body.unwrap()))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a peer of another kind
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE, f"instance {host} sent a malformed page: {exc!r}"
            )

    async def aclose(self) -> None:
        """Close the connections to other instances."""
        await self._peers.aclose()


_WHERE_TO_ASK = {
    "key_value": "query it at /stores/{store}",
    "window": "query its windows at /stores/{store}/windows",
    "session": "query a key's sessions at /stores/{store}/sessions/{{key}}",
}
