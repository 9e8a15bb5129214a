"""A benchmark child process, so that its RSS and CPU are its own.

``python -m bench.runner streamtable --bootstrap B --application-id A --input T --output O
[--state-dir D] [--guarantee G] [--commit-interval-ms N] [--cache-max-bytes N]
[--rocksdb-memory-bytes N|none] [--topology seed|w6] [--probe-store S --probe-keys K1,K2]``
runs the seed topology (or W6's windowed counts and sums, bench/w6_topology.py) with
:class:`streamtable.StreamsApp` and speaks BenchApp's protocol on stdout
(``STATE <state>`` on every change; ``RESTORE_START`` when it starts restoring its first
changelog partition, told by a :class:`streamtable.StateRestoreListener`; and
``RESTORED_TOTAL <n>`` when it reaches RUNNING) until SIGTERM, then closes and exits 0 (1 if
the app failed). With ``--probe-store``, a :class:`bench.latency_probe.StoreProbe` reads the
probe keys through ``app.store(S)`` and prints ``SEEN <element> <wall-clock ns>`` lines too.

``python -m bench.runner raw --bootstrap B --input T`` reads the whole topic with a plain
confluent-kafka consumer (no processing) and prints ``DONE <records> <seconds>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import streamtable as st
from bench.latency_probe import StoreProbe
from bench.w6_topology import w6_topology
from streamtable.serde import JSON, STRING

US = frozenset({"NASDAQ", "NYSE"})


def seed_topology(input_topic: str, output_topic: str) -> st.Topology:
    """Java's ``seed`` (bench/reference/PROTOCOL.md) with the topic names as parameters."""
    b = st.StreamsBuilder()
    (
        b.table(input_topic, key_serde=STRING, value_serde=JSON, store="positions-store")
        .filter(lambda k, v: v["exchange"] in US)
        .group_by(lambda k, v: (v["client"], [k]), key_serde=STRING, value_serde=JSON)
        .reduce(
            adder=lambda agg, v: sorted(set(agg) | set(v)),
            subtractor=lambda agg, v: sorted(set(agg) - set(v)) or None,
            store="us-holders",
        )
        .to_stream()
        .to(output_topic)
    )
    return b.build()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_streamtable(args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {
        "application_id": args.application_id,
        "bootstrap_servers": args.bootstrap,
        "processing_guarantee": args.guarantee,
    }
    if args.state_dir:
        settings["state_dir"] = Path(args.state_dir)
    if args.commit_interval_ms is not None:
        settings["commit_interval_ms"] = args.commit_interval_ms
    if args.cache_max_bytes is not None:
        settings["cache_max_bytes"] = args.cache_max_bytes
    if "rocksdb_memory_bytes" in vars(args):  # given (None: RocksDB's per-store defaults)
        settings["rocksdb_memory_bytes"] = args.rocksdb_memory_bytes
    build = w6_topology if args.topology == "w6" else seed_topology
    app = st.StreamsApp(build(args.input, args.output), st.StreamsConfig(**settings))

    def on_state(old: st.AppState, new: st.AppState) -> None:
        say(f"STATE {new.name}")
        if new is st.AppState.RUNNING:
            say(f"RESTORED_TOTAL {app.restored_records}")

    app.add_state_listener(on_state)
    app.set_restore_listener(RestoreStart())
    if args.probe_store is None:
        return app.run_until_signal()
    probe = StoreProbe(app, args.probe_store, args.probe_keys.split(","), say)
    probe.start()
    try:
        return app.run_until_signal()
    finally:
        probe.stop()


TP = tuple[str, int]


class RestoreStart:
    """Says ``RESTORE_START`` when the app starts restoring its first changelog partition."""

    def __init__(self) -> None:
        self.said = False

    def on_restore_start(
        self, partition: tuple[str, int], store: str, start: int, end: int
    ) -> None:
        if not self.said:
            self.said = True
            say("RESTORE_START")

    def on_batch_restored(
        self, partition: tuple[str, int], store: str, batch_end: int, count: int
    ) -> None:
        pass

    def on_restore_end(self, partition: TP, store: str, total: int) -> None:
        pass


def run_raw(args: argparse.Namespace) -> int:
    started = time.monotonic()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"bench-raw-{time.time_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        meta = consumer.list_topics(args.input, timeout=30).topics[args.input]
        ends: dict[int, int] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(args.input, p), timeout=30)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(args.input, p, OFFSET_BEGINNING) for p in ends])
        records = 0
        while ends:
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                if msg.error() is not None:
                    continue
                records += 1
                partition, offset = msg.partition(), msg.offset()
                if (
                    partition is not None
                    and offset is not None
                    and offset + 1 >= ends.get(partition, sys.maxsize)
                ):
                    del ends[partition]
        say(f"DONE {records} {time.monotonic() - started:.3f}")
    finally:
        consumer.close()
    return 0


def memory_bytes(raw: str) -> int | None:
    """``--rocksdb-memory-bytes``: a number of bytes, or ``none``."""
    return None if raw.strip().lower() == "none" else int(raw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.runner")
    parser.add_argument("mode", choices=["streamtable", "raw"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--application-id", default="bench")
    parser.add_argument("--output", default="bench-out")
    parser.add_argument("--state-dir")
    parser.add_argument(
        "--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once_v2"]
    )
    parser.add_argument("--commit-interval-ms", type=int)
    parser.add_argument("--topology", default="seed", choices=["seed", "w6"])
    parser.add_argument("--cache-max-bytes", type=int)
    parser.add_argument("--probe-store", help="the store the latency probe reads")
    parser.add_argument("--probe-keys", default="", help="its keys, comma-separated")
    parser.add_argument(
        "--rocksdb-memory-bytes",
        type=memory_bytes,
        default=argparse.SUPPRESS,
        help="bytes, or none (RocksDB's per-store defaults); default: streamtable's",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return run_streamtable(args) if args.mode == "streamtable" else run_raw(args)


if __name__ == "__main__":
    sys.exit(main())
