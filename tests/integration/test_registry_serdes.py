"""Schema Registry serdes against a real registry (Apicurio Registry's Confluent-compatible API,
started by tools/registry/registry-local) and a real broker: Avro and Protobuf round trips
through StreamsApp, subject names per strategy, the subjects of internal topics, and a table
over an Avro-keyed topic queried over HTTP by key."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import uvicorn
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import streamtable as st
from streamtable.query import create_query_app
from streamtable.serde import bind
from streamtable.serde_registry import (
    RegistrySerde,
    avro_serde,
    json_schema_serde,
    protobuf_serde,
    registry_client,
)
from tests.support.kafka import TopicFactory, delete_topics, unique_name, wait_until

pytestmark = pytest.mark.integration

TIMEOUT_S = 90.0


def avro_record(name: str, namespace: str, fields: dict[str, str]) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": name,
            "namespace": namespace,
            "fields": [{"name": k, "type": t} for k, t in fields.items()],
        }
    )


def position_message(package: str) -> type[Any]:
    """A Protobuf message class built at run time (no protoc): ``Position {client, amount}``
    in its own package, so that record-named subjects never collide between tests."""
    file = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '/')}/position.proto", package=package, syntax="proto3"
    )
    message = file.message_type.add(name="Position")
    message.field.add(
        name="client",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    message.field.add(
        name="amount",
        number=2,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    cls: type[Any] = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{package}.Position")
    )
    return cls


@pytest.fixture
def registry(schema_registry_url: str) -> Iterator[SchemaRegistryClient]:
    client: SchemaRegistryClient = registry_client(schema_registry_url)
    with client:  # closes its HTTP connections
        yield client


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("sr-app")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def make_app(
    topology: st.Topology, app_id: str, bootstrap: str, state_dir: Path, **settings: Any
) -> st.StreamsApp:
    return st.StreamsApp(
        topology,
        st.StreamsConfig(
            application_id=app_id,
            bootstrap_servers=bootstrap,
            state_dir=state_dir,
            commit_interval_ms=300,
            session_timeout_ms=6000,
            **settings,
        ),
    )


def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[Any, Any]],
    key_serde: RegistrySerde,
    value_serde: RegistrySerde,
) -> None:
    """Serialized as a Kafka client would (the serdes bound to ``topic``), partitioned by
    murmur2 of the key bytes like Java's producer and the runtime."""
    k, v = bind(key_serde, topic, True), bind(value_serde, topic, False)
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for key, value in records:
        producer.produce(topic, key=k.serialize(key), value=v.serialize(value))
    assert producer.flush(30) == 0


def read_all(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": unique_name("g"), "enable.auto.commit": False}
    )
    got: list[tuple[bytes, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])

        def enough() -> bool:
            for msg in consumer.consume(50, timeout=0.5):
                if msg.error() is None:
                    got.append((msg.key() or b"", msg.value() or b""))
            return len(got) >= count

        wait_until(enough, f"{count} records on {topic}", TIMEOUT_S)
    finally:
        consumer.close()
    return got


def running_app(app: st.StreamsApp) -> None:
    assert app.state is not st.AppState.ERROR, f"app failed: {app.error!r}"


# --- round trips ------------------------------------------------------------------------------


