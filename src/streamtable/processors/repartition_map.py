"""KTable group_by: selects the new grouping key and value for both sides of a change.

Same old and new grouping key: ONE change ``(new, old)`` goes to the repartition topic, so the
aggregation runs subtractor then adder with no transient state (KIP-904). Different keys: the
old pair is retracted from its group first, then the new pair is added. A pair whose selected
key or value is ``None`` is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.errors import ProcessingError
from streamtable.processors._api import Change, Node


class RepartitionMap(Node):
    def __init__(self, name: str, selector: Callable[[Any, Any], tuple[Any, Any] | None]) -> None:
        super().__init__(name)
        self.selector = selector

    def _select(self, key: Any, value: Any) -> tuple[Any, Any] | None:
        if value is None:
            return None
        pair = self.selector(key, value)
        if pair is None:
            return None
        try:
            new_key, new_value = pair
        except (TypeError, ValueError) as exc:
            raise ProcessingError(
                f"group_by selector must return a (key, value) pair, got {pair!r}"
            ) from exc
        if new_key is None or new_value is None:
            return None
        return new_key, new_value

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        if key is None:
            raise ProcessingError("record key for the grouping KTable must not be None")
        new_pair = self._select(key, value[0])
        old_pair = self._select(key, value[1])
        if new_pair is not None and old_pair is not None and new_pair[0] == old_pair[0]:
            self.forward(new_pair[0], (new_pair[1], old_pair[1]), timestamp)
            return
        if old_pair is not None:
            self.forward(old_pair[0], (None, old_pair[1]), timestamp)
        if new_pair is not None:
            self.forward(new_pair[0], (new_pair[1], None), timestamp)
