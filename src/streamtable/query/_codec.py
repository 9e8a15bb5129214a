"""Text <-> store keys and values for the HTTP layer, and the scan cursor.

* A key in a URL is parsed by the store's key serde's ``parse_key(text)`` hook (see
  :mod:`streamtable.serde`): ``STRING`` takes the text as is, ``JSON`` and ``DEFAULT`` parse it
  as JSON (``DEFAULT`` also reads its tags, so ``{"$t": [1, 2]}`` is the tuple ``(1, 2)``),
  ``INT``/``LONG`` an integer, ``DOUBLE`` a number, ``BYTES`` the UTF-8 bytes of the text, the
  registry serdes JSON (Avro/JSON Schema) as their schema says. A serde without the hook has no
  text keys. The parsed key must serialize with the serde.
* A ``prefix`` scan asks the serde's ``key_prefix(text)`` hook for the serialized-key prefix.
* Keys and values are rendered as JSON: sets, frozensets and tuples become lists (sets sorted),
  bytes become base64 text, dict keys that are not strings become their JSON text, an
  ``orjson.Fragment`` (JSON text passed on undecoded) becomes the data it encodes.
* A cursor is the serialized key of the last item returned, base64url-encoded: opaque to
  clients, and a total order shared by every instance (serialized key bytes).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from streamtable.errors import SerializationError
from streamtable.query._result import FailureReason, QueryResult
from streamtable.serde import Serde

_CURSOR_VERSION = b"\x01"


def parse_key(text: str, serde: Serde[Any]) -> QueryResult[Any]:
    """``ok(key)`` or ``failure(BAD_KEY)``; see the module docstring for each serde."""
    hook = getattr(serde, "parse_key", None)
    if hook is None:
        return QueryResult.failure(
            FailureReason.BAD_KEY, f"keys of serde {serde!r} cannot be parsed from text"
        )
    try:
        key: Any = hook(text)
        if key is None:
            return QueryResult.failure(FailureReason.BAD_KEY, "a key cannot be null")
        serde.serialize(key)
    except (SerializationError, ValueError) as exc:
        return QueryResult.failure(
            FailureReason.BAD_KEY, f"{text!r} is not a key of serde {serde!r}: {exc}"
        )
    return QueryResult.ok(key)


def prefix_bytes(prefix: str, serde: Serde[Any]) -> QueryResult[bytes]:
    """The serialized-key prefix shared by every string key that starts with ``prefix``."""
    hook = getattr(serde, "key_prefix", None)
    if hook is not None:
        try:
            return QueryResult.ok(hook(prefix))
        except (SerializationError, ValueError):
            pass
    return QueryResult.failure(
        FailureReason.BAD_REQUEST, f"prefix needs string keys; this store's key serde is {serde!r}"
    )


def render(value: Any) -> Any:
    """``value`` as plain JSON data (idempotent: rendered data renders to itself)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [render(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [render(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=lambda item: orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    if isinstance(value, dict):
        return {_render_dict_key(k): render(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, orjson.Fragment):  # JSON text passed on as stored: its data
        return orjson.loads(orjson.dumps(value))
    return str(value)


_FAST_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _fast_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | bytes | bytearray | memoryview):
        return render(value)
    raise TypeError  # anything else: dump the slow way, through render()


def dumps(value: Any) -> bytes:
    """``orjson.dumps(render(value))``, without walking ``value`` in Python when orjson can
    take it as it is (str-keyed dicts, lists, tuples, str, int, float, bool, None; sets and
    bytes through ``render``). Anything else falls back to ``render`` first."""
    try:
        return orjson.dumps(value, default=_fast_default, option=_FAST_OPTIONS)
    except TypeError:
        return orjson.dumps(render(value))


def _render_dict_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    return orjson.dumps(render(key)).decode()


def encode_cursor(key_bytes: bytes) -> str:
    return base64.urlsafe_b64encode(_CURSOR_VERSION + key_bytes).decode().rstrip("=")


def cursor_key(cursor: str) -> bytes:
    """The serialized key of a cursor an instance sent; raises ValueError if it is not one."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    if not raw.startswith(_CURSOR_VERSION):
        raise ValueError(f"not a cursor: {cursor!r}")
    return raw[len(_CURSOR_VERSION) :]


def decode_cursor(cursor: str) -> QueryResult[bytes]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(_CURSOR_VERSION):
        return QueryResult.failure(FailureReason.BAD_REQUEST, f"not a cursor: {cursor!r}")
    return QueryResult.ok(raw[len(_CURSOR_VERSION) :])
