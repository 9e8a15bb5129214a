"""Stand-alone reproduction: librdkafka moves a partition's fetch position back by itself.

One consumer, no committed offset (``auto.offset.reset=earliest``), the app's pattern: pause in
the assignment callback, resume later. The resume lands while librdkafka's first ListOffsets
(for the beginning) is in flight: that reply comes back outdated and arms a 500 ms offset-query
timer which nothing cancels once a second query has started the fetcher. Meanwhile the consumer
reads on and the records below offset ``DELETE_AT`` are deleted (the app's repartition purge).
When the timer fires, librdkafka asks for the beginning again and moves the fetch position to
the new log start: records already handed over come again. (Chaos seed 695530: a count under
exactly_once_v2 processed 63 records twice this way; the runtime now skips them.)

Usage: python tools/repro_offset_rewind.py BOOTSTRAP [runs]
(e.g. a broker of its own: ``KAFKA_LOCAL_PORT=19892 KAFKA_LOCAL_HOME=/tmp/k tools/kafka/kafka-local
start``). Prints, per run, whether a record came again, then how many runs had one. Seen with
librdkafka 2.16.0 on a 4.3.1 broker: 10 of 10 runs. Without the deletion the position does not
move (the second query finds the same beginning).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

RECORDS = 1000
DELETE_WHEN = 700  # once this offset has been handed over ...
DELETE_AT = 600  # ... the records below this one are deleted
RUN_S = 2.5


class Lines(logging.Handler):
    """Keeps librdkafka's debug lines: the resume waits for the first ListOffsets to be sent."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def one_run(bootstrap: str) -> list[tuple[int, int]]:
    """Returns (offset handed over again, highest offset handed over before it)."""
    name = f"rewind-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result()
    producer = Producer({"bootstrap.servers": bootstrap})
    for _ in range(RECORDS):
        producer.produce(name, value=b"x" * 50, partition=0)
    producer.flush(30)

    lines = Lines()
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(lines)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": name,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "debug": "topic",
            "logger": logger,
        }
    )
    paused = False

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        nonlocal paused
        c.assign(partitions)
        c.pause(partitions)
        paused = True

    consumer.subscribe([name], on_assign=on_assign)
    query = f"Partition {name} [0]: querying for logical offset BEGINNING"
    highest, again, deleted = -1, [], False
    end = time.monotonic() + RUN_S
    while time.monotonic() < end:
        if paused and any(query in line for line in lines.lines[-200:]):
            consumer.resume([TopicPartition(name, 0)])
            paused = False
        for msg in consumer.consume(500, 0.002):
            offset = msg.offset()
            if msg.error() or offset is None:
                continue
            if offset <= highest:
                again.append((offset, highest))
            highest = max(highest, offset)
            if not deleted and highest >= DELETE_WHEN:
                deleted = True
                admin.delete_records([TopicPartition(name, 0, DELETE_AT)])
    consumer.close()
    return again


def main() -> int:
    bootstrap = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    hits = 0
    for i in range(runs):
        again = one_run(bootstrap)
        hits += bool(again)
        first = f": offset {again[0][0]} after {again[0][1]}" if again else ""
        print(f"run {i}: {len(again)} record(s) handed over again{first}", flush=True)
    print(f"{hits} of {runs} runs had records handed over again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
