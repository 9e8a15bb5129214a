"""Several StreamsApp processes on one topic, with kill -9: the seed topology's union of local
stores equals the oracle with no key in two processes; a killed process restarted on its state
dir restores only past its checkpoint; under exactly_once_v2 a crash neither loses nor repeats
an effect."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.support.kafka import Deadline, TopicFactory, delete_topics, unique_name, wait_until
from tests.support.positions import (
    generate,
    generate_moves,
    oracle,
    produce,
    produce_positions,
)

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0
KILL9_SEED = int(os.environ.get("KILL9_SEED", "1"))
KILL9_COUNT = int(os.environ.get("KILL9_COUNT", "100000"))


class AppProcess:
    """A ``tests.system.app_process`` child; ``dump()`` asks it for its local store."""

    def __init__(self, workdir: Path, name: str, args: list[str]) -> None:
        self.name = name
        self.args = args
        self.dump_path = workdir / f"{name}.json"
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, state_dir: Path) -> None:
        self.dump_path.with_suffix(".ready").unlink(missing_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.system.app_process", *self.args,
                 "--state-dir", str(state_dir), "--dump", str(self.dump_path)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def dump(self) -> dict[str, Any]:
        assert self.proc is not None
        ready = self.dump_path.with_suffix(".ready")
        wait_until(ready.exists, f"{self.name} to listen for SIGUSR1", 30.0)
        self.dump_path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)

        def written() -> dict[str, Any] | None:
            assert self.proc is not None
            assert self.proc.poll() is None, self.tail()
            if not self.dump_path.exists():
                return None
            report: dict[str, Any] = json.loads(self.dump_path.read_text())
            return report

        return wait_until(written, f"{self.name} to write its store", 30.0)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def terminate(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def tail(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""


def lag_is_zero(bootstrap: str, group: str, topics: list[str]) -> bool:
    """The group's committed offsets are at the end of every partition of ``topics``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        committed = consumer.committed(partitions, timeout=10)
        for tp in committed:
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > 0 and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()


def caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """The group has committed everything on ``topics``, transactions included: reading
    read_committed from each committed offset finds no record, and no transaction is open
    (the last stable offset, where a read_committed consumer stops, is the high watermark)."""
    admin = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "isolation.level": "read_committed"})  # fmt: skip
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("lag"),
                       "isolation.level": "read_committed", "enable.partition.eof": True,
                       "enable.auto.commit": False})  # fmt: skip
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in admin.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        try:
            committed = admin.committed(partitions, timeout=10)
        except KafkaException:  # e.g. UNSTABLE_OFFSET_COMMIT until a transaction ends
            return False
        reader.assign(
            [TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)) for tp in committed]
        )
        eof: dict[tuple[str, int], int] = {}  # where read_committed reading stops
        deadline = Deadline(10.0)
        while len(eof) < len(partitions) and not deadline.expired():
            for msg in reader.consume(100, timeout=0.2):
                error = msg.error()
                if error is None:
                    return False  # a committed record past the committed offset
                if error.code() == KafkaError._PARTITION_EOF:
                    eof[(msg.topic() or "", msg.partition() or 0)] = msg.offset() or 0
        if len(eof) < len(partitions):
            return False
        ends = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("lag"),
                         "isolation.level": "read_uncommitted"})  # fmt: skip
        try:  # the log end offset; librdkafka's default, read_committed, gives the LSO
            for tp in partitions:
                _, high = ends.get_watermark_offsets(tp, timeout=10, cached=False)
                if eof[(tp.topic, tp.partition)] != high:
                    return False  # an open transaction
        finally:
            ends.close()
        return True
    finally:
        admin.close()
        reader.close()


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("sys")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


@pytest.fixture
def processes() -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    yield started
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill9()


def seed_args(bootstrap: str, app_id: str, topic: str, guarantee: str) -> list[str]:
    return ["--bootstrap", bootstrap, "--app-id", app_id, "--topic", topic,
            "--store", "us-share-holders", "--guarantee", guarantee]  # fmt: skip


def union_of_stores(procs: list[AppProcess], expected_total: int) -> dict[str, frozenset[str]]:
    """Dump every process until all are RUNNING and together hold ``expected_total`` keys;
    assert no key lives in two processes."""
    last: list[list[dict[str, Any]]] = [[]]

    def settled() -> bool:
        last[0] = [p.dump() for p in procs]
        stores = [d["store"] for d in last[0]]
        return all(s is not None for s in stores) and sum(map(len, stores)) >= expected_total

    wait_until(settled, "all instances RUNNING with every key", TIMEOUT_S)
    union: dict[str, frozenset[str]] = {}
    for report in last[0]:
        for key, ids in report["store"].items():
            assert key not in union, f"key {key} is held by two instances"
            union[key] = frozenset(ids)
    return union


