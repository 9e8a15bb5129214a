"""The query server fuzzed against its own OpenAPI document with schemathesis (see
``tests/support/fuzz.py``): every answer to generated, boundary and malformed requests has a
documented status, media type, headers and body, and none is a server error. Fuzzed three
times: a healthy cluster, one with a peer down and partitions restoring (504s, 503s, stale
reads), and one rebalancing (503 everywhere); then a cluster of window stores, healthy and
rebalancing, so that the window and session operations are fuzzed where they answer windows
and sessions too."""

from __future__ import annotations

import json

import pytest
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema

import streamtable as st
from tests.streamtable.query.fakes import (
    CLIENTS,
    SESSION_STORES,
    STORE,
    WINDOWED_STORES,
    Cluster,
    seeded,
    windowed_cluster,
)
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


def fuzzed_windows(cluster: Cluster, faults: tuple[int, ...] = ()) -> BaseSchema:
    keys = CLIENTS + [json.dumps(c) for c in CLIENTS]  # STRING keys, and DEFAULT (JSON) keys
    known = {"store": [*WINDOWED_STORES, *SESSION_STORES, "totals"], "key": keys}
    return load_schema(cluster.network.apps[ADDRESS], known, faults=faults)


def rebalancing_windows() -> Cluster:
    cluster = windowed_cluster(2)
    for app in cluster.apps:
        app.state = st.AppState.REBALANCING
    return cluster


def test_every_operation_is_fuzzed() -> None:
    """Each operation of the document, the window and session ones included (schemathesis
    leaves out the document's own route)."""
    schema = fuzzed(seeded(2, HOLDERS))
    operations = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.add(f"{result.ok().method.upper()} {result.ok().path}")
    assert operations == {
        "GET /instances",
        "GET /stores/{store}",
        "GET /stores/{store}/keys/{key}",
        "GET /stores/{store}/sessions/{key}",
        "GET /stores/{store}/windows",
        "GET /stores/{store}/windows/{key}",
    }


test_a_healthy_windowed_cluster_answers_as_documented = fuzz_test(
    fuzzed_windows(windowed_cluster(2))
)
test_a_rebalancing_windowed_cluster_answers_as_documented = fuzz_test(
    fuzzed_windows(rebalancing_windows(), faults=(503,))
)
