"""The serde protocols, and the binding of a contextual serde to its topic (see
:mod:`streamtable.serde`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

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
