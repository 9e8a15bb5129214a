"""A small, repeatable workload to profile with py-spy (W1 processing and W2 restore, in-process).

    python -m bench.profile --bootstrap B [--records N]

produces N records (default 400,000; the bench's generator, 4 partitions) to a fresh topic,
runs the seed topology (bench/runner.py) at-least-once (commit interval 1 s, as the bench) from
empty state until the group has committed the whole input ("process"), closes, wipes the state
directory and starts again ("restore", until RUNNING), and prints wall and CPU seconds of each
phase. Under py-spy::

    py-spy record -r 200 -o w1.svg -- .venv/bin/python -m bench.profile --bootstrap B

Its topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import streamtable as st
from bench.datagen import DataSettings, create_topic, produce
from bench.runner import seed_topology

PARTITIONS = 4


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase(name: str, app: st.StreamsApp, done: Callable[[], bool], timeout_s: float = 600) -> None:
    wall, cpu = time.monotonic(), cpu_s()
    app.start()
    deadline = wall + timeout_s
    while not (app.state is st.AppState.RUNNING and done()):
        if app.state is st.AppState.ERROR or time.monotonic() > deadline:
            raise SystemExit(
                f"{name}: the app is {app.state.name} after {time.monotonic() - wall:.0f}s"
            )
        time.sleep(0.02)
    print(
        f"{name}: {time.monotonic() - wall:.2f}s wall, {cpu_s() - cpu:.2f}s CPU, "
        f"{app.restored_records:,} records restored",
        flush=True,
    )
    app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--records", type=int, default=400_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("streamtable.runtime.restore").setLevel(logging.INFO)  # the rate
    run = f"profile-{uuid.uuid4().hex[:8]}"
    source, sink = f"{run}-in", f"{run}-out"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    create_topic(admin, source, PARTITIONS)
    admin.create_topics([NewTopic(sink, PARTITIONS, 1)])[sink].result(30)
    records = args.records
    produce(args.bootstrap, source, DataSettings(records, records // 10, records // 100))
    state = Path(tempfile.mkdtemp(prefix="st-profile-"))
    config = st.StreamsConfig(
        application_id=run,
        bootstrap_servers=args.bootstrap,
        state_dir=state,
        commit_interval_ms=1000,  # as the bench's at-least-once runs
    )
    offsets = Consumer({"bootstrap.servers": args.bootstrap, "group.id": run})
    try:
        parts = [TopicPartition(source, p) for p in range(PARTITIONS)]
        ends = [offsets.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]

        def committed_all() -> bool:
            return [tp.offset for tp in offsets.committed(parts, timeout=10)] == ends

        topology = seed_topology(source, sink)
        phase("process", st.StreamsApp(topology, config), committed_all)
        shutil.rmtree(state / run, ignore_errors=True)
        phase("restore", st.StreamsApp(topology, config), lambda: True)
    finally:
        offsets.close()
        shutil.rmtree(state, ignore_errors=True)
        topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(run)]
        for future in admin.delete_topics(topics).values():
            future.result(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
