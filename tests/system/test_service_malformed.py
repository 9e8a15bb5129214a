"""us-shareholders: two instances started together on a pre-loaded positions topic whose
partitions end with malformed records.

Nothing valid is lost (``/holders`` from both instances equals the oracle of what the broker
acknowledged), every malformed record that reached the topic is in ``<app>-dlq`` once with its
reason, and the library's query server mounted at ``/query`` answers for every client from
either instance. A null-key record is refused by the broker (compacted topic) and never
reaches the service: the load must check its delivery reports (see ``RecordsRefused``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from tests.support.kafka import header, unique_name, wait_until
from tests.support.positions import RecordsRefused, produce
from tests.system.test_service_faults import Instance, encoded, holders_oracle
from tests.system.test_service_faults import app_id as app_id
from us_shareholders.demo import generate
from us_shareholders.holder_pages import HolderListingError, all_holders
from us_shareholders.kafka_topics import create_topics, service_topics

pytestmark = pytest.mark.system

TIMEOUT_S = 45.0

MALFORMED: list[tuple[str, bytes]] = [
    ("bad-json", b"{not json"),
    ("bad-missing", json.dumps({"id": "bad-missing", "client": "c0001"}).encode()),
    ("bad-type", json.dumps({"id": "bad-type", "client": "c0002", "ticker": "AAPL",
                             "exchange": "NYSE", "amount": "lots"}).encode()),
]  # fmt: skip


def read_all(bootstrap: str, topic: str) -> list[Message]:
    """Every committed record of partition 0 of ``topic``, up to its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("dlq"),
                         "isolation.level": "read_committed", "enable.partition.eof": True,
                         "enable.auto.commit": False})  # fmt: skip
    records: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])

        def at_end() -> bool:
            for msg in consumer.consume(100, timeout=0.5):
                error = msg.error()
                if error is None:
                    records.append(msg)
                elif error.code() == KafkaError._PARTITION_EOF:
                    return True
            return False

        wait_until(at_end, f"the end of {topic}", TIMEOUT_S)
        return records
    finally:
        consumer.close()


@pytest.mark.parametrize("guarantee", ["exactly_once_v2", "at_least_once"])
def test_malformed_records_at_the_end_of_a_preloaded_topic_lose_nothing_valid(
    bootstrap_servers: str, app_id: str, tmp_path: Path, guarantee: str
) -> None:
    positions, clients = f"{app_id}-positions", f"{app_id}-clients"
    create_topics({"bootstrap.servers": bootstrap_servers},
                  service_topics(positions, clients, None, app_id, partitions=6))  # fmt: skip
    data = generate(clients=240, positions=600, seed=5)
    produce(bootstrap_servers, clients, [(k, json.dumps(v).encode()) for k, v in data["clients"]])
    # The malformed records go last, in the same load: they end their partitions.
    produce(bootstrap_servers, positions, [*encoded(data["positions"]), *MALFORMED])
    with pytest.raises(RecordsRefused) as refused:  # alone in its batch: nothing else refused
        produce(bootstrap_servers, positions, [(None, b'{"id": "no-key"}')])
    assert [key for key, _, _ in refused.value.refused] == [None]
    oracle = holders_oracle(data["positions"])

    env = {**os.environ, "USH_BOOTSTRAP_SERVERS": bootstrap_servers, "USH_APPLICATION_ID": app_id,
           "USH_POSITIONS_TOPIC": positions, "USH_CLIENTS_TOPIC": clients,
           "USH_PROCESSING_GUARANTEE": guarantee}  # fmt: skip
    if guarantee == "at_least_once":
        env["USH_COMMIT_INTERVAL_MS"] = "500"  # the default 30 s would only make this slower
    instances = [Instance(env, tmp_path, i) for i in range(2)]
    try:
        for instance in instances:
            instance.start()
        wait_until(lambda: all(i.ready() for i in instances), "both instances ready", TIMEOUT_S)

        def holders(instance: Instance) -> dict[str, list[str]] | None:
            try:
                listed = all_holders(instance.get)
            except HolderListingError:
                return None
            return {h["client"]: [p["id"] for p in h["positions"]] for h in listed}

        wait_until(
            lambda: all(holders(i) == oracle for i in instances),
            "/holders from both instances to equal the oracle",
            TIMEOUT_S,
        )
        # Every holder, and some clients that hold nothing US, from both instances: about half
        # of them forwarded to the other instance's /query mount.
        others = sorted({c for c, _ in data["clients"]} - set(oracle))[:20]
        for instance in instances:
            with httpx.Client(base_url=instance.base, timeout=10) as http:
                for client in [*sorted(oracle), *others]:
                    reply = http.get(f"/query/stores/us-share-holders/keys/{client}")
                    if client in oracle:
                        assert reply.status_code == 200, (client, reply.text)
                        value: dict[str, Any] = reply.json()["value"]
                        assert sorted(value) == oracle[client], client
                    else:
                        assert reply.status_code == 404, (client, reply.text)
                        assert reply.json()["error"] == "not_found"

        dlq = read_all(bootstrap_servers, f"{app_id}-dlq")
        assert sorted(m.key() or b"" for m in dlq) == sorted(k.encode() for k, _ in MALFORMED)
        for msg in dlq:
            assert b"SerializationError" in header(msg, "x-error"), msg.key()
            assert header(msg, "x-topic") == positions.encode()
        for instance in instances:
            assert instance.stop() == 0, instance.log.read_text()[-3000:]
    finally:
        for instance in instances:
            if instance.proc is not None and instance.proc.poll() is None:
                instance.kill9()
