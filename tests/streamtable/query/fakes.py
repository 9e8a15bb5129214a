"""A broker-free cluster for query tests: instances with real stores, real
:class:`InstanceDirectory` routing and real query servers, wired by an in-process transport."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp

import streamtable as st
from streamtable.errors import StoreNotFound, StoreNotReady
from streamtable.query import create_query_app
from streamtable.runtime._metadata import InstanceDirectory, KeyQueryMetadata, StreamsMetadata
from streamtable.runtime._views import CompositeStoreView, session_reader
from streamtable.serde import DEFAULT, JSON, STRING, TimeWindowedSerde
from streamtable.state import (
    MemoryBytesStore,
    ReadOnlyKeyValueStore,
    ReadOnlySessionStore,
    ReadOnlyWindowStore,
    SerdeStore,
)
from streamtable.topology import build_store, partition_for
from tests.support.positions import seed_topology

PARTITIONS = 6
STORE = "us-share-holders"  # DEFAULT keys and values, sub-topology 1
TOPOLOGY = seed_topology("positions")


class FakeApp:
    """Implements :class:`streamtable.query.QueryableApp` over in-memory partitions."""

    def __init__(
        self, name: str, server: str | None, clock: list[float], topology: st.Topology = TOPOLOGY
    ) -> None:
        self.name = name
        self.topology = topology
        self.state = st.AppState.RUNNING
        self.restoring: set[int] = set()  # owned partitions whose tasks are still restoring
        config = st.StreamsConfig(
            application_id="fake",
            bootstrap_servers="unused:1",
            state_dir=Path("/nonexistent"),
            application_server=server,
        )
        self.directory = InstanceDirectory(
            topology, config, name, lambda: self.state.name, clock=lambda: clock[0]
        )
        self.directory.set_partition_counts({sub.id: PARTITIONS for sub in topology.subtopologies})
        self.partitions: dict[int, dict[str, SerdeStore]] = {}
        self.lock = threading.RLock()

    def own(self, partitions: Iterable[int]) -> None:
        """Host these partitions (of both sub-topologies) from now on; drop the others."""
        wanted = set(partitions)
        self.partitions = {p: s for p, s in self.partitions.items() if p in wanted}
        for p in wanted - set(self.partitions):
            self.partitions[p] = {
                name: (
                    build_store(spec, MemoryBytesStore(), "fake", p, None, None)[0]
                    if spec.store_type != "key_value"
                    else SerdeStore(name, MemoryBytesStore(), spec.key_serde, spec.value_serde)
                )
                for name, spec in self.topology.stores.items()
            }
        self.directory.set_active(
            (sub.id, p) for sub in self.topology.subtopologies for p in self.partitions
        )

    def put(self, store: str, key: Any, value: Any) -> None:
        serde = self.topology.stores[store].key_serde
        p = partition_for(serde.serialize(key), PARTITIONS)
        self.partitions[p][store].put(key, value, 0)

    def put_window(self, store: str, key: Any, start_ms: int, value: Any) -> None:
        """Write ``value`` for ``key``'s window starting at ``start_ms`` of window store
        ``store`` (in the partition of the record key, as a windowed aggregation does)."""
        spec = self.topology.stores[store]
        assert spec.window_size_ms is not None
        p = partition_for(spec.key_serde.serialize(key), PARTITIONS)
        window = st.Window(start_ms, start_ms + spec.window_size_ms)
        self.partitions[p][store].put(st.Windowed(key, window), value, start_ms)

    def put_session(self, store: str, key: Any, start_ms: int, end_ms: int, value: Any) -> None:
        """Write ``value`` for ``key``'s session ``[start_ms, end_ms]`` of session store
        ``store`` (in the partition of the record key, as a session aggregation does)."""
        spec = self.topology.stores[store]
        p = partition_for(spec.key_serde.serialize(key), PARTITIONS)
        session = st.Windowed(key, st.SessionWindow(start_ms, end_ms))
        self.partitions[p][store].put(session, value, end_ms)

    # -- QueryableApp ----------------------------------------------------------------------
    def store(self, name: str, *, allow_stale: bool = False) -> ReadOnlyKeyValueStore:
        return ReadOnlyKeyValueStore(self._view(name, allow_stale))

    def window_store(self, name: str, *, allow_stale: bool = False) -> ReadOnlyWindowStore:
        view = self._view(name, allow_stale)
        spec = self.topology.stores[name]
        assert spec.window_size_ms is not None
        keys = TimeWindowedSerde(spec.key_serde, spec.window_size_ms)
        return ReadOnlyWindowStore(name, keys, spec.value_serde, view.window_entries)

    def session_store(self, name: str, *, allow_stale: bool = False) -> ReadOnlySessionStore:
        return session_reader(self.topology.stores[name], self._view(name, allow_stale))

    def _view(self, name: str, allow_stale: bool) -> CompositeStoreView:
        spec = self.topology.stores.get(name)
        if spec is None:
            raise StoreNotFound(name, list(self.topology.stores))

        def check() -> None:
            alive = self.state.is_alive() if allow_stale else self.state is st.AppState.RUNNING
            if not alive:
                raise StoreNotReady(name, f"the app is {self.state.name}")

        def lookup() -> tuple[dict[int, Any], int]:
            return {
                p: stores[name]
                for p, stores in self.partitions.items()
                if allow_stale or p not in self.restoring
            }, PARTITIONS

        check()
        return CompositeStoreView(name, spec.key_serde, lookup, check, self.lock)

    def metadata_for_key(self, store: str, key: Any) -> KeyQueryMetadata:
        spec = self.topology.stores.get(store)
        if spec is None:
            raise StoreNotFound(store)
        return self.directory.metadata_for_key(store, spec.key_serde.serialize(key))

    def all_metadata(self) -> list[StreamsMetadata]:
        return self.directory.all_metadata()

    def local_metadata(self) -> StreamsMetadata:
        return self.directory.local_metadata()


class Network(httpx.AsyncBaseTransport):
    """Routes ``http://host:port/...`` to the query app registered for that address."""

    def __init__(self) -> None:
        self.apps: dict[str, ASGIApp] = {}
        self.down: set[str] = set()
        self.slow: set[str] = set()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        address = f"{request.url.host}:{request.url.port}"
        if address in self.down or address not in self.apps:
            raise httpx.ConnectError("connection refused", request=request)
        if address in self.slow:
            raise httpx.ReadTimeout("timed out", request=request)
        transport = httpx.ASGITransport(app=self.apps[address])
        return await transport.handle_async_request(request)


