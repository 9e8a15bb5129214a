"""Finding one layer of a store's stack (metered, cache, serde, changelog, segments, engine)."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def layer_of(store: Any, kind: type[T]) -> T | None:
    """The first layer of type ``kind`` from ``store`` (a stack's top layer) down, following
    each layer's ``inner`` (else its ``engine``); None when the stack has none."""
    layer = store
    while layer is not None and not isinstance(layer, kind):
        layer = getattr(layer, "inner", None) or getattr(layer, "engine", None)
    return layer
