"""The parts of a topology: immutable descriptions of sources, processors, sinks and stores."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from streamtable.errors import SerializationError, TopologyError
from streamtable.processors import Node
from streamtable.processors.sink import Partitioner
from streamtable.serde import Serde, bind

StoreKind = Literal["default", "rocksdb", "memory"]
"""Where a store keeps its data (its engine): ``default`` is the app's ``store_kind``."""

StoreType = Literal["key_value", "window", "session"]
"""What a store holds and how its changelog is kept (window and session stores expire)."""

_STORE_TYPES: tuple[StoreType, ...] = ("key_value", "window", "session")

WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS = 86_400_000
"""Added to a window or session store's retention for its changelog's ``retention.ms``: Kafka
Streams' ``windowstore.changelog.additional.retention.ms`` default (1 day), so that the broker
deletes a window's records only well after the store has expired it (clocks drift)."""


@dataclass(frozen=True)
class StoreSpec:
    """A store. Its changelog is ``source_topic`` when set (table sources reuse their input
    topic), else ``<application.id>-<name>-changelog`` when ``logged``, kept as
    :meth:`changelog_config` says: compacted for a key-value store; compacted and deleted after
    ``retention_ms`` (+ a day) for window and session stores, which must give it.

    A window store also gives ``window_size_ms``: its keys are :class:`~streamtable.Windowed`
    (``key_serde`` is the serde of the record keys inside them), kept ``retention_ms`` after
    their window starts, in stream time (see ``streamtable.state.SegmentedWindowBytesStore``)."""

    name: str
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    source_topic: str | None = None
    logged: bool = True
    cached: bool = True
    kind: StoreKind = "default"
    is_global: bool = False
    store_type: StoreType = "key_value"
    retention_ms: int | None = None
    window_size_ms: int | None = None

    def __post_init__(self) -> None:
        if self.store_type not in _STORE_TYPES:
            raise TopologyError(
                f"store {self.name!r}: unknown store type {self.store_type!r} "
                f"(one of {', '.join(_STORE_TYPES)})"
            )
        if self.store_type == "key_value":
            if self.retention_ms is not None:
                raise TopologyError(
                    f"store {self.name!r}: a key-value store keeps every key (its changelog is "
                    f"compacted), so it takes no retention_ms (got {self.retention_ms})"
                )
        elif self.retention_ms is None or self.retention_ms <= 0:
            raise TopologyError(
                f"store {self.name!r}: a {self.store_type} store needs retention_ms > 0 "
                f"(got {self.retention_ms})"
            )
        self._check_window_size()

    def _check_window_size(self) -> None:
        if self.store_type == "window":
            if self.window_size_ms is None or self.window_size_ms <= 0:
                raise TopologyError(
                    f"store {self.name!r}: a window store needs window_size_ms > 0 "
                    f"(got {self.window_size_ms})"
                )
        elif self.window_size_ms is not None:
            raise TopologyError(
                f"store {self.name!r}: only window stores take window_size_ms "
                f"(a {self.store_type} store got {self.window_size_ms})"
            )

    def persistent(self, default_kind: str) -> bool:
        """Whether its engine is RocksDB: its ``kind``, or the app's ``store_kind`` when that
        is ``default``."""
        return (default_kind if self.kind == "default" else self.kind) == "rocksdb"

    def changelog_topic(self, application_id: str) -> str | None:
        if self.source_topic is not None:
            return self.source_topic
        if not self.logged:
            return None
        return f"{application_id}-{self.name}-changelog"

    def changelog_config(self) -> dict[str, str]:
        """The topic configs of the changelog the runtime creates for this store."""
        if self.store_type == "key_value" or self.retention_ms is None:
            return {"cleanup.policy": "compact"}
        retention = self.retention_ms + WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS
        return {"cleanup.policy": "compact,delete", "retention.ms": str(retention)}


@dataclass(frozen=True)
class SourceSpec:
    """Reads one topic. ``internal`` topics are named ``<application.id>-<topic>``."""

    name: str
    topic: str
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    internal: bool = False


@dataclass(frozen=True)
class ProcessorSpec:
    """One operator: ``factory()`` makes a fresh node per task."""

    name: str
    parents: tuple[str, ...]
    factory: Callable[[], Node]
    stores: tuple[str, ...] = ()


@dataclass(frozen=True)
class SinkSpec:
    name: str
    parent: str
    topic: str
    key_serde: Serde[Any]
    value_serde: Serde[Any]
    internal: bool = False
    partitioner: Partitioner | None = None


@dataclass(frozen=True)
class GlobalTableSpec:
    """A topic replicated in full into ``store`` on every instance."""

    source: SourceSpec
    store: str


@dataclass(frozen=True)
class InternalTopicSpec:
    """A topic the runtime creates: ``<application.id>-<suffix>``.

    Its partition count is the largest of ``partitions_like`` (source topics, internal ones by
    suffix), as Kafka Streams sizes repartition topics after their upstream sources.
    """

    suffix: str
    purpose: Literal["repartition", "subscription", "response"]
    partitions_like: tuple[str, ...]


class ChangeSerde:
    """Wire format of a table change ``(new, old)`` on a repartition topic.

    ``flags | len(new) | new | old``: with KIP-904 one record carries both sides when the
    grouping key did not change.
    """

    _HEAD = struct.Struct(">Bi")

    def __init__(self, inner: Serde[Any]) -> None:
        self.inner = inner

    def bind(self, topic: str, is_key: bool) -> ChangeSerde:
        """The inner serde sees the repartition topic (see :func:`streamtable.serde.bind`)."""
        inner = bind(self.inner, topic, is_key)
        return self if inner is self.inner else ChangeSerde(inner)

    def serialize(self, value: tuple[Any, Any]) -> bytes:
        new, old = value
        nb = b"" if new is None else self.inner.serialize(new)
        ob = b"" if old is None else self.inner.serialize(old)
        flags = (new is not None) | ((old is not None) << 1)
        return self._HEAD.pack(flags, len(nb)) + nb + ob

    def deserialize(self, data: bytes) -> tuple[Any, Any]:
        if len(data) < self._HEAD.size:
            raise SerializationError("truncated change record")
        flags, size = self._HEAD.unpack_from(data)
        at = self._HEAD.size
        new = self.inner.deserialize(data[at : at + size]) if flags & 1 else None
        old = self.inner.deserialize(data[at + size :]) if flags & 2 else None
        return new, old

    def __repr__(self) -> str:
        return f"Change({self.inner!r})"
