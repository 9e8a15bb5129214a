"""KStream filter / filter_not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.processors._api import Node


class StreamFilter(Node):
    def __init__(self, name: str, predicate: Callable[[Any, Any], Any], negate: bool) -> None:
        super().__init__(name)
        self.predicate = predicate
        self.negate = negate

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if bool(self.predicate(key, value)) != self.negate:
            self.forward(key, value, timestamp)
