"""Serdes: how keys and values become bytes on topics and in stores, and back.

A serde is any object with ``serialize(value) -> bytes`` and ``deserialize(data) -> value``
(the :class:`Serde` protocol). ``None`` never reaches a serde: a ``None`` value is a tombstone on
the wire and a delete in a store, handled by the caller.

Built-in serdes, byte-compatible with Kafka's Java serdes where Java has one:

- ``STRING`` (UTF-8), ``BYTES`` (as is), ``INT`` (4-byte big-endian signed, like Java's
  ``IntegerSerde``), ``LONG`` (8-byte), ``DOUBLE`` (IEEE 754 big-endian);
- ``JSON``: RFC 8259 JSON via orjson (dicts, lists, str, int, float, bool, None);
- ``DEFAULT``: the serde of internal topics and stores when none is given. JSON with tags, so that
  Python builtins that JSON lacks round-trip exactly: ``tuple``, ``set``, ``frozenset``,
  ``bytes`` and dicts with non-string keys. Never pickle: bytes from a topic are data, not code.

Serdes that need their context (a schema registry's serdes choose a subject by topic and by key
or value, as Kafka's ``Serializer.serialize(topic, headers, data)``) implement
:class:`ContextualSerde` instead: ``serialize(value, ctx)`` / ``deserialize(data, ctx)`` with a
:class:`SerdeContext` (topic, key or value, headers), and say so with the class attribute
``uses_context = True``. The topology binds each one to its topic once, when an app or a test
driver starts (:func:`bind`): a source's or sink's serde sees that topic, a store's serde its
changelog topic (a table source's store: its source topic), a repartition topic's serde that
topic, as in Kafka Streams. Sources and sinks also pass the record's headers. Plain serdes are
used as they are, with no wrapper and no per-record cost.

A serde may also say how a key is parsed from text (the HTTP query layer's ``/keys/{key}``) with
``parse_key(text) -> key``, and which serialized-key prefix the string keys starting with a text
share with ``key_prefix(text) -> bytes``. Every built-in serde has ``parse_key``.

Example::

    >>> DEFAULT.deserialize(DEFAULT.serialize({"a": frozenset({1, 2})}))
    {'a': frozenset({1, 2})}
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import orjson

from streamtable.errors import SerializationError

__all__ = [
    "BYTES",
    "BoundSerde",
    "ContextualSerde",
    "Headers",
    "SerdeContext",
    "bind",
    "deserialize_with",
    "serialize_with",
    "uses_context",
    "DEFAULT",
    "DOUBLE",
    "INT",
    "JSON",
    "LONG",
    "STRING",
    "BytesSerde",
    "DefaultSerde",
    "DoubleSerde",
    "IntSerde",
    "JsonSerde",
    "LongSerde",
    "Serde",
    "StringSerde",
]

T = TypeVar("T")


@runtime_checkable
class Serde(Protocol[T]):
    """Turns values of one type into bytes and back. ``None`` is never passed in."""

    def serialize(self, value: T) -> bytes: ...

    def deserialize(self, data: bytes) -> T: ...


Headers = Sequence[tuple[str, bytes | None]]
"""A record's headers as confluent-kafka gives them: ``[(name, value), ...]``."""


@dataclass(frozen=True, slots=True)
class SerdeContext:
    """Where a contextual serde's bytes go or come from (Kafka's ``topic``/``isKey``/``headers``).

    ``topic`` is the real topic name: the source or sink topic, ``<application.id>-...`` for
    internal topics, a store's changelog topic for its store. ``headers`` is the record's headers
    at sources and sinks and None elsewhere (stores, restores, queries).
    """

    topic: str
    is_key: bool
    headers: Headers | None = None


class ContextualSerde(Protocol[T]):
    """A serde that needs its :class:`SerdeContext`. Mark the class with
    ``uses_context = True``; the topology binds it once (see :func:`bind`).

    ``ctx`` is optional in the signature only so that a contextual serde is also a
    :class:`Serde` to the type checker (the DSL takes either): inside a topology it is always
    given. Called without one (outside any topology), a serde may refuse.
    """

    uses_context: ClassVar[bool]

    def serialize(self, value: T, ctx: SerdeContext | None = None) -> bytes: ...

    def deserialize(self, data: bytes, ctx: SerdeContext | None = None) -> T: ...


def uses_context(serde: object) -> bool:
    """True for a :class:`ContextualSerde` (decided once per topology, never per record)."""
    return getattr(serde, "uses_context", False) is True


