"""Scan entries decoded for a JSON response: a JSON store's values go out as stored.

Stores offer raw entries (key bytes and the value as stored); the query layer decodes them. The
stored value of a store with the ``JSON`` value serde is valid JSON text (written by the serde,
or validated by it before a restore applied it), so it is served as an ``orjson.Fragment`` of
that text instead of being decoded and encoded again. Other values, and a record cache's pending
entries (decoded already), are rendered as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from streamtable.serde import JsonSerde
from streamtable.state import RawEntry, decode_entries
from streamtable.topology import StoreSpec


def entries_for_json(
    entries: Iterable[RawEntry],
    spec: StoreSpec,
    key_decoder: Callable[[bytes], Any] | None = None,
) -> Iterator[tuple[bytes, Any, Any]]:
    """``(key bytes, key, value)`` of ``spec``'s raw entries, JSON values as fragments; keys
    by ``key_decoder`` (a window store's windowed keys), else by the spec's key serde."""
    value_decoder: Callable[[bytes], Any] = spec.value_serde.deserialize
    if isinstance(spec.value_serde, JsonSerde):
        value_decoder = orjson.Fragment
    return decode_entries(entries, key_decoder or spec.key_serde.deserialize, value_decoder)
