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

``TimeWindowedSerde(inner, window_size_ms)`` writes the :class:`~streamtable.Windowed` keys of
windowed aggregations as Kafka Streams does: the inner key's bytes, then the window start as an
8-byte big-endian integer; ``SessionWindowedSerde(inner)`` writes session-windowed keys: the
inner key's bytes, the session end, then its start (8 bytes each).

Example::

    >>> DEFAULT.deserialize(DEFAULT.serialize({"a": frozenset({1, 2})}))
    {'a': frozenset({1, 2})}
"""

from streamtable.serde._builtin import (
    BYTES,
    DEFAULT,
    DOUBLE,
    INT,
    JSON,
    LONG,
    STRING,
    BytesSerde,
    DefaultSerde,
    DoubleSerde,
    IntSerde,
    JsonSerde,
    LongSerde,
    StringSerde,
)
from streamtable.serde._context import (
    BoundSerde,
    ContextualSerde,
    Headers,
    Serde,
    SerdeContext,
    bind,
    deserialize_with,
    serialize_with,
    uses_context,
)
from streamtable.serde._windowed import SessionWindowedSerde, TimeWindowedSerde

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
    "SessionWindowedSerde",
    "TimeWindowedSerde",
]
