"""The values of instance metadata: what an instance publishes on ``<app>-instances`` (an
:class:`InstanceRecord`, JSON on the wire) and what queries get back (:class:`StreamsMetadata`,
:class:`KeyQueryMetadata`, :class:`HostInfo`). The thread that publishes and tails the records,
and the view built from them, are in :mod:`streamtable.runtime._metadata`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

_EXPIRY_HEARTBEATS = 3


@dataclass(frozen=True, order=True)
class HostInfo:
    """Where an instance serves interactive queries (its ``application_server``)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostInfo:
        host, _, port = text.rpartition(":")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class StreamsMetadata:
    """One live instance: where it serves queries and which partitions of each store it hosts.

    ``active`` maps each store to the partitions this instance runs as active tasks (restoring or
    running); ``standby`` the partitions it keeps warm copies of (``num_standby_replicas``).
    ``partition_counts`` is each store's number of partitions (tasks of its sub-topology).
    """

    instance_id: str
    host_info: HostInfo | None
    active: Mapping[str, tuple[int, ...]]
    standby: Mapping[str, tuple[int, ...]]
    partition_counts: Mapping[str, int]
    state: str
    generation: int
    timestamp_ms: int
    is_local: bool

    @property
    def store_names(self) -> list[str]:
        return sorted(s for s, parts in self.active.items() if parts)


@dataclass(frozen=True)
class KeyQueryMetadata:
    """Where ``key`` of ``store`` lives: its partition and the instance running that partition.

    ``active_host`` is None when no live instance is known to own the partition (during a
    rebalance, or the owner has no ``application_server``). ``partition`` is None for a global
    store, which every instance holds whole (``is_local`` is then True).
    """

    store: str
    partition: int | None
    active_instance: str | None
    active_host: HostInfo | None
    is_local: bool
    standby_hosts: tuple[HostInfo, ...] = ()


@dataclass(frozen=True)
class InstanceRecord:
    """What an instance publishes about itself on ``<app>-instances`` (JSON on the wire)."""

    instance_id: str
    server: str | None
    active: Mapping[int, tuple[int, ...]]  # sub-topology id -> partitions
    generation: int
    assigned_ms: int  # when the current task set formed: the newest claim on a partition wins
    timestamp_ms: int
    heartbeat_ms: int
    state: str
    standby: Mapping[int, tuple[int, ...]] = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": 1,
                "instance": self.instance_id,
                "server": self.server,
                "active": {str(s): list(p) for s, p in self.active.items()},
                "standby": {str(s): list(p) for s, p in self.standby.items()},
                "generation": self.generation,
                "assigned_ms": self.assigned_ms,
                "timestamp_ms": self.timestamp_ms,
                "heartbeat_ms": self.heartbeat_ms,
                "state": self.state,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> InstanceRecord:
        """Raises ValueError (or a subclass) for anything that is not a version-1 record."""
        raw: Any = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("v") != 1:
            raise ValueError("not a version-1 instance record")
        server = raw["server"]
        return cls(
            instance_id=str(raw["instance"]),
            server=None if server is None else str(server),
            active={int(s): tuple(int(p) for p in ps) for s, ps in raw["active"].items()},
            standby={int(s): tuple(int(p) for p in ps) for s, ps in raw["standby"].items()},
            generation=int(raw["generation"]),
            assigned_ms=int(raw["assigned_ms"]),
            timestamp_ms=int(raw["timestamp_ms"]),
            heartbeat_ms=int(raw["heartbeat_ms"]),
            state=str(raw["state"]),
        )

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.timestamp_ms > _EXPIRY_HEARTBEATS * self.heartbeat_ms
