"""The HTTP query server over a broker-free cluster: routing, forwarding, failures as status
codes, and cluster-wide scans with pagination."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import streamtable as st
from streamtable.query import FORWARDED_HEADER
from streamtable.serde import DEFAULT
from tests.streamtable.query.fakes import STORE, Cluster, InstanceClient, seeded

pytestmark = pytest.mark.unit

HOLDERS = {f"c{i}": frozenset({f"p{i}", f"p{i + 100}"}) for i in range(40)}


@pytest.fixture
def cluster() -> Cluster:
    return seeded(3, HOLDERS)


@pytest.fixture
def client(cluster: Cluster) -> InstanceClient:
    return InstanceClient(cluster, "10.0.0.1:8000")


def url(key: Any) -> str:
    return f"/stores/{STORE}/keys/{json.dumps(key)}"


def test_every_key_is_answered_from_its_owner(cluster: Cluster, client: InstanceClient) -> None:
    forwarded = 0
    for key, positions in HOLDERS.items():
        response = client.get(url(key))
        assert response.status_code == 200, response.text
        assert response.json() == {"store": STORE, "key": key, "value": sorted(positions)}
        forwarded += cluster.owner_of(STORE, key).name != "i0"
    assert forwarded > 0
    assert len(cluster.network.requests) == forwarded  # one hop per remote key
    assert all(r.headers[FORWARDED_HEADER] for r in cluster.network.requests)


def test_absent_key_is_404_from_its_owner(client: InstanceClient) -> None:
    for key in ("nobody", "nobody-else", "x"):
        response = client.get(url(key))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_undecodable_key_is_400(client: InstanceClient) -> None:
    response = client.get(f"/stores/{STORE}/keys/c1")  # DEFAULT keys are JSON: "c1"
    assert response.status_code == 400
    assert response.json()["error"] == "bad_key"


def test_string_store_takes_the_raw_key(cluster: Cluster, client: InstanceClient) -> None:
    cluster.put("share-holder-store", "p/1", {"id": "p/1"})
    response = client.get("/stores/share-holder-store/keys/p%2F1")
    assert response.status_code == 200, response.text
    assert response.json()["value"] == {"id": "p/1"}


def test_unknown_store_is_404(client: InstanceClient) -> None:
    assert client.get("/stores/nope/keys/1").json()["error"] == "unknown_store"
    assert client.get("/stores/nope").status_code == 404


def test_not_ready_owner_is_503_with_retry_after(cluster: Cluster, client: InstanceClient) -> None:
    key = next(k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i1")
    cluster.apps[1].state = st.AppState.REBALANCING
    response = client.get(url(key))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "not_ready"


def test_stale_read_is_opt_in(cluster: Cluster, client: InstanceClient) -> None:
    key = next(k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i0")
    cluster.apps[0].state = st.AppState.REBALANCING
    assert client.get(url(key)).status_code == 503
    response = client.get(url(key), params={"stale": "true"})
    assert response.status_code == 200
    assert response.json()["value"] == sorted(HOLDERS[key])


def test_restoring_partition_is_served_only_to_stale_reads(
    cluster: Cluster, client: InstanceClient
) -> None:
    owner = cluster.apps[0]
    key = next(k for k in HOLDERS if cluster.owner_of(STORE, k) is owner)
    owner.restoring = set(owner.partitions)
    owner.state = st.AppState.REBALANCING  # as the real app is while a task restores
    assert client.get(url(key)).status_code == 503
    response = client.get(url(key), params={"stale": "1"})
    assert response.status_code == 200
    assert response.json()["value"] == sorted(HOLDERS[key])


def test_stale_metadata_gives_not_owner_never_a_wrong_answer(
    cluster: Cluster, client: InstanceClient
) -> None:
    key = next(k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i1")
    cluster.apps[1].own([])  # i1 lost its partitions; i0 has not heard yet
    response = client.get(url(key))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "not_owner"


def test_forwarded_request_is_never_forwarded_again(
    cluster: Cluster, client: InstanceClient
) -> None:
    key = next(k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i1")
    response = client.get(url(key), headers={FORWARDED_HEADER: "1"})
    assert response.json()["error"] == "not_owner"
    assert cluster.network.requests == []


def test_unreachable_owner_is_504(cluster: Cluster, client: InstanceClient) -> None:
    key = next(k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i1")
    cluster.network.down.add("10.0.0.2:8000")
    assert client.get(url(key)).status_code == 504
    cluster.network.down.clear()
    cluster.network.slow.add("10.0.0.2:8000")
    response = client.get(url(key))
    assert response.status_code == 504
    assert response.json()["error"] == "owner_unreachable"


def test_no_known_owner_is_503(cluster: Cluster, client: InstanceClient) -> None:
    key = next(k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i1")
    cluster.apps[0].directory.apply(b"i1", None)
    response = client.get(url(key))
    assert (response.status_code, response.json()["error"]) == (503, "not_ready")
    assert "Retry-After" in response.headers


def test_closed_app_answers_503(cluster: Cluster, client: InstanceClient) -> None:
    cluster.apps[0].state = st.AppState.NOT_RUNNING
    assert client.get(url("c1")).status_code == 503
    assert client.get(f"/stores/{STORE}").status_code == 503


def scan_all(client: InstanceClient, **params: Any) -> list[tuple[Any, Any]]:
    items: list[tuple[Any, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/stores/{STORE}", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= int(params.get("limit", 100))
        items += [(i["key"], i["value"]) for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def by_bytes(keys: list[str]) -> list[str]:
    return sorted(keys, key=DEFAULT.serialize)


def test_cluster_scan_pages_through_every_key_in_key_order(client: InstanceClient) -> None:
    expected = [(k, sorted(HOLDERS[k])) for k in by_bytes(list(HOLDERS))]
    assert scan_all(client) == expected
    for limit in (1, 7, 40, 1000):
        assert scan_all(client, limit=limit) == expected


def test_cluster_scan_with_bounds_and_prefix(client: InstanceClient) -> None:
    keys = by_bytes(list(HOLDERS))
    got = [k for k, _ in scan_all(client, limit=3, **{"from": '"c12"', "to": '"c25"'})]
    assert got == [k for k in keys if DEFAULT.serialize("c12") <= DEFAULT.serialize(k)
                   <= DEFAULT.serialize("c25")]  # fmt: skip
    got = [k for k, _ in scan_all(client, limit=2, prefix="c1")]
    assert got == [k for k in keys if k.startswith("c1")]


def test_local_scan_returns_only_this_instances_partitions(
    cluster: Cluster, client: InstanceClient
) -> None:
    body = client.get(f"/stores/{STORE}", params={"local": "true", "limit": 1000}).json()
    assert body["partitions"] == sorted(cluster.apps[0].partitions)
    local = [k for k in HOLDERS if cluster.owner_of(STORE, k).name == "i0"]
    assert [i["key"] for i in body["items"]] == by_bytes(local)
    assert cluster.network.requests == []


def test_cluster_scan_refuses_partial_answers(cluster: Cluster, client: InstanceClient) -> None:
    cluster.apps[0].directory.apply(b"i2", None)  # i2's partitions: nobody known
    response = client.get(f"/stores/{STORE}")
    assert (response.status_code, response.json()["error"]) == (503, "not_ready")
    cluster.gossip()
    cluster.apps[2].own([])  # i2 lost them but i0 has not heard
    response = client.get(f"/stores/{STORE}")
    assert (response.status_code, response.json()["error"]) == (503, "not_ready")
    assert response.headers["Retry-After"] == "1"


def test_cluster_scan_with_an_unreachable_instance_is_504(
    cluster: Cluster, client: InstanceClient
) -> None:
    cluster.network.down.add("10.0.0.3:8000")
    assert client.get(f"/stores/{STORE}").status_code == 504


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "10001"}, {"limit": "x"}, {"cursor": "!!"}, {"from": "c1"}],
)
def test_bad_scan_parameters_are_400(client: InstanceClient, params: dict[str, str]) -> None:
    assert client.get(f"/stores/{STORE}", params=params).status_code == 400


def test_instances_lists_the_cluster(client: InstanceClient) -> None:
    body = client.get("/instances").json()
    assert [i["instance_id"] for i in body["instances"]] == ["i0", "i1", "i2"]
    assert body["instances"][1]["application_server"] == "10.0.0.2:8000"
    assert body["instances"][1]["active"][STORE] == [1, 4]
    assert body["instances"][0]["is_local"] is True


def test_a_mounted_server_forwards_to_the_same_mount_path_on_its_peers(cluster: Cluster) -> None:
    # As the service does: api.mount("/query", create_query_app(app)) on every instance.
    for address, server in list(cluster.network.apps.items()):
        cluster.network.apps[address] = Starlette(routes=[Mount("/query", app=server)])
    client = InstanceClient(cluster, "10.0.0.1:8000")
    remote = [k for k in HOLDERS if cluster.owner_of(STORE, k).name != "i0"]
    assert remote
    for key in remote:
        response = client.get("/query" + url(key))
        assert response.status_code == 200, response.text
        assert response.json()["value"] == sorted(HOLDERS[key])
    assert {r.url.path.split("/stores/")[0] for r in cluster.network.requests} == {"/query"}
    response = client.get(f"/query/stores/{STORE}", params={"limit": "1000"})
    assert response.status_code == 200, response.text
    assert sorted(i["key"] for i in response.json()["items"]) == sorted(HOLDERS)


def test_a_key_with_a_newline_is_answered_as_a_key(
    cluster: Cluster, client: InstanceClient
) -> None:
    """Before, Starlette's ``path`` route stopped at the newline: a bare text 404."""
    cluster.put(STORE, "line\nbreak", frozenset({"p1"}))
    reply = client.get(url("line\nbreak"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["value"] == ["p1"]
    missing = client.get(url("no\nsuch"))
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


@pytest.mark.parametrize("path", [url("c1"), f"/stores/{STORE}"])
@pytest.mark.parametrize("value", ["1.7e308", "maybe", ""])  # "": schemathesis sent stale=
def test_a_flag_that_is_neither_true_nor_false_is_a_bad_request(
    client: InstanceClient, path: str, value: str
) -> None:
    reply = client.get(path, params={"stale": value})
    assert reply.status_code == 400
    assert reply.json()["error"] == "bad_request"
    assert "stale must be true or false" in reply.json()["message"]


@pytest.mark.parametrize("value", ["true", "FALSE", "1", "0", "yes", "no"])
def test_true_and_false_are_read(client: InstanceClient, value: str) -> None:
    assert client.get(url("c1"), params={"stale": value}).status_code == 200


def test_a_path_it_does_not_serve_has_an_error_body(client: InstanceClient) -> None:
    reply = client.get("/nothing/here")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] == "bad_request"
