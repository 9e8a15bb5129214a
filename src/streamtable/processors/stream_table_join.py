"""KStream-KTable and KStream-GlobalKTable joins (inner and left).

Each stream record meets the table's current row; table updates alone emit nothing, they only
change what later records see. The row is looked up by the record's key (a co-partitioned
KTable) or by ``key_selector(key, value)`` (a GlobalKTable, replicated on every instance).
A ``None`` stream value is dropped; a ``None`` lookup key finds no row (inner: dropped; left:
joined with ``None``), as in Kafka Streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import GetterSpec, Node, TaskContext


class StreamTableJoin(Node):
    def __init__(
        self,
        name: str,
        table: GetterSpec,
        joiner: Callable[[Any, Any], Any],
        left: bool,
        key_selector: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        super().__init__(name)
        self.table_spec = table
        self.joiner = joiner
        self.left = left
        self.key_selector = key_selector

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.table = self.table_spec.bind(ctx)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if value is None:
            return
        lookup = key if self.key_selector is None else self.key_selector(key, value)
        found = None if lookup is None else self.table(lookup)
        if found is not None:
            self.forward(key, self.joiner(value, found[0]), timestamp)
        elif self.left:
            self.forward(key, self.joiner(value, None), timestamp)