def test_avro_round_trip_through_the_registry_and_kafka(
    bootstrap_servers: str,
    schema_registry_url: str,
    registry: SchemaRegistryClient,
    new_topic: TopicFactory,
    app_id: str,
    tmp_path: Path,
) -> None:
    ns = f"t{uuid.uuid4().hex}"
    position = avro_record("Position", ns, {"client": "string", "amount": "long"})
    doubled = avro_record("Doubled", ns, {"client": "string", "twice": "long"})
    source, sink = new_topic(prefix="sr-avro-in"), new_topic(prefix="sr-avro-out")
    key, in_value = avro_serde(registry, '"string"'), avro_serde(registry, position)
    out_value = avro_serde(registry, doubled)

    b = st.StreamsBuilder()
    b.stream(source, key_serde=key, value_serde=in_value).map_values(
        lambda v: {"client": v["client"], "twice": 2 * v["amount"]}
    ).to(sink, key_serde=key, value_serde=out_value)
    records: list[tuple[str, dict[str, Any]]] = [
        (f"p{i}", {"client": f"c{i % 3}", "amount": i}) for i in range(20)
    ]
    produce(bootstrap_servers, source, records, key, in_value)

    with make_app(b.build(), app_id, bootstrap_servers, tmp_path) as app:  # started
        raw = read_all(bootstrap_servers, sink, len(records))
        running_app(app)

    # Read back with confluent-kafka's own deserializer: the Confluent wire format.
    with registry_client(schema_registry_url) as fresh:  # nothing cached: fetches
        de_key, de_value = AvroDeserializer(fresh), AvroDeserializer(fresh)
        decoded = [
            (
                de_key(k, SerializationContext(sink, MessageField.KEY)),
                de_value(v, SerializationContext(sink, MessageField.VALUE)),
            )
            for k, v in raw
        ]
    assert decoded == [(k, {"client": v["client"], "twice": 2 * v["amount"]}) for k, v in records]
    subjects = set(registry.get_subjects())
    assert {f"{source}-key", f"{source}-value", f"{sink}-key", f"{sink}-value"} <= subjects
    assert raw[0][1][0] == 0  # magic byte, then the schema id
    assert registry.get_latest_version(f"{sink}-value").schema_id == int.from_bytes(
        raw[0][1][1:5], "big"
    )


def test_protobuf_round_trip_through_the_registry_and_kafka(
    bootstrap_servers: str,
    schema_registry_url: str,
    registry: SchemaRegistryClient,
    new_topic: TopicFactory,
    app_id: str,
    tmp_path: Path,
) -> None:
    message = position_message(f"t{uuid.uuid4().hex}")
    source, sink = new_topic(prefix="sr-proto-in"), new_topic(prefix="sr-proto-out")
    key, value = avro_serde(registry, '"string"'), protobuf_serde(registry, message)

    b = st.StreamsBuilder()
    b.stream(source, key_serde=key, value_serde=value).map_values(
        lambda v: message(client=v.client.upper(), amount=v.amount * 10)
    ).to(sink, key_serde=key, value_serde=value)
    records = [(f"p{i}", message(client=f"c{i}", amount=i)) for i in range(10)]
    produce(bootstrap_servers, source, records, key, value)

    with make_app(b.build(), app_id, bootstrap_servers, tmp_path) as app:  # started
        raw = read_all(bootstrap_servers, sink, len(records))
        running_app(app)

    # As a separate consumer reads them: confluent-kafka's deserializer, its own registry client.
    de = ProtobufDeserializer(message, {})
    values = [de(v, SerializationContext(sink, MessageField.VALUE)) for _, v in raw]
    assert [(v.client, v.amount) for v in values] == [(f"C{i}", 10 * i) for i in range(10)]
    assert {f"{source}-value", f"{sink}-value"} <= set(registry.get_subjects())
    with registry_client(schema_registry_url) as fresh:
        registered = fresh.get_latest_version(f"{sink}-value")
    assert registered.schema.schema_type == "PROTOBUF"
    assert registered.schema_id == int.from_bytes(raw[0][1][1:5], "big")


# --- subjects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["topic", "record", "topic_record"])
def test_subject_names_follow_the_strategy(registry: SchemaRegistryClient, strategy: Any) -> None:
    ns = f"t{uuid.uuid4().hex}"
    topic = unique_name("sr-subjects")
    avro = avro_serde(
        registry, avro_record("Position", ns, {"client": "string"}), strategy=strategy
    )
    proto_cls = position_message(f"{ns}.proto")
    proto = protobuf_serde(registry, proto_cls, strategy=strategy)
    json_schema = json.dumps(
        {"title": f"{ns}.Doc", "type": "object", "properties": {"a": {"type": "integer"}}}
    )
    js = json_schema_serde(registry, json_schema, strategy=strategy)

    a = bind(avro, f"{topic}-a", False)
    p = bind(proto, f"{topic}-p", False)
    j = bind(js, f"{topic}-j", True)
    assert a.deserialize(a.serialize({"client": "c1"})) == {"client": "c1"}
    assert p.deserialize(p.serialize(proto_cls(client="c1", amount=3))).amount == 3
    assert j.deserialize(j.serialize({"a": 1})) == {"a": 1}

    expected = {
        "topic": {f"{topic}-a-value", f"{topic}-p-value", f"{topic}-j-key"},
        "record": {f"{ns}.Position", f"{ns}.proto.Position", f"{ns}.Doc"},
        "topic_record": {
            f"{topic}-a-{ns}.Position",
            f"{topic}-p-{ns}.proto.Position",
            f"{topic}-j-{ns}.Doc",
        },
    }[strategy]
    subjects = set(registry.get_subjects())
    assert expected <= subjects, sorted(expected - subjects)
    assert not {s for s in subjects if s.startswith(topic)} - expected


