"""Store specs: the store type decides the changelog topic's configs; a bad type or retention
is refused when the spec is made, and a type without stores yet (session) is refused when
built."""

from __future__ import annotations

from typing import Any

import pytest

from streamtable.errors import TopologyError
from streamtable.serde import JSON, STRING, SessionWindowedSerde
from streamtable.serde._windowed import session_end_of
from streamtable.state import SegmentedWindowBytesStore, open_engine
from streamtable.topology import StoreSpec, build_store

pytestmark = pytest.mark.unit


def test_a_key_value_changelog_is_compacted() -> None:
    assert StoreSpec("s", STRING, JSON).changelog_config() == {"cleanup.policy": "compact"}


@pytest.mark.parametrize("store_type", ["window", "session"])
def test_window_and_session_changelogs_also_expire(store_type: Any) -> None:
    """Kept a day longer than the store keeps them: Kafka Streams'
    ``windowstore.changelog.additional.retention.ms`` default."""
    size = 60_000 if store_type == "window" else None
    spec = StoreSpec(
        "w", STRING, JSON, store_type=store_type, retention_ms=86_400_000, window_size_ms=size
    )
    assert spec.changelog_config() == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(2 * 86_400_000),
    }


@pytest.mark.parametrize(
    ("store_type", "retention_ms", "message"),
    [
        ("window", None, "needs retention_ms > 0"),
        ("window", 1000, "needs window_size_ms > 0"),
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


def test_only_window_stores_take_a_window_size() -> None:
    with pytest.raises(TopologyError, match="only window stores take window_size_ms"):
        StoreSpec("s", STRING, JSON, window_size_ms=1000)


def test_session_stores_are_segmented_by_session_end_with_session_keys() -> None:
    spec = StoreSpec("w", STRING, JSON, store_type="session", retention_ms=1000)
    store, _ = build_store(spec, open_engine(False), "app", 0, None, None)
    assert isinstance(store.key_serde, SessionWindowedSerde)
    assert isinstance(store.inner, SegmentedWindowBytesStore)
    assert store.inner.time_of is session_end_of