def test_three_processes_with_a_kill9_converge_to_the_oracle(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
    processes: list[AppProcess],
) -> None:
    topic = new_topic(partitions=6, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate(seed=7, count=100_000, ids=5_000)
    expected = oracle(events)
    repartition = f"{app_id}-us-share-holders-repartition"
    args = seed_args(bootstrap_servers, app_id, topic, "at_least_once")
    for i in range(3):
        processes.append(AppProcess(tmp_path, f"p{i}", args))
        processes[i].start(tmp_path / f"state-{i}")
    produce_positions(bootstrap_servers, topic, events[:50_000])

    # Mid-stream: once some input is committed, kill one process and restart it on its dir.
    def committed_some() -> bool:
        consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": app_id})
        try:
            parts = [TopicPartition(topic, p) for p in range(6)]
            return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10)) > 0
        finally:
            consumer.close()

    wait_until(committed_some, "some input to be committed", TIMEOUT_S)
    processes[1].kill9()
    produce_positions(bootstrap_servers, topic, events[50_000:])
    processes[1].start(tmp_path / "state-1")

    wait_until(
        lambda: lag_is_zero(bootstrap_servers, app_id, [topic, repartition]),
        "the group to consume all input and repartition records",
        TIMEOUT_S,
    )
    assert union_of_stores(processes, len(expected)) == expected
    restored = processes[1].dump()["restored"]
    print(f"restarted process restored {restored} changelog records")

    # A restart on an EMPTY state dir restores everything it owns and converges again.
    processes[2].kill9()
    processes[2].start(tmp_path / "state-2-empty")
    assert union_of_stores(processes, len(expected)) == expected
    assert processes[2].dump()["restored"] > 0
    for proc in processes:
        assert proc.terminate() == 0, proc.tail()


def test_exactly_once_counts_survive_kill9_without_loss_or_repeat(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
    processes: list[AppProcess],
) -> None:
    topic = new_topic(partitions=4, prefix="events")
    output = new_topic(partitions=4, prefix="counts")
    keys = [f"k{i}" for i in range(200)]
    records: list[tuple[str, bytes | None]] = [
        (keys[i % len(keys)], json.dumps({"n": i}).encode()) for i in range(40_000)
    ]
    args = ["--bootstrap", bootstrap_servers, "--app-id", app_id, "--topic", topic,
            "--store", "counts", "--guarantee", "exactly_once_v2", "--topology", "count",
            "--output", output, "--commit-interval-ms", "100"]  # fmt: skip
    for i in range(2):
        processes.append(AppProcess(tmp_path, f"e{i}", args))
        processes[i].start(tmp_path / f"state-{i}")
    produce(bootstrap_servers, topic, records[:20_000])
    wait_until(lambda: processes[0].dump()["state"] == "RUNNING", "e0 running", TIMEOUT_S)
    processes[0].kill9()  # mid-stream, possibly inside an open transaction
    produce(bootstrap_servers, topic, records[20_000:])
    processes[0].start(tmp_path / "state-0")
    wait_until(
        lambda: lag_is_zero(bootstrap_servers, app_id, [topic]),
        "the group to consume all input",
        TIMEOUT_S,
    )

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": unique_name("verify"),
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    seen: dict[str, list[int]] = {}
    try:
        consumer.subscribe([output])
        done: set[int] = set()

        def read_all() -> bool:
            for msg in consumer.consume(1000, timeout=0.5):
                error, key, value = msg.error(), msg.key(), msg.value()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        done.add(msg.partition() or 0)
                    continue
                assert key is not None
                assert value is not None
                seen.setdefault(key.decode(), []).append(json.loads(value))
            return len(done) == 4 and sum(len(v) for v in seen.values()) > 0

        wait_until(read_all, "the committed output", TIMEOUT_S)
    finally:
        consumer.close()
    per_key = len(records) // len(keys)
    for key in keys:
        counts = seen.get(key, [])
        assert counts, f"no output for {key}"
        # The record cache may skip intermediate counts; a repeat or a step back would mean an
        # effect applied twice (or lost and redone); the last count must be exact.
        assert all(a < b for a, b in pairwise(counts)), (key, counts[:20])
        assert counts[-1] == per_key, (key, counts[-1])
    for proc in processes:
        assert proc.terminate() == 0, proc.tail()


def stores_settled(procs: list[AppProcess]) -> dict[str, frozenset[str]]:
    """Dump every process until all are RUNNING; the union of their stores (no key in two)."""
    last: list[list[dict[str, Any]]] = [[]]

    def running() -> bool:
        last[0] = [p.dump() for p in procs]
        return all(d["store"] is not None for d in last[0])

    wait_until(running, "all instances RUNNING", TIMEOUT_S)
    union: dict[str, frozenset[str]] = {}
    for report in last[0]:
        for key, ids in report["store"].items():
            assert key not in union, f"key {key} is held by two instances"
            union[key] = frozenset(ids)
    return union


def diff(got: dict[str, frozenset[str]], expected: dict[str, frozenset[str]]) -> list[str]:
    wrong = []
    for client in sorted(set(got) | set(expected)):
        have, want = got.get(client, frozenset()), expected.get(client, frozenset())
        if have != want:
            wrong.append(f"{client}: extra {sorted(have - want)} missing {sorted(want - have)}")
    return wrong


