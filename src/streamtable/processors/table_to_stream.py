"""KTable to_stream: each change becomes a record carrying the new value (None = tombstone)."""

from __future__ import annotations

from typing import Any

from streamtable.processors._api import Change, Node


class TableToStream(Node):
    def process(self, key: Any, value: Change, timestamp: int) -> None:
        self.forward(key, value[0], timestamp)
