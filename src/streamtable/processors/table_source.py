"""KTable source: upserts from a (compacted) topic into the table's store; tombstones delete."""

from __future__ import annotations

from typing import Any

from streamtable.errors import ProcessingError
from streamtable.processors._api import Node, TableMaterializer, TaskContext


class TableSource(Node):
    """Writes each record to the store and forwards ``(new, old)``.

    A record with a null key cannot be a row: it is dropped and counted (Kafka Streams), or,
    with ``reject_null_keys``, raised as a :class:`ProcessingError` so that the runtime sends it
    to the dead-letter topic.
    """

    def __init__(self, name: str, store: str, reject_null_keys: bool = False) -> None:
        super().__init__(name)
        self.store_name = store
        self.reject_null_keys = reject_null_keys
        self.dropped = 0

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if key is None:
            if self.reject_null_keys:
                raise ProcessingError(f"a record of table {self.store_name!r} has a null key")
            self.dropped += 1
            return
        self.materializer.put_and_forward(key, value, self.materializer.old(key), timestamp)
