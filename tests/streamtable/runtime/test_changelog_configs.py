"""The changelog topics the runtime creates take their configs from the store's spec:
compacted for a key-value store, compacted and deleted after the retention for a window one."""

from __future__ import annotations

import dataclasses

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
    topology = counting_topology()
    window = dataclasses.replace(
        topology.stores["counts"], store_type="window", retention_ms=3_600_000
    )
    topology = dataclasses.replace(topology, stores={**topology.stores, "counts": window})
    assert planned_config(topology) == {
        "cleanup.policy": "compact,delete",
        "retention.ms": "3600000",
    }
