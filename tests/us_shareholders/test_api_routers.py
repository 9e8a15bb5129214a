"""The service's routers over a broker-free cluster of fake instances: holders paged across
every instance (cursor continuation), routed single holders, failures as the library's error
bodies, health and digests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

import streamtable as st
from tests.streamtable.query.fakes import InstanceClient
from tests.us_shareholders.fake_service import ServiceCluster
from us_shareholders.holder_pages import HolderListingError, all_holders

pytestmark = pytest.mark.unit

HOLDINGS = {
    f"client{i:02d}": {
        f"p{i}": {"ticker": "AAPL", "exchange": "XNAS", "amount": i},
        f"p{i + 50}": {"ticker": "IBM", "exchange": "NYSE", "amount": 2},
    }
    for i in range(30)
}


def expected(client: str) -> dict[str, Any]:
    held = HOLDINGS[client]
    return {"client": client, "positions": [{"id": p, **held[p]} for p in sorted(held)]}


@pytest.fixture
def cluster() -> ServiceCluster:
    made = ServiceCluster(3)
    for client, positions in HOLDINGS.items():
        made.hold(client, positions)
    return made


@pytest.fixture
def client(cluster: ServiceCluster) -> InstanceClient:
    return InstanceClient(cluster, "10.0.0.1:8000")


@pytest.mark.parametrize("limit", [1, 4, 7, 30, None])
def test_holders_are_paged_across_every_instance_in_client_order(
    client: InstanceClient, limit: int | None
) -> None:
    pages = []

    def get(path: str) -> Any:
        reply = client.get(path)
        pages.append(reply.json())
        return reply

    listed = all_holders(get, limit=limit)
    assert listed == [expected(c) for c in sorted(HOLDINGS)]
    assert all(len(p["holders"]) <= (limit or 1000) for p in pages)
    assert len(pages) == -(-len(HOLDINGS) // (limit or 1000))
    assert pages[-1]["next_cursor"] is None


def test_a_page_continues_after_its_cursor(cluster: ServiceCluster, client: InstanceClient) -> None:
    first = client.get("/holders", params={"limit": "10"}).json()
    assert [h["client"] for h in first["holders"]] == sorted(HOLDINGS)[:10]
    assert first["next_cursor"]
    second = client.get("/holders", params={"limit": "10", "cursor": first["next_cursor"]})
    assert [h["client"] for h in second.json()["holders"]] == sorted(HOLDINGS)[10:20]
    assert any(r.url.path.startswith("/query/stores/") for r in cluster.network.requests)


def test_local_holders_are_this_instances_only(cluster: ServiceCluster) -> None:
    mine = [c for c in sorted(HOLDINGS) if cluster.owner_of("us-share-holders", c).name == "i1"]
    client = InstanceClient(cluster, "10.0.0.2:8000")
    listed = all_holders(client.get, limit=3, local=True)
    assert listed == [expected(c) for c in mine]
    assert cluster.network.requests == []


def test_holders_without_every_partition_covered_is_503(
    cluster: ServiceCluster, client: InstanceClient
) -> None:
    cluster.apps[0].directory.apply(b"i2", None)  # i2's partitions: nobody known
    reply = client.get("/holders")
    assert (reply.status_code, reply.json()["error"]) == (503, "not_ready")
    assert reply.headers["Retry-After"] == "1"
    with pytest.raises(HolderListingError) as caught:
        all_holders(client.get)
    assert caught.value.reply is not None
    assert caught.value.reply.status_code == 503


def test_an_unreachable_instance_is_504(cluster: ServiceCluster, client: InstanceClient) -> None:
    cluster.network.down.add("10.0.0.3:8000")
    reply = client.get("/holders")
    assert (reply.status_code, reply.json()["error"]) == (504, "owner_unreachable")
    remote = next(c for c in HOLDINGS if cluster.owner_of("us-share-holders", c).name == "i2")
    reply = client.get(f"/holders/{remote}")
    assert (reply.status_code, reply.json()["error"]) == (504, "owner_unreachable")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "10001"},
        {"limit": "x"},
        {"cursor": "!!"},
        {"local": "maybe"},
        {"local": ""},  # empty: neither true nor false (schemathesis sent stale= to the library)
    ],
)
def test_a_bad_parameter_is_400_with_the_librarys_error_body(
    client: InstanceClient, params: dict[str, str]
) -> None:
    reply = client.get("/holders", params=params)
    assert reply.status_code == 400
    assert reply.json()["error"] == "bad_request"
    assert reply.json()["message"]


def test_every_holder_is_answered_from_its_owner(
    cluster: ServiceCluster, client: InstanceClient
) -> None:
    for name in HOLDINGS:
        reply = client.get(f"/holders/{name}")
        assert reply.status_code == 200, reply.text
        assert reply.json() == expected(name)
    assert any(r.url.path.startswith("/query/stores/") for r in cluster.network.requests)


def test_a_client_id_with_a_newline_is_answered_from_its_owner(
    cluster: ServiceCluster, client: InstanceClient
) -> None:
    # schemathesis: GET /holders/a%0Ab owned by a peer answered 504 owner_unreachable (the
    # forward to the peer's /query mount got FastAPI's bare 404)
    positions = {"p1": {"ticker": "AAPL", "exchange": "XNAS", "amount": 1}}
    names = [f"a\nb{i}" for i in range(12)]
    for name in names:
        cluster.hold(name, positions)
    assert any(cluster.owner_of("us-share-holders", n).name != "i0" for n in names)
    for name in names:
        reply = client.get(f"/holders/{quote(name, safe='')}")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"client": name, "positions": [{"id": "p1", **positions["p1"]}]}
        read = client.get(f"/query/stores/us-share-holders/keys/{quote(name, safe='')}")
        assert read.status_code == 200, read.text  # string keys: the text is the key


def test_a_client_without_us_stock_is_404(cluster: ServiceCluster, client: InstanceClient) -> None:
    for name in ("nobody", "client99", "x y"):
        reply = client.get(f"/holders/{name}")
        assert reply.status_code == 404
        assert reply.json() == {"error": "not_found", "message": f"{name} holds no US stock"}


def test_a_rebalancing_owner_is_503(cluster: ServiceCluster, client: InstanceClient) -> None:
    remote = next(c for c in HOLDINGS if cluster.owner_of("us-share-holders", c).name == "i1")
    cluster.apps[1].state = st.AppState.REBALANCING
    reply = client.get(f"/holders/{remote}")
    assert (reply.status_code, reply.json()["error"]) == (503, "not_ready")
    cluster.apps[0].state = st.AppState.REBALANCING
    assert client.get("/holders").status_code == 503


def test_health_and_readiness_follow_the_app_and_the_delivery_worker(
    cluster: ServiceCluster, client: InstanceClient
) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    cluster.delivering = False
    down = client.get("/healthz")
    assert (down.status_code, down.json()["delivery"]) == (503, "stopped")
    cluster.apps[0].state = st.AppState.REBALANCING
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").headers["Retry-After"] == "1"
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_digests_list_this_instances_partitions_and_take_requests(
    cluster: ServiceCluster, client: InstanceClient
) -> None:
    body = client.get("/digests").json()
    assert body["current_week"] == "2026-W10"
    assert body["partitions"] == []
    assert client.request("POST", "/digests/run").status_code == 202
    assert [str(week) for week, _ in cluster.requested] == ["2026-W10"]
    cluster.fail_requests = True
    refused = client.request("POST", "/digests/run")
    assert (refused.status_code, refused.json()["error"]) == (503, "not_ready")
