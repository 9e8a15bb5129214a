"""What a window store's ``/windows/{key}`` and a session store's ``/sessions/{key}`` share on a
broker-free cluster: routed to the key's owner once, refused rather than answered empty on
stale routing, readiness and stale reads, their time range (with the window store's
``/windows`` page) read and checked the same way, and every answer of these routes as the
OpenAPI document says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import streamtable as st
from streamtable.query import FORWARDED_HEADER
from tests.streamtable.query.fakes import (
    WINDOW_STARTS,
    Cluster,
    InstanceClient,
    expected_sessions,
    expected_windows,
    i1_down,
    no_fault,
    rebalancing,
)
from tests.support.openapi import check_documented

pytestmark = pytest.mark.unit

# route -> (store, the key's whole answer)
KEYED: dict[str, tuple[str, Callable[[str], list[dict[str, Any]]]]] = {
    "windows": ("counts", lambda key: expected_windows("counts", key, WINDOW_STARTS)),
    "sessions": ("visits", lambda key: expected_sessions("visits", key)),
}
PATH = "/stores/{store}/sessions/{key}"
TIME_RANGED = ["/stores/counts/windows/c1", "/stores/counts/windows", "/stores/visits/sessions/c1"]


def path_of(cluster: Cluster, route: str, owner: str) -> str:
    """The route's path for a key that instance ``owner`` holds (both stores have STRING keys
    in the same sub-topology: one owner per key)."""
    store = KEYED[route][0]
    return f"/stores/{store}/{route}/{cluster.key_of(owner, store)}"


@pytest.mark.parametrize("route", KEYED)
def test_a_forwarded_request_is_never_forwarded_again(
    cluster: Cluster, client: InstanceClient, route: str
) -> None:
    reply = client.get(path_of(cluster, route, "i1"), headers={FORWARDED_HEADER: "1"})
    assert (reply.status_code, reply.json()["error"]) == (503, "not_owner")
    assert reply.headers["Retry-After"] == "1"
    assert cluster.network.requests == []


@pytest.mark.parametrize("route", KEYED)
def test_stale_metadata_gives_not_owner_never_an_empty_answer(
    cluster: Cluster, client: InstanceClient, route: str
) -> None:
    path = path_of(cluster, route, "i1")
    cluster.apps[1].own([])  # i1 lost its partitions; i0 has not heard yet
    reply = client.get(path)
    assert (reply.status_code, reply.json()["error"]) == (503, "not_owner")
    assert reply.headers["Retry-After"] == "1"
    assert len(cluster.network.requests) == 1


@pytest.mark.parametrize("route", KEYED)
def test_an_unreachable_owner_is_504(cluster: Cluster, client: InstanceClient, route: str) -> None:
    cluster.network.down.add("10.0.0.2:8000")
    reply = client.get(path_of(cluster, route, "i1"))
    assert (reply.status_code, reply.json()["error"]) == (504, "owner_unreachable")


@pytest.mark.parametrize("route", KEYED)
def test_a_not_ready_owner_answers_503_through_the_forward(
    cluster: Cluster, client: InstanceClient, route: str
) -> None:
    cluster.apps[1].state = st.AppState.REBALANCING
    reply = client.get(path_of(cluster, route, "i1"))
    assert (reply.status_code, reply.json()["error"]) == (503, "not_ready")
    assert reply.headers["Retry-After"] == "1"


@pytest.mark.parametrize("route", KEYED)
def test_a_restoring_partition_is_served_only_to_stale_reads(
    cluster: Cluster, client: InstanceClient, route: str
) -> None:
    owner = cluster.apps[0]
    path = path_of(cluster, route, "i0")
    owner.restoring = set(owner.partitions)
    owner.state = st.AppState.REBALANCING  # as the real app is while a task restores
    assert client.get(path).status_code == 503
    reply = client.get(path, {"stale": "1"})
    assert reply.json()[route] == KEYED[route][1](path.rsplit("/", 1)[1])


BAD_TIMES = ["-1", "x", "1.5", "", " 1", "1_000", "1e3", "\u0661", "9223372036854775808", "9" * 40]


@pytest.mark.parametrize("path", TIME_RANGED)
@pytest.mark.parametrize("name", ["time_from", "time_to"])
@pytest.mark.parametrize("value", BAD_TIMES)
def test_a_time_that_is_not_epoch_milliseconds_is_a_bad_request_naming_it(
    client: InstanceClient, path: str, name: str, value: str
) -> None:
    reply = client.get(path, {name: value})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "bad_request"
    assert reply.json()["message"].startswith(f"{name} must be an integer of epoch milliseconds")


@pytest.mark.parametrize("path", TIME_RANGED)
def test_time_from_after_time_to_is_a_bad_request(client: InstanceClient, path: str) -> None:
    reply = client.get(path, {"time_from": "120000", "time_to": "60000"})
    assert reply.status_code == 400
    assert reply.json()["message"] == "time_from (120000) must not be after time_to (60000)"
    assert client.get(path, {"time_from": "60000", "time_to": "60000"}).status_code == 200


@pytest.mark.parametrize("path", TIME_RANGED)
def test_a_rebalancing_app_answers_503_unless_stale_reads_are_asked_for(
    cluster: Cluster, client: InstanceClient, path: str
) -> None:
    for app in cluster.apps:
        app.state = st.AppState.REBALANCING
    reply = client.get(path)
    assert (reply.status_code, reply.json()["error"]) == (503, "not_ready")
    assert reply.headers["Retry-After"] == "1"
    assert client.get(path, {"stale": "true"}).status_code == 200


@pytest.mark.parametrize(
    "path", [p.replace("counts", "nope").replace("visits", "nope") for p in TIME_RANGED]
)
def test_an_unknown_store_is_404(client: InstanceClient, path: str) -> None:
    reply = client.get(path)
    assert (reply.status_code, reply.json()["error"]) == (404, "unknown_store")
    assert reply.json()["store"] == "nope"


FETCH, FETCH_ALL, SESSIONS = "/stores/{store}/windows/{key}", "/stores/{store}/windows", PATH
DOCUMENTED = [
    (no_fault, "GET", FETCH, "/stores/counts/windows/c1", {"time_to": "60000"}, 200),
    (no_fault, "GET", FETCH, "/stores/counts/windows/c1", {"time_from": "-1"}, 400),
    (no_fault, "GET", FETCH, "/stores/totals/windows/c1", {}, 400),
    (no_fault, "GET", FETCH, "/stores/nope/windows/c1", {}, 404),
    (rebalancing, "GET", FETCH, "/stores/counts/windows/c1", {}, 503),
    (i1_down, "GET", FETCH, "/stores/counts/windows/{i1}", {}, 504),
    (no_fault, "POST", FETCH, "/stores/counts/windows/c1", {}, 405),
    (no_fault, "GET", FETCH_ALL, "/stores/counts/windows", {"limit": "5"}, 200),
    (no_fault, "GET", FETCH_ALL, "/stores/sums/windows", {"local": "true"}, 200),
    (no_fault, "GET", FETCH_ALL, "/stores/counts/windows", {"cursor": "!!"}, 400),
    (no_fault, "GET", FETCH_ALL, "/stores/nope/windows", {}, 404),
    (rebalancing, "GET", FETCH_ALL, "/stores/counts/windows", {}, 503),
    (i1_down, "GET", FETCH_ALL, "/stores/counts/windows", {}, 504),
    (no_fault, "DELETE", FETCH_ALL, "/stores/counts/windows", {}, 405),
    (no_fault, "GET", SESSIONS, "/stores/visits/sessions/c1", {"time_to": "60000"}, 200),
    (no_fault, "GET", SESSIONS, "/stores/spans/sessions/%22c1%22", {}, 200),
    (no_fault, "GET", SESSIONS, "/stores/visits/sessions/c1", {"time_from": "-1"}, 400),
    (no_fault, "GET", SESSIONS, "/stores/totals/sessions/c1", {}, 400),
    (no_fault, "GET", SESSIONS, "/stores/nope/sessions/c1", {}, 404),
    (rebalancing, "GET", SESSIONS, "/stores/visits/sessions/c1", {}, 503),
    (i1_down, "GET", SESSIONS, "/stores/visits/sessions/{i1}", {}, 504),
    (no_fault, "POST", SESSIONS, "/stores/visits/sessions/c1", {}, 405),
]


@pytest.mark.parametrize(("setup", "method", "template", "url", "params", "status"), DOCUMENTED)
def test_each_answer_is_documented(
    cluster: Cluster,
    client: InstanceClient,
    setup: Callable[[Cluster], None],
    method: str,
    template: str,
    url: str,
    params: dict[str, str],
    status: int,
) -> None:
    document = client.get("/openapi.json").json()
    path = url.replace("{i1}", cluster.key_of("i1"))  # a key that instance i1 holds
    setup(cluster)
    reply = client.request(method, path, params)
    assert reply.status_code == status, reply.text
    check_documented(document, "GET", template, reply)