def kill9_while_producing(
    bootstrap: str,
    app_id: str,
    topic: str,
    workdir: Path,
    processes: list[AppProcess],
    guarantee: str,
    events: list[tuple[str, dict[str, Any] | None]],
    chunk: int = 2_000,
    pause_s: float = 0.05,
    cache_max_bytes: int = 10 * 1024 * 1024,
) -> list[str]:
    """Three processes on ``topic`` while ``events`` are produced (``chunk`` records every
    ``pause_s``); once a sixth of them is produced one process is killed (SIGKILL) and
    restarted on its state dir, at two thirds another is killed and restarted on an empty
    state dir. Once the group has committed everything, returns how the union of the stores
    differs from the oracle (an empty list: exact)."""
    repartition = f"{app_id}-us-share-holders-repartition"
    args = [*seed_args(bootstrap, app_id, topic, guarantee), "--commit-interval-ms", "200",
            "--cache-max-bytes", str(cache_max_bytes)]  # fmt: skip
    for i in range(3):
        processes.append(AppProcess(workdir, f"p{i}", args))
        processes[i].start(workdir / f"state-{i}")
    produced = [0]
    stop = threading.Event()

    def producer() -> None:
        for start in range(0, len(events), chunk):
            if stop.is_set():
                return
            produce_positions(bootstrap, topic, events[start : start + chunk])
            produced[0] = start + chunk
            stop.wait(pause_s)  # pace the input so that it spans the kills

    def committed_input() -> int:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": app_id,
                             "isolation.level": "read_committed"})  # fmt: skip
        try:
            parts = [TopicPartition(topic, p) for p in range(6)]
            return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
        except KafkaException:  # e.g. the group coordinator is still loading
            return 0
        finally:
            consumer.close()

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    try:
        # Kills at points of the producer's progress, not of the group's commits (right after
        # a commit, a process has no transaction open).
        # Each kill waits for every process to run its tasks (during a rebalance a process
        # has no transaction open to leave behind).
        def all_running() -> bool:
            return all(p.dump()["state"] == "RUNNING" for p in processes)

        wait_until(lambda: committed_input() > 0, "some input committed", TIMEOUT_S)
        third = len(events) // 3
        wait_until(lambda: produced[0] >= third // 2, "a sixth of the input produced", TIMEOUT_S)
        wait_until(all_running, "all processes running", TIMEOUT_S)
        processes[1].kill9()  # mid-stream, likely inside an open transaction
        processes[1].start(workdir / "state-1")
        wait_until(lambda: produced[0] >= third, "a third produced", TIMEOUT_S)
        wait_until(all_running, "all processes running again", TIMEOUT_S)
        processes[2].kill9()
        processes[2].start(workdir / "state-2-empty")
        thread.join(TIMEOUT_S)
        assert not thread.is_alive(), "the producer did not finish"
    finally:
        stop.set()
    wait_until(
        lambda: caught_up(bootstrap, app_id, [topic, repartition]),
        "the group to commit every input and repartition record",
        TIMEOUT_S * 2,
    )
    return diff(stores_settled(processes), oracle(events))


@pytest.mark.parametrize("guarantee", ["exactly_once_v2", "at_least_once"])
def test_kill9_while_producing_converges_to_the_oracle(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
    processes: list[AppProcess],
    guarantee: str,
) -> None:
    """100k events, continuously (50 every 20 ms), so that a kill lands inside an open
    transaction; the kills about 15 s apart, within a transaction timeout, so tasks move
    again while it is open."""
    topic = new_topic(partitions=6, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate_moves(seed=KILL9_SEED, count=KILL9_COUNT, ids=30_000, clients=4_000)
    wrong = kill9_while_producing(
        bootstrap_servers, app_id, topic, tmp_path, processes, guarantee, events, 50, 0.02
    )
    assert not wrong, f"{len(wrong)} clients differ from the oracle: {wrong[:10]}"
    for proc in processes:
        assert proc.terminate() == 0, proc.tail()


@pytest.mark.parametrize("guarantee", ["exactly_once_v2", "at_least_once"])
def test_kill9_while_trickling_converges_to_the_oracle(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
    processes: list[AppProcess],
    guarantee: str,
) -> None:
    """A trickle (about 150 events/s) without a record cache: every change is sent at once,
    so a transaction is nearly always open when a process is killed, and it is small: it
    touches few partitions and the other tasks go on committing after it. The kills about
    15 s apart, within a transaction timeout, so tasks move again while it is open."""
    topic = new_topic(partitions=6, config={"cleanup.policy": "compact"}, prefix="positions")
    events = generate_moves(seed=KILL9_SEED, count=4_500, ids=3_000, clients=300)
    wrong = kill9_while_producing(
        bootstrap_servers, app_id, topic, tmp_path, processes, guarantee, events, 30, 0.2, 0
    )
    assert not wrong, f"{len(wrong)} clients differ from the oracle: {wrong[:10]}"
    for proc in processes:
        assert proc.terminate() == 0, proc.tail()
