"""Session stores over HTTP on a broker-free cluster: one key's sessions from the instance that
owns the key, earliest end first, bounded by ``time_from``/``time_to`` as ``find_sessions``
(sessions overlapping the range); failures as a window store's ``fetch`` has them; every answer
as the OpenAPI document says; the local answer and the session body on their own."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

import streamtable as st
from streamtable.query import FORWARDED_HEADER, ClusterQueries, FailureReason
from streamtable.query._sessions import local_sessions, session_body
from tests.streamtable.query.fakes import (
    CLIENTS,
    Cluster,
    InstanceClient,
    expected_sessions,
)

pytestmark = pytest.mark.unit

PATH = "/stores/{store}/sessions/{key}"
LATEST = 2**63 - 1
ASK_SESSIONS = "query a key's sessions at /stores/visits/sessions/{key}"


# -- one key's sessions, routed to the owner ----------------------------------------------------
def test_a_keys_sessions_come_from_its_owner_earliest_end_first(
    cluster: Cluster, client: InstanceClient
) -> None:
    forwarded = 0
    for key in CLIENTS:
        reply = client.get(f"/stores/visits/sessions/{key}")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "store": "visits",
            "key": key,
            "sessions": expected_sessions("visits", key),
        }
        forwarded += cluster.owner_of("visits", key).name != "i0"
    assert forwarded > 0
    assert len(cluster.network.requests) == forwarded  # one hop per remote key
    assert all(r.headers[FORWARDED_HEADER] == "1" for r in cluster.network.requests)
    assert all("/sessions/" in r.url.path for r in cluster.network.requests)


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        (40_000, 120_000),
        (45_000, 45_000),
        (46_000, 119_999),
        (0, 0),
        (180_000, LATEST),
        (1, 29_999),
    ],
)
def test_the_time_range_keeps_the_sessions_overlapping_it_both_ends_inclusive(
    cluster: Cluster, client: InstanceClient, lo: int, hi: int
) -> None:
    key = cluster.key_of("i2")
    reply = client.get(f"/stores/visits/sessions/{key}", {"time_from": lo, "time_to": hi})
    assert reply.status_code == 200, reply.text
    assert reply.json()["sessions"] == expected_sessions("visits", key, lo, hi)
    truth = cluster.apps[2].session_store("visits").find_sessions(key, lo, hi)
    assert [(w.window.start_ms, w.window.end_ms) for w, _ in truth] == [
        (s["start_ms"], s["end_ms"]) for s in reply.json()["sessions"]
    ]


def test_a_key_without_sessions_is_an_empty_list_from_its_owner(
    cluster: Cluster, client: InstanceClient
) -> None:
    for key in ("nobody", cluster.key_of("i1")):
        reply = client.get(f"/stores/visits/sessions/{key}", {"time_from": 200_000})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"store": "visits", "key": key, "sessions": []}


def test_json_keys_and_values_go_through_the_owner(
    cluster: Cluster, client: InstanceClient
) -> None:
    key = cluster.key_of("i1")
    reply = client.get(f"/stores/spans/sessions/{json.dumps(key)}", {"time_to": 30_000})
    assert reply.status_code == 200, reply.text
    assert reply.json()["sessions"] == expected_sessions("spans", key, 0, 30_000)
    bad = client.get(f"/stores/spans/sessions/{key}")  # DEFAULT keys are JSON text
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_key")


# -- bad requests, other stores ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status", "message_end"),
    [
        ("/stores/nope/sessions/c1", 404, "no store named 'nope'"),
        ("/stores/totals/sessions/c1", 400, "query it at /stores/totals"),
        ("/stores/counts/sessions/c1", 400, "query its windows at /stores/counts/windows"),
        ("/stores/visits/windows/c1", 400, ASK_SESSIONS),
        ("/stores/visits/keys/c1", 400, ASK_SESSIONS),
        ("/stores/visits", 400, ASK_SESSIONS),
    ],
)  # fmt: skip
def test_a_store_that_is_not_a_session_store_is_refused_before_any_routing(
    cluster: Cluster, client: InstanceClient, path: str, status: int, message_end: str
) -> None:
    reply = client.get(path)
    assert reply.status_code == status, reply.text
    assert reply.json()["message"].endswith(message_end)
    assert cluster.network.requests == []


# -- the Python API, the local answer, the body --------------------------------------------------
def test_cluster_queries_find_sessions_for_an_applications_own_routes(cluster: Cluster) -> None:
    queries = ClusterQueries(cluster.apps[0], transport=cluster.network, forward_timeout_s=0.5)
    key = cluster.key_of("i1")

    async def read() -> list[Any]:
        try:
            return [
                await queries.find_sessions("visits", key),
                await queries.find_sessions("spans", json.dumps(key), 45_000, 120_000),
                await queries.find_sessions("visits", key, 10, 9),
                await queries.find_sessions("visits", key, -1),
                await queries.find_sessions("counts", key),
            ]
        finally:
            await queries.aclose()

    every, bounded, reversed_, negative, wrong = asyncio.run(read())
    assert every.unwrap() == (key, expected_sessions("visits", key))
    assert bounded.unwrap() == (key, expected_sessions("spans", key, 45_000, 120_000))
    assert len(cluster.network.requests) == 2  # both forwarded to i1; the rest refused here
    assert reversed_.reason is FailureReason.BAD_REQUEST
    assert (
        reversed_.message == "earliest_session_end (10) must not be after latest_session_start (9)"
    )
    assert negative.reason is FailureReason.BAD_REQUEST
    assert negative.message.startswith("earliest_session_end must be an integer of epoch")
    assert wrong.reason is FailureReason.BAD_REQUEST


def test_the_local_answer_is_the_stores_own_order_or_not_owner(cluster: Cluster) -> None:
    app = cluster.apps[0]
    mine, theirs = cluster.key_of("i0"), cluster.key_of("i1")
    here = local_sessions(app, "visits", mine, 0, LATEST, False).unwrap()
    truth = [session_body(w, v) for w, v in app.session_store("visits").fetch(mine)]
    assert here == truth == expected_sessions("visits", mine)
    absent = next(k for k in (f"x{i}" for i in range(100)) if cluster.owner_of("visits", k) is app)
    assert local_sessions(app, "visits", absent, 0, LATEST, False).unwrap() == []
    refused = local_sessions(app, "visits", theirs, 0, LATEST, False)
    assert refused.reason is FailureReason.NOT_OWNER
    for store in ("counts", "totals", "nope"):
        assert local_sessions(app, store, mine, 0, LATEST, False).reason is (
            FailureReason.UNKNOWN_STORE
        )
    app.state = st.AppState.REBALANCING
    assert local_sessions(app, "visits", mine, 0, LATEST, False).reason is FailureReason.NOT_READY
    assert local_sessions(app, "visits", mine, 0, LATEST, True).unwrap() == truth


def test_a_session_body_has_both_ends_inclusive_and_its_value_as_json_data() -> None:
    one_record = st.Windowed("k", st.SessionWindow(5, 5))
    assert session_body(one_record, 1) == {"start_ms": 5, "end_ms": 5, "value": 1}
    value = {"ids": frozenset({"b", "a"}), "raw": b"\x00\x01", "pair": (1, 2), 3: None}
    body = session_body(st.Windowed("k", st.SessionWindow(0, 9)), value)
    assert body["value"] == {
        "ids": ["a", "b"],
        "raw": base64.b64encode(b"\x00\x01").decode(),
        "pair": [1, 2],
        "3": None,
    }
    json.dumps(body)  # plain data
