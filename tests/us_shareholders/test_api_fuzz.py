"""The service's HTTP API fuzzed against its own OpenAPI document with schemathesis (see
``tests/support/fuzz.py``) on fake two-instance clusters holding some US holders: every answer
to generated, boundary and malformed requests has a documented status, media type, headers and
body, and none is a server error. Fuzzed three times: a healthy cluster, one with a peer down,
the broker refusing digest requests and the delivery worker stopped (504s, 503s), and one
rebalancing (503 everywhere)."""

from __future__ import annotations

import pytest
from schemathesis.schemas import BaseSchema

import streamtable as st
from tests.support.fuzz import fuzz_test, load_schema
from tests.us_shareholders.fake_service import ServiceCluster
from tests.us_shareholders.test_api_contract import make_cluster

pytestmark = pytest.mark.unit


def fuzzed(cluster: ServiceCluster, faults: tuple[int, ...] = ()) -> BaseSchema:
    clients = {"client": [f"c{i}" for i in range(8)]}
    return load_schema(cluster.network.apps["10.0.0.1:8000"], clients, faults=faults)


def degraded() -> ServiceCluster:
    cluster = make_cluster()
    cluster.network.down.add("10.0.0.2:8000")
    cluster.fail_requests = True
    cluster.delivering = False
    return cluster


def rebalancing() -> ServiceCluster:
    cluster = make_cluster()
    for app in cluster.apps:
        app.state = st.AppState.REBALANCING
    return cluster


test_a_healthy_cluster_answers_as_documented = fuzz_test(fuzzed(make_cluster()))
test_a_cluster_with_a_peer_down_answers_as_documented = fuzz_test(
    fuzzed(degraded(), faults=(503, 504))
)
test_a_rebalancing_cluster_answers_as_documented = fuzz_test(fuzzed(rebalancing(), faults=(503,)))
