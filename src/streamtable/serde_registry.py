"""Schema Registry serdes: Avro, Protobuf and JSON Schema through confluent-kafka's
``schema_registry`` clients (install the ``registry`` extra: ``pip install streamtable[registry]``).

Each serde is contextual (see :mod:`streamtable.serde`): the topology binds it to its topic, so
the subject is chosen as a Kafka client chooses it, by the subject name strategy:

- ``"topic"`` (the default): ``<topic>-key`` / ``<topic>-value``;
- ``"record"``: the record's (message's) full name;
- ``"topic_record"``: ``<topic>-<full name>``.

Internal topics use their real names: a store's serde registers under its changelog topic
(``<application.id>-<store>-changelog-value``), a repartition topic's under
``<application.id>-<name>-repartition-...``, as Kafka Streams' registry serdes do. A table
source's store reuses its input topic, so it reads and writes the input topic's subjects.

Bytes are the Confluent wire format (magic byte 0, a 4-byte schema id, the payload), so records
interoperate with Java and other Confluent-compatible clients. Errors never quote the record.

Example::

    from confluent_kafka.schema_registry import SchemaRegistryClient
    from streamtable.serde_registry import avro_serde

    registry = SchemaRegistryClient({"url": "http://127.0.0.1:8081"})
    key = avro_serde(registry, '"string"')
    value = avro_serde(registry, POSITION_SCHEMA)
    table = builder.table("positions", key_serde=key, value_serde=value)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import orjson

from streamtable.errors import SerializationError
from streamtable.serde import SerdeContext

try:
    from confluent_kafka.schema_registry import (
        SchemaRegistryClient,
        record_subject_name_strategy,
        topic_record_subject_name_strategy,
        topic_subject_name_strategy,
    )
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    from confluent_kafka.serialization import MessageField, SerializationContext
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "streamtable.serde_registry needs the 'registry' extra: pip install 'streamtable[registry]'"
    ) from exc

__all__ = [
    "RegistrySerde",
    "SubjectNameStrategy",
    "avro_serde",
    "json_schema_serde",
    "protobuf_serde",
    "registry_client",
]

SubjectNameStrategy = Literal["topic", "record", "topic_record"]

_STRATEGIES: dict[str, Callable[..., Any]] = {
    "topic": topic_subject_name_strategy,
    "record": record_subject_name_strategy,
    "topic_record": topic_record_subject_name_strategy,
}


def registry_client(url: str, **conf: Any) -> Any:
    """A ``SchemaRegistryClient`` for ``url`` (for Apicurio Registry, its Confluent-compatible
    API: ``http://HOST:PORT/apis/ccompat/v7``); ``conf`` adds client settings
    (``basic.auth.user.info``, ``ssl.ca.location``, ...) with dots written as underscores."""
    return SchemaRegistryClient({"url": url, **{k.replace("_", "."): v for k, v in conf.items()}})


def _strategy_conf(strategy: SubjectNameStrategy, conf: Mapping[str, Any] | None) -> dict[str, Any]:
    if strategy not in _STRATEGIES:
        raise ValueError(f"subject name strategy must be one of {sorted(_STRATEGIES)}")
    return {"subject.name.strategy": _STRATEGIES[strategy], **(conf or {})}


class RegistrySerde:
    """A contextual serde over a confluent-kafka registry serializer and deserializer.

    ``parse_key(text)`` reads a key from the HTTP query layer's URL text (the factories give one
    that fits the schema). Build one with :func:`avro_serde`, :func:`protobuf_serde` or
    :func:`json_schema_serde`.
    """

    uses_context: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        serializer: Callable[[Any, Any], bytes | None] | None,
        deserializer: Callable[[bytes, Any], Any],
        parse_key: Callable[[str], Any] | None = None,
    ) -> None:
        self._name = name
        self._serializer = serializer
        self._deserializer = deserializer
        self._parse_key = parse_key
        # One SerializationContext per (topic, side): records without headers reuse it.
        self._contexts: dict[tuple[str, bool], Any] = {}

    def _context(self, ctx: SerdeContext | None) -> Any:
        if ctx is None:
            raise SerializationError(
                f"{self._name} needs its topic: use it in a topology, or bind it "
                "(streamtable.serde.bind(serde, topic, is_key))"
            )
        if ctx.headers:
            field = MessageField.KEY if ctx.is_key else MessageField.VALUE
            return SerializationContext(ctx.topic, field, list(ctx.headers))
        found = self._contexts.get((ctx.topic, ctx.is_key))
        if found is None:
            field = MessageField.KEY if ctx.is_key else MessageField.VALUE
            found = self._contexts[(ctx.topic, ctx.is_key)] = SerializationContext(ctx.topic, field)
        return found

    def serialize(self, value: Any, ctx: SerdeContext | None = None) -> bytes:
        if self._serializer is None:
            raise SerializationError(f"{self._name}: no schema given, so it cannot serialize")
        context = self._context(ctx)
        assert ctx is not None
        try:
            data = self._serializer(value, context)
        except SchemaRegistryError as exc:  # the registry's answer: no record data in it
            raise SerializationError(f"{self._name} {_where(ctx)}: registry: {exc}") from None
        except Exception as exc:
            # Not str(exc): encoders quote the datum they could not write.
            raise SerializationError(
                f"{self._name} {_where(ctx)}: cannot serialize ({type(exc).__name__})"
            ) from None
        if data is None:
            raise SerializationError(f"{self._name} {_where(ctx)}: serialized to nothing")
        return bytes(data)

    def deserialize(self, data: bytes, ctx: SerdeContext | None = None) -> Any:
        context = self._context(ctx)
        assert ctx is not None
        try:
            return self._deserializer(data, context)
        except SchemaRegistryError as exc:
            raise SerializationError(f"{self._name} {_where(ctx)}: registry: {exc}") from None
        except Exception as exc:
            raise SerializationError(
                f"{self._name} {_where(ctx)}: cannot deserialize ({type(exc).__name__})"
            ) from None

    def parse_key(self, text: str) -> Any:
        if self._parse_key is None:
            raise ValueError(f"keys of {self._name} cannot be parsed from text")
        return self._parse_key(text)

    def __repr__(self) -> str:
        return self._name


def _where(ctx: SerdeContext) -> str:
    return f"({ctx.topic} {'key' if ctx.is_key else 'value'})"


def _json_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def _avro_parse_key(schema: str | None) -> Callable[[str], Any]:
    """Primitive string/bytes keys take the text as is, numbers parse as numbers, anything
    else (records, enums as their symbol in quotes, ...) is the key's JSON form."""
    kind: Any = None
    if schema is not None:
        try:
            parsed = orjson.loads(schema)
        except orjson.JSONDecodeError:
            parsed = schema  # a bare name such as string
        kind = parsed.get("type") if isinstance(parsed, dict) else parsed
    if kind == "string":
        return lambda text: text
    if kind == "bytes":
        return lambda text: text.encode()
    if kind in ("int", "long"):
        return lambda text: int(text.strip(), 10)
    if kind in ("float", "double"):
        return float
    return _json_text


