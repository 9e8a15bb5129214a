"""The query server fuzzed against its own OpenAPI document with schemathesis (see
``tests/support/fuzz.py``): every answer to generated, boundary and malformed requests has a
documented status, media type, headers and body, and none is a server error. Fuzzed three
times: a healthy cluster, one with a peer down and partitions restoring (504s, 503s, stale
reads), and one rebalancing (503 everywhere)."""

from __future__ import annotations

import json

import pytest
from schemathesis.schemas import BaseSchema

import streamtable as st
from tests.streamtable.query.fakes import STORE, Cluster, seeded
from tests.support.fuzz import fuzz_test, load_schema

pytestmark = pytest.mark.unit

HOLDERS = {f"c{i}": frozenset({f"p{i}"}) for i in range(12)}
ADDRESS = "10.0.0.1:8000"


def fuzzed(cluster: Cluster, faults: tuple[int, ...] = ()) -> BaseSchema:
    known = {"store": [STORE, "share-holder-store"], "key": [json.dumps(k) for k in HOLDERS]}
    return load_schema(cluster.network.apps[ADDRESS], known, faults=faults)


def degraded() -> Cluster:
    cluster = seeded(2, HOLDERS)
    cluster.network.down.add("10.0.0.2:8000")
    cluster.apps[0].restoring = set(list(cluster.apps[0].partitions)[:1])
    return cluster


def rebalancing() -> Cluster:
    cluster = seeded(2, HOLDERS)
    for app in cluster.apps:
        app.state = st.AppState.REBALANCING
    return cluster


test_a_healthy_cluster_answers_as_documented = fuzz_test(fuzzed(seeded(2, HOLDERS)))
test_a_cluster_with_a_peer_down_answers_as_documented = fuzz_test(
    fuzzed(degraded(), faults=(503, 504))
)
test_a_rebalancing_cluster_answers_as_documented = fuzz_test(fuzzed(rebalancing(), faults=(503,)))
