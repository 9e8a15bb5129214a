"""HTTP queries serve key-value stores only: a window store is refused with a message saying
so (400 bad_request), before any routing or read."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

import streamtable as st
from streamtable.query import ClusterQueries, FailureReason
from streamtable.serde import STRING

pytestmark = pytest.mark.unit


def test_a_window_store_is_refused_with_a_reason() -> None:
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
    assert "'counts' is a window store: HTTP queries serve key-value stores only" in str(
        refused.message
    )
    assert queries.queryable("totals").is_ok
