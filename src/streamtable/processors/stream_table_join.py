"""KStream-KTable join (inner and left): each stream record meets the table's current row.

Only stream records trigger results; table updates only change what later records see.
A ``None`` value is dropped; a ``None`` key finds no row (inner: dropped; left: joined with
``None``), as in Kafka Streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import GetterSpec, Node, TaskContext


class StreamTableJoin(Node):
    def __init__(
        self, name: str, table: GetterSpec, joiner: Callable[[Any, Any], Any], left: bool
    ) -> None:
        super().__init__(name)
        self.table_spec = table
        self.joiner = joiner
        self.left = left

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.table = self.table_spec.bind(ctx)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if value is None:
            return
        found = None if key is None else self.table(key)
        if found is None:
            if self.left:
                self.forward(key, self.joiner(value, None), timestamp)
            return
        self.forward(key, self.joiner(value, found[0]), timestamp)
