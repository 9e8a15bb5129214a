"""Window stores over HTTP on a broker-free cluster: one key's windows from the instance that
owns the key, every key's windows merged across instances page by page, time bounds checked,
failures as status codes, every answer as the OpenAPI document says."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from streamtable.query import (
    FORWARDED_HEADER,
    ClusterQueries,
    FailureReason,
    WindowRequest,
    parse_window_params,
    render,
)
from streamtable.serde import DEFAULT, STRING
from tests.streamtable.query.fakes import (
    CLIENTS,
    WINDOW_SIZE_MS,
    WINDOW_STARTS,
    Cluster,
    InstanceClient,
    expected_windows,
    window_value,
    windowed_cluster,
)

pytestmark = pytest.mark.unit

FETCH_PATH = "/stores/{store}/windows/{key}"
FETCH_ALL_PATH = "/stores/{store}/windows"
MINUTE = WINDOW_SIZE_MS


# -- fetch: one key's windows, routed to the owner ----------------------------------------------
def test_a_keys_windows_come_from_its_owner_in_window_start_order(
    cluster: Cluster, client: InstanceClient
) -> None:
    forwarded = 0
    for key in CLIENTS:
        reply = client.get(
            f"/stores/counts/windows/{key}", {"time_from": MINUTE, "time_to": 2 * MINUTE}
        )
        assert reply.status_code == 200, reply.text
        expected = expected_windows("counts", key, [MINUTE, 2 * MINUTE])
        assert reply.json() == {"store": "counts", "key": key, "windows": expected}
        forwarded += cluster.owner_of("counts", key).name != "i0"
    assert forwarded > 0
    assert len(cluster.network.requests) == forwarded  # one hop per remote key
    assert all(r.headers[FORWARDED_HEADER] == "1" for r in cluster.network.requests)
    assert all("/windows/" in r.url.path for r in cluster.network.requests)


def test_without_times_a_fetch_answers_every_window_of_the_key(
    cluster: Cluster, client: InstanceClient
) -> None:
    key = cluster.key_of("i2")
    reply = client.get(f"/stores/counts/windows/{key}")
    assert reply.json()["windows"] == expected_windows("counts", key, WINDOW_STARTS)
    # The bounds are on window starts, both inclusive: [0, 60000) spans 1 but starts before.
    reply = client.get(f"/stores/counts/windows/{key}", {"time_from": 1, "time_to": 2 * MINUTE})
    assert [w["start_ms"] for w in reply.json()["windows"]] == [MINUTE, 2 * MINUTE]


def test_a_key_without_windows_in_the_range_is_an_empty_list_from_its_owner(
    cluster: Cluster, client: InstanceClient
) -> None:
    for key in ("nobody", cluster.key_of("i1")):
        reply = client.get(f"/stores/counts/windows/{key}", {"time_from": 10 * MINUTE})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"store": "counts", "key": key, "windows": []}


def test_json_keys_and_values_go_through_the_owner(
    cluster: Cluster, client: InstanceClient
) -> None:
    key = cluster.key_of("i1")
    reply = client.get(f"/stores/sums/windows/{json.dumps(key)}", {"time_to": 0})
    assert reply.status_code == 200, reply.text
    assert reply.json()["windows"] == expected_windows("sums", key, [0])
    bad = client.get(f"/stores/sums/windows/{key}")  # DEFAULT keys are JSON text
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_key")


# -- fetch_all: every key's windows, merged across instances -------------------------------------
def every_window(store: str, lo: int = 0, hi: int = 10**12) -> list[tuple[Any, int, Any]]:
    """``(key, start, value)`` in serialized windowed-key order: key bytes, then start."""
    serde = STRING if store == "counts" else DEFAULT
    return [
        (key, start, window_value(store, key, start))
        for key in sorted(CLIENTS, key=serde.serialize)
        for start in WINDOW_STARTS
        if lo <= start <= hi
    ]


def fetch_all(client: InstanceClient, store: str, **params: Any) -> list[tuple[Any, int, Any]]:
    """Every page of ``GET /stores/{store}/windows``, following ``next_cursor``."""
    found: list[tuple[Any, int, Any]] = []
    cursor = None
    for _ in range(200):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        reply = client.get(f"/stores/{store}/windows", query)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert len(body["items"]) <= int(params.get("limit", 100))
        assert body["partitions"] == list(range(6))
        for item in body["items"]:
            assert item["end_ms"] == item["start_ms"] + MINUTE
            found.append((item["key"], item["start_ms"], item["value"]))
        cursor = body["next_cursor"]
        assert (cursor is not None) == body["has_more"]
        if cursor is None:
            return found
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("store", ["counts", "sums"])
@pytest.mark.parametrize("limit", [1, 5, 48, 1000])
def test_fetch_all_pages_through_every_instance_in_key_then_window_order(
    store: str, limit: int
) -> None:
    client = InstanceClient(windowed_cluster(2), "10.0.0.1:8000")
    assert fetch_all(client, store, limit=limit) == every_window(store)


def test_fetch_all_keeps_windows_starting_in_the_time_range(client: InstanceClient) -> None:
    got = fetch_all(client, "counts", time_from=MINUTE, time_to=2 * MINUTE, limit=4)
    assert got == every_window("counts", MINUTE, 2 * MINUTE)
    assert fetch_all(client, "counts", time_from=60 * MINUTE) == []


def test_all_is_fetch_all_without_times(client: InstanceClient) -> None:
    assert fetch_all(client, "counts") == every_window("counts")
    whole = fetch_all(client, "counts", time_from=0, time_to=2**63 - 1)
    assert whole == every_window("counts")


def test_a_local_fetch_all_reads_this_instance_only_with_cursors(
    cluster: Cluster, client: InstanceClient
) -> None:
    reply = client.get("/stores/counts/windows", {"local": "true", "limit": 1000})
    body = reply.json()
    assert body["partitions"] == sorted(cluster.apps[0].partitions)
    mine = {c for c in CLIENTS if cluster.owner_of("counts", c).name == "i0"}
    expected = [w for w in every_window("counts") if w[0] in mine]
    assert [(i["key"], i["start_ms"], i["value"]) for i in body["items"]] == expected
    assert all(i["cursor"] for i in body["items"])
    assert cluster.network.requests == []


def test_fetch_all_refuses_a_partial_answer(cluster: Cluster, client: InstanceClient) -> None:
    cluster.apps[0].directory.apply(b"i2", None)  # i2's partitions: nobody known
    reply = client.get("/stores/counts/windows")
    assert (reply.status_code, reply.json()["error"]) == (503, "not_ready")
    assert reply.headers["Retry-After"] == "1"
    cluster.gossip()
    cluster.network.down.add("10.0.0.3:8000")
    reply = client.get("/stores/counts/windows")
    assert (reply.status_code, reply.json()["error"]) == (504, "owner_unreachable")


# -- bad page parameters (the time range: test_keyed_time_routes.py) ----------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit must be an integer in [1, 10000]"),
        ({"limit": "x"}, "limit must be an integer in [1, 10000]"),
        ({"cursor": "!!"}, "not a cursor: '!!'"),
        ({"local": "maybe"}, "local must be true or false"),
        ({"stale": "1.7e308"}, "stale must be true or false"),
    ],
)
def test_bad_page_parameters_are_bad_requests(
    client: InstanceClient, params: dict[str, str], message: str
) -> None:
    reply = client.get("/stores/counts/windows", params)
    assert (reply.status_code, reply.json()["message"]) == (400, message)


# -- mounting, the document, the public helper --------------------------------------------------
def test_a_mounted_server_forwards_window_queries_to_the_same_mount(cluster: Cluster) -> None:
    for address, server in list(cluster.network.apps.items()):
        cluster.network.apps[address] = Starlette(routes=[Mount("/query", app=server)])
    client = InstanceClient(cluster, "10.0.0.1:8000")
    key = cluster.key_of("i2")
    reply = client.get(f"/query/stores/counts/windows/{key}")
    assert reply.json()["windows"] == expected_windows("counts", key, WINDOW_STARTS)
    reply = client.get("/query/stores/counts/windows", {"limit": "1000"})
    assert len(reply.json()["items"]) == len(CLIENTS) * len(WINDOW_STARTS)
    assert {r.url.path.split("/stores/")[0] for r in cluster.network.requests} == {"/query"}


def test_cluster_queries_fetch_and_fetch_all_for_an_applications_own_routes(
    cluster: Cluster,
) -> None:
    queries = ClusterQueries(cluster.apps[0], transport=cluster.network, forward_timeout_s=0.5)
    key = cluster.key_of("i1")

    async def read() -> tuple[Any, Any, Any]:
        try:
            one = await queries.fetch("counts", key, WindowRequest(time_to=MINUTE))
            request = parse_window_params({"time_from": "180000", "limit": "100"}).unwrap()
            page = await queries.fetch_all("sums", request)
            wrong = await queries.fetch_all("totals", WindowRequest())
            return one, page, wrong
        finally:
            await queries.aclose()

    one, page, wrong = asyncio.run(read())
    assert one.unwrap() == (key, expected_windows("counts", key, [0, MINUTE]))
    rows = [(w.key, w.window.start_ms, render(v)) for _, w, v in page.unwrap().items]
    assert rows == every_window("sums", 3 * MINUTE)
    assert page.unwrap().next_cursor is None
    assert wrong.reason is FailureReason.BAD_REQUEST