def query_server(app: FakeApp, network: Network) -> ASGIApp:
    return create_query_app(app, transport=network, forward_timeout_s=0.5)


class Cluster:
    """``size`` fake instances ``i0, i1...`` at ``10.0.0.<n>:8000``, partitions dealt round-robin,
    each knowing the others' metadata (call :meth:`gossip` after changing ownership); each
    serves ``serve(app, network)`` (the library's query server by default)."""

    def __init__(
        self,
        size: int,
        topology: st.Topology = TOPOLOGY,
        serve: Callable[[FakeApp, Network], ASGIApp] = query_server,
    ) -> None:
        self.clock = [1_000_000.0]
        self.network = Network()
        self.topology = topology
        self.apps: list[FakeApp] = []
        self.servers: dict[str, ASGIApp] = {}
        for i in range(size):
            address = f"10.0.0.{i + 1}:8000"
            app = FakeApp(f"i{i}", address, self.clock, topology)
            app.own(p for p in range(PARTITIONS) if p % size == i)
            server = serve(app, self.network)
            self.network.apps[address] = server
            self.servers[app.name] = server
            self.apps.append(app)
        self.gossip()

    def gossip(self) -> None:
        """Every instance learns every other instance's current record."""
        for source in self.apps:
            record = source.directory.local_record()
            for target in self.apps:
                if target is not source:
                    target.directory.apply(source.name.encode(), record.encode())

    def put(self, store: str, key: Any, value: Any) -> None:
        """Write ``key`` into the store of whichever instance owns its partition."""
        serde = self.topology.stores[store].key_serde
        p = partition_for(serde.serialize(key), PARTITIONS)
        owner = next(a for a in self.apps if p in a.partitions)
        owner.put(store, key, value)

    def put_window(self, store: str, key: Any, start_ms: int, value: Any) -> None:
        """Write a window of ``key`` into the window store of the instance that owns it."""
        self.owner_of(store, key).put_window(store, key, start_ms, value)

    def put_session(self, store: str, key: Any, start_ms: int, end_ms: int, value: Any) -> None:
        """Write a session of ``key`` into the session store of the instance that owns it."""
        self.owner_of(store, key).put_session(store, key, start_ms, end_ms, value)

    def key_of(self, name: str, store: str = "counts") -> str:
        """The first of :data:`CLIENTS` whose partition of ``store`` instance ``name`` hosts
        (the windowed cluster's STRING-keyed stores share their owners)."""
        return next(c for c in CLIENTS if self.owner_of(store, c).name == name)

    def owner_of(self, store: str, key: Any) -> FakeApp:
        serde = self.topology.stores[store].key_serde
        p = partition_for(serde.serialize(key), PARTITIONS)
        return next(a for a in self.apps if p in a.partitions)


def seeded(size: int, rows: Mapping[Any, Any], store: str = STORE) -> Cluster:
    """A cluster of ``size`` instances holding ``rows`` in ``store``."""
    made = Cluster(size)
    for key, value in rows.items():
        made.put(store, key, value)
    return made


