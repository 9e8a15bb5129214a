"""KGroupedStream reduce / aggregate / count: a table of running results per key.

Records with a ``None`` key or value are dropped. Unlike a grouped table there is nothing to
subtract: each record is added.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import Node, TableMaterializer, TaskContext


class StreamAggregate(Node):
    """``aggregate``: ``adder(key, value, agg)`` from ``initializer()``; ``reduce`` when
    ``initializer`` is None: ``adder(agg, value)``, the first value taken as is."""

    def __init__(
        self,
        name: str,
        initializer: Callable[[], Any] | None,
        adder: Callable[..., Any],
        store: str,
    ) -> None:
        super().__init__(name)
        self.initializer = initializer
        self.adder = adder
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if key is None or value is None:
            return
        found = self.store.get_with_timestamp(key)
        old_agg = None if found is None else found[0]
        new_ts = timestamp if found is None else max(timestamp, found[1])
        if self.initializer is None:
            agg = value if old_agg is None else self.adder(old_agg, value)
        else:
            agg = self.adder(key, value, self.initializer() if old_agg is None else old_agg)
        self.materializer.put_and_forward(key, agg, old_agg, new_ts)
