"""The changelog topics the runtime creates take their configs from the store's spec:
compacted for a key-value store, compacted and deleted after the retention (plus a day) for a
window one."""

from __future__ import annotations

from datetime import timedelta

import pytest

import streamtable as st
from streamtable.runtime.topics import InternalTopicManager
from streamtable.topology import Topology
from tests.streamtable.runtime.test_topic_creation import FencedAdmin

pytestmark = pytest.mark.unit


def counting_topology() -> Topology:
    builder = st.StreamsBuilder()
    builder.stream("input").group_by(lambda k, v: v).count(store="counts")
    return builder.build()


def planned_config(topology: Topology) -> dict[str, str]:
    plan = InternalTopicManager(FencedAdmin(0), topology, "app").plan()  # type: ignore[arg-type]
    return plan.internal["app-counts-changelog"]


def test_a_key_value_store_changelog_is_compacted() -> None:
    assert planned_config(counting_topology()) == {"cleanup.policy": "compact"}


def test_a_window_store_changelog_also_expires() -> None:
    """``retention.ms`` is the store's retention plus Kafka Streams' additional day."""
    builder = st.StreamsBuilder()
    windows = st.TimeWindows.of_size_and_grace(timedelta(minutes=1), timedelta(seconds=30))
    builder.stream("input").group_by_key().windowed_by(windows).count(
        store="counts", retention=timedelta(hours=1)
    )
    assert planned_config(builder.build()) == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(3_600_000 + 86_400_000),
    }


def test_a_sliding_window_store_keeps_twice_the_difference_plus_grace_by_default() -> None:
    builder = st.StreamsBuilder()
    windows = st.SlidingWindows.of_time_difference_and_grace(
        timedelta(minutes=1), timedelta(seconds=30)
    )
    builder.stream("input").group_by_key().windowed_by(windows).count(store="counts")
    assert planned_config(builder.build()) == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(150_000 + 86_400_000),
    }


def test_a_window_store_keeps_size_plus_grace_by_default() -> None:
    builder = st.StreamsBuilder()
    windows = st.TimeWindows.of_size_and_grace(timedelta(minutes=1), timedelta(seconds=30))
    builder.stream("input").group_by_key().windowed_by(windows).count(store="counts")
    assert planned_config(builder.build())["retention.ms"] == str(90_000 + 86_400_000)
