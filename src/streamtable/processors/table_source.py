"""KTable source: upserts from a (compacted) topic into the table's store; tombstones delete."""

from __future__ import annotations

from typing import Any

from streamtable.processors._api import Node, TableMaterializer, TaskContext


class TableSource(Node):
    """Writes each record to the store and forwards ``(new, old)``; null keys are dropped."""

    def __init__(self, name: str, store: str) -> None:
        super().__init__(name)
        self.store_name = store
        self.dropped = 0

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if key is None:
            self.dropped += 1
            return
        self.materializer.put_and_forward(key, value, self.materializer.old(key), timestamp)
