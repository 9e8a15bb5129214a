"""Sink: serializes records and hands them to the task's record collector for a topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import Node, TaskContext
from streamtable.serde import BoundSerde, Serde, serialize_with

Partitioner = Callable[[Any, Any, int], int | None]
"""``(key, value, partition count) -> partition`` or None for the producer's default
(murmur2 of the key bytes, like Java's producer)."""


class Sink(Node):
    def __init__(
        self,
        name: str,
        topic: str,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        internal: bool = False,
        partitioner: Partitioner | None = None,
    ) -> None:
        super().__init__(name)
        self.topic = topic
        self.internal = internal
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.partitioner = partitioner
        # Bound contextual serdes also see the record's headers; decided once, here.
        self._with_headers = isinstance(key_serde, BoundSerde) or isinstance(
            value_serde, BoundSerde
        )

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.resolved_topic = ctx.internal_topic(self.topic) if self.internal else self.topic
        self.partitions = ctx.partitions_of(self.resolved_topic) if self.partitioner else 0

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if self._with_headers:
            headers = self.ctx.headers
            kb = None if key is None else serialize_with(self.key_serde, key, headers)
            vb = None if value is None else serialize_with(self.value_serde, value, headers)
        else:
            kb = None if key is None else self.key_serde.serialize(key)
            vb = None if value is None else self.value_serde.serialize(value)
        partition = None
        if self.partitioner is not None:
            partition = self.partitioner(key, value, self.partitions)
        self.ctx.emit(self.resolved_topic, kb, vb, timestamp, partition, self.ctx.headers)
