"""The query server's OpenAPI document matches what it serves: every route is documented, and
each answer (successes, every failure, fuzzed parameters) has a documented status and a body
that validates against the documented schema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from starlette.applications import Starlette
from starlette.routing import Mount, Route

import streamtable as st
import streamtable.query as q
from tests.streamtable.query.fakes import STORE, Cluster, InstanceClient, seeded
from tests.support.openapi import check_documented

pytestmark = pytest.mark.unit

KEY_PATH = "/stores/{store}/keys/{key}"
SCAN_PATH = "/stores/{store}"
HOLDERS = {f"c{i}": frozenset({f"p{i}"}) for i in range(12)}


@pytest.fixture
def cluster() -> Cluster:
    return seeded(3, HOLDERS)


@pytest.fixture
def client(cluster: Cluster) -> InstanceClient:
    return InstanceClient(cluster, "10.0.0.1:8000")


def document(client: InstanceClient) -> dict[str, Any]:
    reply = client.get("/openapi.json")
    assert reply.status_code == 200
    found: dict[str, Any] = reply.json()
    return found


def key_url(key: Any, store: str = STORE) -> str:
    return f"/stores/{store}/keys/{json.dumps(key)}"


def remote_key(cluster: Cluster) -> str:
    return next(k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i1")


def test_every_route_served_is_documented_and_nothing_else(cluster: Cluster) -> None:
    server = cluster.servers["i0"]
    assert isinstance(server, Starlette)
    served = {
        re.sub(r":\w+}", "}", route.path) for route in server.routes if isinstance(route, Route)
    }
    assert served == set(document(InstanceClient(cluster, "10.0.0.1:8000"))["paths"])


Setup = Callable[[Cluster], None]


def _not_running(cluster: Cluster) -> None:
    cluster.apps[0].state = st.AppState.REBALANCING


def _i1_down(cluster: Cluster) -> None:
    cluster.network.down.add("10.0.0.2:8000")


def _i2_forgotten(cluster: Cluster) -> None:
    cluster.apps[0].directory.apply(b"i2", None)


def _nothing(cluster: Cluster) -> None:
    pass


# (setup, method, template, url, params, status)
CASES: list[tuple[Setup, str, str, str | None, dict[str, str], int]] = [
    (_nothing, "GET", KEY_PATH, None, {}, 200),
    (_nothing, "GET", KEY_PATH, key_url("nobody"), {}, 404),
    (_nothing, "GET", KEY_PATH, key_url("x", "nope"), {}, 404),
    (_nothing, "GET", KEY_PATH, f"/stores/{STORE}/keys/c1", {}, 400),
    (_nothing, "GET", KEY_PATH, key_url("c1"), {"stale": "maybe"}, 400),
    (_not_running, "GET", KEY_PATH, key_url("c1"), {}, 503),
    (_i1_down, "GET", KEY_PATH, None, {}, 504),
    (_nothing, "POST", KEY_PATH, key_url("c1"), {}, 405),
    (_nothing, "GET", SCAN_PATH, f"/stores/{STORE}", {"limit": "5"}, 200),
    (_nothing, "GET", SCAN_PATH, f"/stores/{STORE}", {"local": "true"}, 200),
    (_nothing, "GET", SCAN_PATH, f"/stores/{STORE}", {"limit": "0"}, 400),
    (_nothing, "GET", SCAN_PATH, f"/stores/{STORE}", {"cursor": "!!"}, 400),
    (_nothing, "GET", SCAN_PATH, f"/stores/{STORE}", {"from": "c1"}, 400),
    (_nothing, "GET", SCAN_PATH, "/stores/nope", {}, 404),
    (_i2_forgotten, "GET", SCAN_PATH, f"/stores/{STORE}", {}, 503),
    (_i1_down, "GET", SCAN_PATH, f"/stores/{STORE}", {}, 504),
    (_nothing, "DELETE", SCAN_PATH, f"/stores/{STORE}", {}, 405),
    (_nothing, "GET", "/instances", "/instances", {}, 200),
    (_nothing, "PUT", "/instances", "/instances", {}, 405),
    (_nothing, "GET", "/openapi.json", "/openapi.json", {}, 200),
]


@pytest.mark.parametrize(("setup", "method", "template", "url", "params", "status"), CASES)
def test_each_answer_is_documented(
    cluster: Cluster,
    client: InstanceClient,
    setup: Setup,
    method: str,
    template: str,
    url: str | None,
    params: dict[str, str],
    status: int,
) -> None:
    doc = document(client)
    path = url or key_url(remote_key(cluster))  # a key another instance owns
    setup(cluster)
    reply = client.request(method, path, params)
    assert reply.status_code == status, reply.text
    check_documented(doc, "GET", template, reply)  # every route is GET; 405 answers the rest


def test_a_path_it_does_not_serve_answers_the_documented_error_body(
    client: InstanceClient,
) -> None:
    doc = document(client)
    reply = client.get("/nothing/here")
    assert reply.status_code == 404
    check_documented({**doc, "paths": {"/x": doc["paths"][SCAN_PATH]}}, "GET", "/x", reply)


@pytest.mark.parametrize("method", ["POST", "TRACE", "DELETE"])
def test_a_method_it_does_not_serve_answers_405_with_allow(
    client: InstanceClient, method: str
) -> None:
    # schemathesis sent TRACE /instances and got a 405 without Allow (RFC 9110 requires it)
    reply = client.request(method, "/instances")
    assert reply.status_code == 405
    assert reply.json()["error"] == "bad_request"
    assert "GET" in reply.headers["allow"].split(", ")
    check_documented(document(client), "GET", "/instances", reply)


@pytest.fixture(scope="module")
def fuzzed() -> tuple[InstanceClient, dict[str, Any]]:
    client = InstanceClient(seeded(2, HOLDERS), "10.0.0.1:8000")
    return client, document(client)


TEXT = hs.text(max_size=12)
SCAN_PARAMS = hs.dictionaries(
    hs.sampled_from(["from", "to", "prefix", "limit", "cursor", "local", "stale"]),
    hs.one_of(TEXT, hs.integers(-5, 20_000).map(str), hs.sampled_from(['"c1"', "true", "0"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=SCAN_PARAMS, store=hs.sampled_from([STORE, "nope", "share-holder-store"]))
def test_fuzzed_scans_get_documented_answers(
    fuzzed: tuple[InstanceClient, dict[str, Any]], params: dict[str, str], store: str
) -> None:
    client, doc = fuzzed
    reply = client.get(f"/stores/{store}", params=params)
    assert reply.status_code in (200, 400, 404), reply.text
    check_documented(doc, "GET", SCAN_PATH, reply)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=hs.text(min_size=1, max_size=12), stale=hs.one_of(hs.none(), TEXT))
def test_fuzzed_keys_get_documented_answers(
    fuzzed: tuple[InstanceClient, dict[str, Any]], key: str, stale: str | None
) -> None:
    client, doc = fuzzed
    params = {} if stale is None else {"stale": stale}
    reply = client.get(f"/stores/{STORE}/keys/{quote(key, safe='')}", params=params)
    assert reply.status_code in (200, 400, 404), reply.text
    check_documented(doc, "GET", KEY_PATH, reply)


def test_a_mounted_server_names_its_mount_in_the_document(cluster: Cluster) -> None:
    address = "10.0.0.1:8000"
    cluster.network.apps[address] = Starlette(
        routes=[Mount("/query", app=cluster.network.apps[address])]
    )
    doc = InstanceClient(cluster, address).get("/query/openapi.json").json()
    assert doc["servers"] == [{"url": "/query"}]


def test_the_exported_names_are_the_public_api() -> None:
    assert q.__all__ == sorted(q.__all__, key=lambda n: (not n.isupper(), n))
    assert set(q.__all__) == {
        "ClusterQueries", "DEFAULT_LIMIT", "ErrorBody", "FORWARDED_HEADER", "FailureReason",
        "HostInfo", "KeyQueryMetadata", "MAX_LIMIT", "QueryResult", "QueryableApp", "ScanPage",
        "ScanRequest", "StreamsMetadata", "WindowRequest", "create_query_app", "error_response",
        "openapi_document", "parse_flag", "parse_key", "parse_limit", "parse_scan_params",
        "parse_window_params", "render",
    }  # fmt: skip
