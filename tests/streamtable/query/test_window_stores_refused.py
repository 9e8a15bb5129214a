"""Each kind of store has its own routes: a window store asked for at the key-value routes, or a
key-value store at the window routes, is refused (400 bad_request) with a message saying where to
ask, before any routing or read."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

import streamtable as st
from streamtable.query import ClusterQueries, FailureReason
from streamtable.serde import STRING
from tests.streamtable.query.fakes import InstanceClient, windowed_cluster

pytestmark = pytest.mark.unit


def test_a_store_of_the_other_type_is_refused_with_where_to_ask() -> None:
    b = st.StreamsBuilder()
    grouped = b.stream("in", key_serde=STRING).group_by_key()
    grouped.windowed_by(st.TimeWindows.of_size_with_no_grace(timedelta(minutes=1))).count(
        store="counts"
    )
    grouped.count(store="totals")
    app = SimpleNamespace(topology=b.build(), state=st.AppState.RUNNING)
    queries = ClusterQueries(cast(Any, app))
    refused = queries.queryable("counts")
    assert refused.reason is FailureReason.BAD_REQUEST
    assert refused.reason.status == 400
    assert refused.message == (
        "store 'counts' is a window store, not a key_value store: "
        "query its windows at /stores/counts/windows"
    )
    refused = queries.queryable("totals", "window")
    assert refused.reason is FailureReason.BAD_REQUEST
    assert refused.message == (
        "store 'totals' is a key_value store, not a window store: query it at /stores/totals"
    )
    assert queries.queryable("totals").is_ok
    assert queries.queryable("counts", "window").is_ok


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/stores/counts/keys/c1", "/stores/counts/windows"),
        ("/stores/counts", "/stores/counts/windows"),
        ("/stores/totals/windows/c1", "/stores/totals"),
        ("/stores/totals/windows", "/stores/totals"),
    ],
)
def test_the_server_refuses_a_store_at_the_other_types_routes(path: str, where: str) -> None:
    cluster = windowed_cluster(2)
    reply = InstanceClient(cluster, "10.0.0.1:8000").get(path)
    assert (reply.status_code, reply.json()["error"]) == (400, "bad_request")
    assert reply.json()["message"].endswith(where)
    assert cluster.network.requests == []
