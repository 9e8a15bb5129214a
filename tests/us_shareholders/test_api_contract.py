"""The service's HTTP contract: one mapping from a query failure to its response, as the
library's query server answers (``not_owner``, not ``FailureReason.NOT_OWNER``), and an OpenAPI
document that matches what is served: each route's answers (successes and failures, fuzzed
parameters) have a documented status, media type and body schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import streamtable as st
from streamtable.query import FailureReason
from tests.streamtable.query.fakes import InstanceClient
from tests.support.openapi import check_documented
from tests.us_shareholders.fake_service import ServiceCluster
from us_shareholders.api import failure_response

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("reason", list(FailureReason))
def test_a_failure_is_answered_with_its_reason_value_and_status(reason: FailureReason) -> None:
    response = failure_response(reason, "why")
    assert json.loads(bytes(response.body)) == {"error": reason.value, "message": "why"}
    assert response.status_code == reason.status
    assert ("retry-after" in response.headers) is reason.retriable


def test_no_reason_is_not_ready() -> None:
    response = failure_response(None, "rebalancing")
    assert response.status_code == 503
    assert json.loads(bytes(response.body))["error"] == "not_ready"
    assert response.headers["retry-after"] == "1"


def make_cluster() -> ServiceCluster:
    made = ServiceCluster(2)
    for i in range(8):
        made.hold(f"c{i}", {f"p{i}": {"ticker": "AAPL", "exchange": "XNAS", "amount": 1}})
    return made


@pytest.fixture
def cluster() -> ServiceCluster:
    return make_cluster()


def document(client: InstanceClient) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/openapi.json").json()
    return found


def test_metrics_are_documented_as_prometheus_text(cluster: ServiceCluster) -> None:
    paths = document(InstanceClient(cluster, "10.0.0.1:8000"))["paths"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    holder = paths["/holders/{client}"]["get"]["responses"]
    assert {"200", "404", "503", "504"} <= set(holder), holder


Setup = Callable[[ServiceCluster], None]


def _nothing(cluster: ServiceCluster) -> None:
    pass


def _rebalancing(cluster: ServiceCluster) -> None:
    for app in cluster.apps:
        app.state = st.AppState.REBALANCING
    cluster.delivering = False


def _peer_down(cluster: ServiceCluster) -> None:
    cluster.network.down.add("10.0.0.2:8000")


def _broker_down(cluster: ServiceCluster) -> None:
    cluster.fail_requests = True


def _remote(cluster: ServiceCluster) -> str:
    return next(
        f"c{i}" for i in range(8) if cluster.owner_of("us-share-holders", f"c{i}").name == "i1"
    )


# (setup, method, template, path (None: a holder another instance owns), params, status)
CASES: list[tuple[Setup, str, str, str | None, dict[str, str], int]] = [
    (_nothing, "GET", "/holders", "/holders", {"limit": "3"}, 200),
    (_nothing, "GET", "/holders", "/holders", {"local": "true"}, 200),
    (_nothing, "GET", "/holders", "/holders", {"limit": "-1"}, 400),
    (_nothing, "GET", "/holders", "/holders", {"cursor": "%%"}, 400),
    (_rebalancing, "GET", "/holders", "/holders", {}, 503),
    (_peer_down, "GET", "/holders", "/holders", {}, 504),
    (_nothing, "GET", "/holders/{client}", None, {}, 200),
    (_nothing, "GET", "/holders/{client}", "/holders/nobody", {}, 404),
    (_rebalancing, "GET", "/holders/{client}", None, {}, 503),
    (_peer_down, "GET", "/holders/{client}", None, {}, 504),
    (_nothing, "GET", "/healthz", "/healthz", {}, 200),
    (_rebalancing, "GET", "/healthz", "/healthz", {}, 503),
    (_nothing, "GET", "/readyz", "/readyz", {}, 200),
    (_rebalancing, "GET", "/readyz", "/readyz", {}, 503),
    (_nothing, "GET", "/metrics", "/metrics", {}, 200),
    (_nothing, "GET", "/digests", "/digests", {}, 200),
    (_nothing, "POST", "/digests/run", "/digests/run", {}, 202),
    (_broker_down, "POST", "/digests/run", "/digests/run", {}, 503),
]


@pytest.mark.parametrize(("setup", "method", "template", "path", "params", "status"), CASES)
def test_each_answer_is_documented(
    cluster: ServiceCluster,
    setup: Setup,
    method: str,
    template: str,
    path: str | None,
    params: dict[str, str],
    status: int,
) -> None:
    client = InstanceClient(cluster, "10.0.0.1:8000")
    doc = document(client)
    url = path or f"/holders/{_remote(cluster)}"
    setup(cluster)
    reply = client.request(method, url, params)
    assert reply.status_code == status, reply.text
    check_documented(doc, method, template, reply)


@pytest.fixture(scope="module")
def fuzzed() -> tuple[InstanceClient, dict[str, Any]]:
    client = InstanceClient(make_cluster(), "10.0.0.1:8000")
    return client, document(client)


PARAMS = hs.dictionaries(
    hs.sampled_from(["limit", "cursor", "local"]),
    hs.one_of(hs.text(max_size=10), hs.integers(-3, 20_000).map(str), hs.just("true")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=PARAMS)
def test_fuzzed_holders_parameters_get_documented_answers(
    fuzzed: tuple[InstanceClient, dict[str, Any]], params: dict[str, str]
) -> None:
    client, doc = fuzzed
    reply = client.get("/holders", params=params)
    assert reply.status_code in (200, 400), reply.text
    check_documented(doc, "GET", "/holders", reply)
