"""KTable map_values: a new value per row, same key (no repartition)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import Change, Node, TableMaterializer, TaskContext


class TableMapValues(Node):
    """Maps both sides of a change; ``mapper(value)`` or, with ``with_key``, ``mapper(k, v)``."""

    def __init__(
        self,
        name: str,
        mapper: Callable[..., Any],
        with_key: bool = False,
        store: str | None = None,
    ) -> None:
        super().__init__(name)
        self.mapper = mapper
        self.with_key = with_key
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = None if self.store_name is None else ctx.store(self.store_name)
        self.materializer = None if self.store is None else TableMaterializer(self, self.store)

    def _map(self, key: Any, value: Any) -> Any:
        if value is None:
            return None
        return self.mapper(key, value) if self.with_key else self.mapper(value)

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        new = self._map(key, value[0])
        old = None
        if self.send_old_values:
            old = self.store.get(key) if self.store is not None else self._map(key, value[1])
        if self.materializer is not None:
            self.materializer.put_and_forward(key, new, old, timestamp)
        else:
            self.forward(key, (new, old), timestamp)
