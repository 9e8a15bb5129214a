"""KGroupedTable reduce: adder and subtractor over the changes of each group.

The subtractor runs first (when there is an old value and a current aggregate), then the adder;
the first value of an empty group is taken as is. A result of ``None`` deletes the group's row,
and the next add starts again from the raw value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors.table_aggregate import GroupedTableUpdate


class TableReduce(GroupedTableUpdate):
    def __init__(
        self,
        name: str,
        adder: Callable[[Any, Any], Any],
        subtractor: Callable[[Any, Any], Any],
        store: str,
    ) -> None:
        super().__init__(name, store)
        self.adder = adder
        self.subtractor = subtractor

    def subtract(self, key: Any, agg: Any, value: Any) -> Any:
        return self.subtractor(agg, value)

    def add(self, key: Any, agg: Any, value: Any) -> Any:
        return value if agg is None else self.adder(agg, value)
