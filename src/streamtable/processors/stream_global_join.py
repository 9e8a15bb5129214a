"""KStream-GlobalKTable join (inner and left) through a key selected from each record.

The global table is fully replicated on every instance, so no co-partitioning is needed.
A ``None`` selected key finds no row (left join: joiner gets ``None``); a ``None`` stream value
is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import GetterSpec, Node, TaskContext


class StreamGlobalJoin(Node):
    def __init__(
        self,
        name: str,
        table: GetterSpec,
        key_selector: Callable[[Any, Any], Any],
        joiner: Callable[[Any, Any], Any],
        left: bool,
    ) -> None:
        super().__init__(name)
        self.table_spec = table
        self.key_selector = key_selector
        self.joiner = joiner
        self.left = left

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.table = self.table_spec.bind(ctx)

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if value is None:
            return
        lookup = self.key_selector(key, value)
        found = None if lookup is None else self.table(lookup)
        if found is None:
            if self.left:
                self.forward(key, self.joiner(value, None), timestamp)
            return
        self.forward(key, self.joiner(value, found[0]), timestamp)
