"""KStream map, map_values and flat_map (flat_map_values too): per-record transformations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streamtable.errors import ProcessingError
from streamtable.processors._api import Node


class StreamMap(Node):
    """``mapper(k, v) -> (k2, v2)``: a new key (the stream then needs repartitioning to group)."""

    def __init__(self, name: str, mapper: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        super().__init__(name)
        self.mapper = mapper

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        pair = self.mapper(key, value)
        try:
            new_key, new_value = pair
        except (TypeError, ValueError) as exc:
            raise ProcessingError(f"map must return a (key, value) pair, got {pair!r}") from exc
        self.forward(new_key, new_value, timestamp)


class StreamMapValues(Node):
    """``mapper(v)`` (or ``mapper(k, v)`` with ``with_key``): same key, new value."""

    def __init__(self, name: str, mapper: Callable[..., Any], with_key: bool = False) -> None:
        super().__init__(name)
        self.mapper = mapper
        self.with_key = with_key

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        out = self.mapper(key, value) if self.with_key else self.mapper(value)
        self.forward(key, out, timestamp)


class StreamFlatMap(Node):
    """``mapper(k, v) -> iterable of (k2, v2)``; with ``values_only``: ``mapper(v) -> values``."""

    def __init__(
        self, name: str, mapper: Callable[..., Iterable[Any]], values_only: bool = False
    ) -> None:
        super().__init__(name)
        self.mapper = mapper
        self.values_only = values_only

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        if self.values_only:
            for out in self.mapper(value):
                self.forward(key, out, timestamp)
            return
        for pair in self.mapper(key, value):
            try:
                new_key, new_value = pair
            except (TypeError, ValueError) as exc:
                raise ProcessingError(
                    f"flat_map must yield (key, value) pairs, got {pair!r}"
                ) from exc
            self.forward(new_key, new_value, timestamp)


class StreamPeek(Node):
    """``action(k, v)`` for its side effect; the record passes on unchanged."""

    def __init__(self, name: str, action: Callable[[Any, Any], Any]) -> None:
        super().__init__(name)
        self.action = action

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        self.action(key, value)
        self.forward(key, value, timestamp)
