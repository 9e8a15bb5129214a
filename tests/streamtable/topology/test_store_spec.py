"""Store specs: the store type decides the changelog topic's configs; a bad type or retention
is refused when the spec is made, and a type without stores yet is refused when built."""

from __future__ import annotations

from typing import Any

import pytest

from streamtable.errors import TopologyError
from streamtable.serde import JSON, STRING
from streamtable.state import open_engine
from streamtable.topology import StoreSpec, build_store

pytestmark = pytest.mark.unit


def test_a_key_value_changelog_is_compacted() -> None:
    assert StoreSpec("s", STRING, JSON).changelog_config() == {"cleanup.policy": "compact"}


@pytest.mark.parametrize("store_type", ["window", "session"])
def test_window_and_session_changelogs_also_expire(store_type: Any) -> None:
    spec = StoreSpec("w", STRING, JSON, store_type=store_type, retention_ms=86_400_000)
    assert spec.changelog_config() == {
        "cleanup.policy": "compact,delete",
        "retention.ms": "86400000",
    }


@pytest.mark.parametrize(
    ("store_type", "retention_ms", "message"),
    [
        ("window", None, "needs retention_ms > 0"),
        ("session", 0, "needs retention_ms > 0"),
        ("key_value", 1000, "takes no retention_ms"),
        ("timeline", None, "unknown store type 'timeline'"),
    ],
)
def test_bad_store_types_and_retentions_are_refused(
    store_type: Any, retention_ms: int | None, message: str
) -> None:
    with pytest.raises(TopologyError, match=message):
        StoreSpec("s", STRING, JSON, store_type=store_type, retention_ms=retention_ms)


def test_only_key_value_stores_are_built() -> None:
    spec = StoreSpec("w", STRING, JSON, store_type="window", retention_ms=1000)
    with pytest.raises(TopologyError, match="window stores cannot be built yet"):
        build_store(spec, open_engine(False), "app", 0, None, None)