class InstanceClient:
    """Sends requests to one instance of the fake cluster, each in a fresh event loop."""

    def __init__(self, cluster: Cluster, address: str) -> None:
        self._transport = httpx.ASGITransport(app=cluster.network.apps[address])
        self._base = f"http://{address}"

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.request("GET", path, params, headers)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self._transport, base_url=self._base) as c:
                return await c.request(method, path, params=params, headers=headers)

        return asyncio.run(send())


WINDOW_SIZE_MS = 60_000
WINDOWED_STORES = ("counts", "sums")  # STRING keys, DEFAULT values; DEFAULT keys, JSON values
SESSION_STORES = ("visits", "spans")  # the same keys and values as the window stores
CLIENTS = [f"c{i}" for i in range(12)]
WINDOW_STARTS = [0, 60_000, 120_000, 180_000]


def windowed_topology() -> st.Topology:
    """Two 1-minute window stores, ``counts`` (STRING keys) and ``sums`` (DEFAULT keys, JSON
    values), two session stores of the same keys and values, ``visits`` and ``spans``, and
    the key-value store ``totals``."""
    b = st.StreamsBuilder()
    minute = st.TimeWindows.of_size_with_no_grace(timedelta(milliseconds=WINDOW_SIZE_MS))
    day = timedelta(days=1)
    trades = b.stream("trades", key_serde=STRING).group_by_key()
    trades.windowed_by(minute).count(store="counts", retention=day)
    trades.count(store="totals")
    gap = st.SessionWindows.of_inactivity_gap_with_no_grace(timedelta(seconds=10))
    trades.windowed_by(gap).count(store="visits", retention=day)
    amounts = b.stream("amounts", key_serde=DEFAULT).group_by_key()
    amounts.windowed_by(minute).aggregate(
        lambda: {"sum": 0}, lambda k, v, agg: {"sum": agg["sum"] + v}, store="sums",
        value_serde=JSON, retention=day,
    )  # fmt: skip
    amounts.windowed_by(gap).aggregate(
        lambda: {"sum": 0}, lambda k, v, agg: {"sum": agg["sum"] + v},
        lambda k, a, b: {"sum": a["sum"] + b["sum"]}, store="spans", value_serde=JSON,
        retention=day,
    )  # fmt: skip
    return b.build()


def window_value(store: str, client: str, start_ms: int) -> Any:
    n = int(client[1:]) * 10 + start_ms // WINDOW_SIZE_MS
    return n if store == "counts" else {"sum": n, "client": client}


SESSIONS = [(0, 0), (30_000, 45_000), (120_000, 180_000)]
"""Every client's sessions ``(start_ms, end_ms)``, both inclusive, earliest end first."""


def session_value(store: str, client: str, start_ms: int) -> Any:
    n = int(client[1:]) * 100 + start_ms // 1000
    return n if store == "visits" else {"sum": n, "client": client}


def windowed_cluster(size: int) -> Cluster:
    """``size`` instances holding, in both window stores, a window of every client at every
    start of :data:`WINDOW_STARTS` (values :func:`window_value`), in both session stores every
    client's :data:`SESSIONS` (values :func:`session_value`), and each client's total."""
    cluster = Cluster(size, windowed_topology())
    for client in CLIENTS:
        for store in WINDOWED_STORES:
            for start in WINDOW_STARTS:
                cluster.put_window(store, client, start, window_value(store, client, start))
        for store in SESSION_STORES:
            for start, end in SESSIONS:
                cluster.put_session(store, client, start, end, session_value(store, client, start))
        cluster.put("totals", client, len(WINDOW_STARTS))
    return cluster


def expected_windows(store: str, client: str, starts: list[int]) -> list[dict[str, Any]]:
    """``client``'s windows starting at ``starts`` in ``store`` as the server answers them."""
    return [
        {"start_ms": s, "end_ms": s + WINDOW_SIZE_MS, "value": window_value(store, client, s)}
        for s in starts
    ]


def expected_sessions(
    store: str, client: str, lo: int = 0, hi: int = 2**63 - 1
) -> list[dict[str, Any]]:
    """``client``'s sessions in ``store`` that end at or after ``lo`` and start at or before
    ``hi``, as the server answers them."""
    return [
        {"start_ms": s, "end_ms": e, "value": session_value(store, client, s)}
        for s, e in SESSIONS
        if e >= lo and s <= hi
    ]


# Faults for tables of documented answers: each sets a cluster up before the request.
def rebalancing(cluster: Cluster) -> None:
    for app in cluster.apps:
        app.state = st.AppState.REBALANCING


def i1_down(cluster: Cluster) -> None:
    cluster.network.down.add("10.0.0.2:8000")


def no_fault(cluster: Cluster) -> None:
    pass