class BoundSerde(Generic[T]):
    """A contextual serde bound to one topic and side: a plain :class:`Serde` everywhere.

    ``serialize_with(value, headers)`` / ``deserialize_with(data, headers)`` also pass a
    record's headers (sources and sinks use them).
    """

    __slots__ = ("context", "inner")

    def __init__(self, inner: ContextualSerde[T], context: SerdeContext) -> None:
        self.inner = inner
        self.context = context

    def serialize(self, value: T) -> bytes:
        return self.inner.serialize(value, self.context)

    def deserialize(self, data: bytes) -> T:
        return self.inner.deserialize(data, self.context)

    def serialize_with(self, value: T, headers: Headers | None) -> bytes:
        ctx = self.context if not headers else replace(self.context, headers=headers)
        return self.inner.serialize(value, ctx)

    def deserialize_with(self, data: bytes, headers: Headers | None) -> T:
        ctx = self.context if not headers else replace(self.context, headers=headers)
        return self.inner.deserialize(data, ctx)

    def parse_key(self, text: str) -> T:
        hook = getattr(self.inner, "parse_key", None)
        if hook is None:
            raise ValueError(f"keys of serde {self.inner!r} cannot be parsed from text")
        result: T = hook(text)
        return result

    def key_prefix(self, text: str) -> bytes:
        hook = getattr(self.inner, "key_prefix", None)
        if hook is None:
            raise ValueError(f"serde {self.inner!r} has no string-key prefixes")
        result: bytes = hook(text)
        return result

    def __repr__(self) -> str:
        return repr(self.inner)


def bind(serde: Any, topic: str, is_key: bool) -> Any:
    """``serde`` itself when it is plain; a :class:`BoundSerde` for ``topic`` when it
    :func:`uses_context`. Binding a bound serde again re-binds its inner serde. A serde that
    wraps others (the repartition topics' change serde) is asked to ``bind`` itself."""
    if isinstance(serde, BoundSerde):
        serde = serde.inner
    own = getattr(serde, "bind", None)
    if own is not None and not uses_context(serde):
        return own(topic, is_key)
    if not uses_context(serde):
        return serde
    return BoundSerde(serde, SerdeContext(topic, is_key))


def serialize_with(serde: Serde[Any], value: Any, headers: Headers | None) -> bytes:
    """``serde.serialize(value)``, passing ``headers`` to a bound contextual serde."""
    if type(serde) is BoundSerde:
        return serde.serialize_with(value, headers)
    return serde.serialize(value)


def deserialize_with(serde: Serde[Any], data: bytes, headers: Headers | None) -> Any:
    """``serde.deserialize(data)``, passing ``headers`` to a bound contextual serde."""
    if type(serde) is BoundSerde:
        return serde.deserialize_with(data, headers)
    return serde.deserialize(data)