def avro_serde(
    client: Any,
    schema: str | None,
    *,
    strategy: SubjectNameStrategy = "topic",
    to_dict: Callable[[Any, Any], dict[str, Any]] | None = None,
    from_dict: Callable[[dict[str, Any], Any], Any] | None = None,
    serializer_conf: Mapping[str, Any] | None = None,
    deserializer_conf: Mapping[str, Any] | None = None,
) -> RegistrySerde:
    """Avro with the registry. ``schema`` (Avro JSON) is the writer schema, registered under
    the strategy's subject on first use (``auto.register.schemas``), and the reader schema;
    ``None`` gives a deserialize-only serde reading with each record's writer schema.
    Values are what fastavro reads and writes: dicts for records, str, int, ... Keys must be
    hashable (stores cache by key): give record keys ``from_dict``/``to_dict`` (e.g. to and from a
    NamedTuple); ``parse_key`` then applies ``from_dict`` to the key's JSON form."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

    ser = None
    if schema is not None:
        ser = AvroSerializer(
            client, schema, to_dict=to_dict, conf=_strategy_conf(strategy, serializer_conf)
        )
    de = AvroDeserializer(
        client, schema, from_dict=from_dict, conf=_strategy_conf(strategy, deserializer_conf)
    )
    parse = _avro_parse_key(schema)
    if from_dict is not None:
        plain_parse, convert = parse, from_dict

        def parse(text: str) -> Any:
            return convert(plain_parse(text), None)

    return RegistrySerde(f"Avro[{strategy}]", ser, de, parse)


def protobuf_serde(
    client: Any,
    message_type: type[Any],
    *,
    strategy: SubjectNameStrategy = "topic",
    serializer_conf: Mapping[str, Any] | None = None,
    deserializer_conf: Mapping[str, Any] | None = None,
    deserializer_uses_registry: bool = False,
) -> RegistrySerde:
    """Protobuf with the registry: values are instances of ``message_type`` (a generated
    message class, or one made at run time with ``google.protobuf.message_factory``). A key
    parses from its JSON form (``google.protobuf.json_format``).

    The serializer registers ``message_type``'s file under the strategy's subject. The
    deserializer decodes with ``message_type`` itself, as confluent-kafka's does without a
    registry client; ``deserializer_uses_registry=True`` makes it fetch each writer schema
    (for data-contract rules and migrations). Apicurio Registry 3.3.3 cannot serve that fetch
    for schemas Python clients registered (``GET /schemas/ids/N?format=serialized`` answers 500:
    it parses the base64 descriptor it stored as .proto text), so it is off by default.
    """
    from confluent_kafka.schema_registry.protobuf import (
        ProtobufDeserializer,
        ProtobufSerializer,
    )
    from google.protobuf import json_format

    ser = ProtobufSerializer(message_type, client, conf=_strategy_conf(strategy, serializer_conf))
    de = ProtobufDeserializer(
        message_type,
        conf=_strategy_conf(strategy, deserializer_conf),
        schema_registry_client=client if deserializer_uses_registry else None,
    )

    def parse_key(text: str) -> Any:
        try:
            return json_format.Parse(text, message_type())
        except json_format.ParseError as exc:
            raise ValueError(f"not a {message_type.__name__} in JSON: {exc}") from None

    return RegistrySerde(f"Protobuf[{strategy}]", ser, de, parse_key)


def json_schema_serde(
    client: Any,
    schema: str,
    *,
    strategy: SubjectNameStrategy = "topic",
    to_dict: Callable[[Any, Any], dict[str, Any]] | None = None,
    from_dict: Callable[[dict[str, Any], Any], Any] | None = None,
    serializer_conf: Mapping[str, Any] | None = None,
    deserializer_conf: Mapping[str, Any] | None = None,
) -> RegistrySerde:
    """JSON Schema with the registry: values are JSON data validated against ``schema`` on
    both sides. The ``record`` strategies take the schema's ``title`` as its name. A key parses
    from its JSON text."""
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer

    ser = JSONSerializer(
        schema, client, to_dict=to_dict, conf=_strategy_conf(strategy, serializer_conf)
    )
    de = JSONDeserializer(
        schema,
        from_dict=from_dict,
        schema_registry_client=client,
        conf=_strategy_conf(strategy, deserializer_conf),
    )
    return RegistrySerde(f"JSONSchema[{strategy}]", ser, de, _json_text)