# --- a table over an Avro-keyed topic: internal subjects, HTTP queries ------------------------


class PositionKey(NamedTuple):
    """A hashable key (stores cache by key) for the Avro record key ``{"id": ...}``."""

    id: str


class QueryServer:
    """The query server for ``app`` on 127.0.0.1 (uvicorn in a thread)."""

    def __init__(self, app_factory: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.app: st.StreamsApp = app_factory(self.address)
        config = uvicorn.Config(create_query_app(self.app), log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> QueryServer:
        self.thread.start()
        wait_until(lambda: self.server.started, f"query server {self.address} to start", 10)
        self.app.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.app.close()
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def test_a_table_over_an_avro_keyed_topic_is_queried_over_http_by_key(
    bootstrap_servers: str,
    registry: SchemaRegistryClient,
    new_topic: TopicFactory,
    app_id: str,
    tmp_path: Path,
) -> None:
    ns = f"t{uuid.uuid4().hex}"
    key_schema = avro_record("PositionKey", ns, {"id": "string"})
    value_schema = avro_record("Position", ns, {"client": "string", "amount": "long"})
    total_schema = avro_record("Total", ns, {"sum": "long"})
    source = new_topic(partitions=3, config={"cleanup.policy": "compact"}, prefix="sr-positions")
    key = avro_serde(
        registry,
        key_schema,
        to_dict=lambda k, _: k._asdict(),
        from_dict=lambda d, _: PositionKey(**d),
    )
    value = avro_serde(registry, value_schema)
    client_key, total = avro_serde(registry, '"string"'), avro_serde(registry, total_schema)

    b = st.StreamsBuilder()
    table = b.table(source, key_serde=key, value_serde=value, store="positions")
    table.group_by(
        lambda k, v: (v["client"], v), key_serde=client_key, value_serde=value
    ).aggregate(
        lambda: {"sum": 0},
        lambda k, v, agg: {"sum": agg["sum"] + v["amount"]},
        lambda k, v, agg: {"sum": agg["sum"] - v["amount"]},
        store="totals",
        value_serde=total,
    )
    records = [(PositionKey(f"p{i}"), {"client": f"c{i % 4}", "amount": i}) for i in range(40)]
    produce(bootstrap_servers, source, records, key, value)
    sums = {f"c{c}": sum(i for i in range(40) if i % 4 == c) for c in range(4)}

    def factory(address: str) -> st.StreamsApp:
        return make_app(b.build(), app_id, bootstrap_servers, tmp_path, application_server=address)

    with QueryServer(factory) as server, httpx.Client(timeout=10) as http:
        base = f"http://{server.address}/stores"

        def answers() -> bool:
            running_app(server.app)
            for client, expected in sums.items():
                r = http.get(f"{base}/totals/keys/{client}")
                if r.status_code != 200 or r.json()["value"] != {"sum": expected}:
                    return False
            return True

        wait_until(answers, "every client's total over HTTP", TIMEOUT_S)
        # The table itself, keyed by an Avro record: the key is its JSON form in the URL.
        for i in (0, 7, 39):
            r = http.get(f"{base}/positions/keys/" + json.dumps({"id": f"p{i}"}))
            assert r.status_code == 200, r.text
            assert r.json()["value"] == {"client": f"c{i % 4}", "amount": i}
        assert http.get(f"{base}/positions/keys/" + json.dumps({"id": "nope"})).status_code == 404
        assert http.get(f"{base}/positions/keys/not-json").status_code == 400

    subjects = set(registry.get_subjects())
    internal = {
        f"{app_id}-totals-repartition-key",
        f"{app_id}-totals-repartition-value",
        f"{app_id}-totals-changelog-key",
        f"{app_id}-totals-changelog-value",
    }
    assert internal <= subjects, sorted(internal - subjects)
    # The table source's store reuses its input topic: no changelog subjects of its own.
    assert not {s for s in subjects if s.startswith(f"{app_id}-positions-")}