class StringSerde:
    """UTF-8 text."""

    def serialize(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise SerializationError(f"STRING serde expects str, got {type(value).__name__}")
        return value.encode()

    def deserialize(self, data: bytes) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            # Not str(exc): it quotes the offending bytes.
            at = exc.start
            raise SerializationError(f"not UTF-8 text: invalid byte at position {at}") from None

    def parse_key(self, text: str) -> str:
        return text

    def key_prefix(self, text: str) -> bytes:
        return text.encode()

    def __repr__(self) -> str:
        return "STRING"


class BytesSerde:
    """Raw bytes, unchanged."""

    def serialize(self, value: bytes) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise SerializationError(f"BYTES serde expects bytes, got {type(value).__name__}")
        return bytes(value)

    def deserialize(self, data: bytes) -> bytes:
        return bytes(data)

    def parse_key(self, text: str) -> bytes:
        """The UTF-8 bytes of the text."""
        return text.encode()

    def __repr__(self) -> str:
        return "BYTES"


class _StructSerde:
    _format: struct.Struct
    _name: str
    _types: tuple[type, ...]

    def serialize(self, value: Any) -> bytes:
        if isinstance(value, bool) or not isinstance(value, self._types):
            raise SerializationError(f"{self._name} serde cannot encode {type(value).__name__}")
        try:
            return self._format.pack(value)
        except struct.error as exc:
            raise SerializationError(f"{self._name} serde: {exc}") from exc

    def deserialize(self, data: bytes) -> Any:
        if len(data) != self._format.size:
            raise SerializationError(
                f"{self._name} serde expects {self._format.size} bytes, got {len(data)}"
            )
        return self._format.unpack(data)[0]

    def parse_key(self, text: str) -> Any:
        return int(text.strip(), 10)

    def __repr__(self) -> str:
        return self._name


class IntSerde(_StructSerde):
    """32-bit signed big-endian integer (Java ``IntegerSerde``)."""

    _format = struct.Struct(">i")
    _name = "INT"
    _types = (int,)


class LongSerde(_StructSerde):
    """64-bit signed big-endian integer (Java ``LongSerde``)."""

    _format = struct.Struct(">q")
    _name = "LONG"
    _types = (int,)


class DoubleSerde(_StructSerde):
    """IEEE 754 double, big-endian (Java ``DoubleSerde``)."""

    _format = struct.Struct(">d")
    _name = "DOUBLE"
    _types = (int, float)

    def parse_key(self, text: str) -> Any:
        return float(text)


class JsonSerde:
    """JSON text (UTF-8) via orjson. Values are what ``json`` would give: dict, list, str..."""

    def serialize(self, value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except TypeError as exc:
            raise SerializationError(f"not JSON-serializable: {exc}") from exc

    def deserialize(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"not JSON: {exc}") from exc

    def parse_key(self, text: str) -> Any:
        return _parse_json_key(self, text)

    def key_prefix(self, text: str) -> bytes:
        return self.serialize(text)[:-1]  # '"abc"' without its closing quote

    def __repr__(self) -> str:
        return "JSON"


def _parse_json_key(serde: JsonSerde | DefaultSerde, text: str) -> Any:
    key = serde.deserialize(text.encode())
    if key is None:
        raise ValueError("a key cannot be null")
    return key


_SCALARS = (str, int, float, bool, type(None))


def _sort_key(item: Any) -> tuple[str, str]:
    return (type(item).__name__, repr(item))


def _tag(value: Any) -> Any:
    """Turn a Python value into plain JSON, tagging what JSON cannot say."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [_tag(v) for v in value]
    if isinstance(value, dict):
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: _tag(v) for k, v in value.items()}
        return {"$d": [[_tag(k), _tag(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$t": [_tag(v) for v in value]}
    if isinstance(value, frozenset | set):
        # Sorted so equal sets give equal bytes (stable changelogs, dedup by bytes).
        tag = "$f" if isinstance(value, frozenset) else "$s"
        try:
            items = sorted(value)
        except TypeError:
            items = sorted(value, key=_sort_key)
        return {tag: [_tag(v) for v in items]}
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(value).decode()}
    raise SerializationError(f"DEFAULT serde cannot encode {type(value).__name__}")


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, body),) = value.items()
            if tag == "$t":
                return tuple(_untag(v) for v in body)
            if tag == "$f":
                return frozenset(_untag(v) for v in body)
            if tag == "$s":
                return {_untag(v) for v in body}
            if tag == "$d":
                return {_untag(k): _untag(v) for k, v in body}
            if tag == "$b":
                return base64.b64decode(body)
        return {k: _untag(v) for k, v in value.items()}
    return value


class DefaultSerde:
    """Tagged JSON that round-trips str/int/float/bool/None/list/dict/tuple/set/frozenset/bytes."""

    def serialize(self, value: Any) -> bytes:
        if type(value) is str or type(value) is int:
            return orjson.dumps(value)
        return orjson.dumps(_tag(value))

    def deserialize(self, data: bytes) -> Any:
        try:
            return _untag(orjson.loads(data))
        except orjson.JSONDecodeError as exc:  # its message gives a position, not the data
            raise SerializationError(f"not a DEFAULT-serde payload: {exc}") from exc
        except (ValueError, TypeError) as exc:  # from _untag: may quote the data
            raise SerializationError(
                f"not a DEFAULT-serde payload: malformed tag ({type(exc).__name__})"
            ) from None

    def parse_key(self, text: str) -> Any:
        """JSON, with the tags (``{"$t": [1, 2]}`` is the tuple ``(1, 2)``)."""
        return _parse_json_key(self, text)

    def key_prefix(self, text: str) -> bytes:
        return self.serialize(text)[:-1]

    def __repr__(self) -> str:
        return "DEFAULT"


STRING = StringSerde()
BYTES = BytesSerde()
INT = IntSerde()
LONG = LongSerde()
DOUBLE = DoubleSerde()
JSON = JsonSerde()
DEFAULT = DefaultSerde()
