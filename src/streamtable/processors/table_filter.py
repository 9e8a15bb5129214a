"""KTable filter / filter_not: rows failing the predicate become "no row" downstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import Change, Node, TableMaterializer, TaskContext


class TableFilter(Node):
    """Filters both sides of a change; a change from nothing to nothing is not forwarded when
    old values are sent (so a tombstone for a filtered-out row changes nothing downstream)."""

    def __init__(
        self,
        name: str,
        predicate: Callable[[Any, Any], Any],
        negate: bool = False,
        store: str | None = None,
    ) -> None:
        super().__init__(name)
        self.predicate = predicate
        self.negate = negate
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = None if self.store_name is None else ctx.store(self.store_name)
        self.materializer = None if self.store is None else TableMaterializer(self, self.store)

    def _keep(self, key: Any, value: Any) -> Any:
        if value is None:
            return None
        return value if bool(self.predicate(key, value)) != self.negate else None

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        new = self._keep(key, value[0])
        old = None
        if self.send_old_values:
            old = self.store.get(key) if self.store is not None else self._keep(key, value[1])
            if new is None and old is None:
                return
        if self.materializer is not None:
            self.materializer.put_and_forward(key, new, old, timestamp)
        else:
            self.forward(key, (new, old), timestamp)
