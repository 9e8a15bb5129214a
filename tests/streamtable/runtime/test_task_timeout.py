"""``task_timeout_ms``: how long the runtime asks an unreachable broker again before it gives up.
It was a fixed 120 s (a broker outage longer than that ended a running app in ERROR, chaos seed
557780); Kafka Streams' ``task.timeout.ms`` waits 5 minutes. Now it is a setting, 300000 ms by
default, checked when the config is built and used by every such wait."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

import streamtable as st
from streamtable.errors import ConfigError, StreamTableError
from tests.support.offline import IdleRestorer, closed_port, offline_thread

pytestmark = pytest.mark.unit


def test_the_default_is_kafka_streams_task_timeout() -> None:
    config = st.StreamsConfig(application_id="tto", bootstrap_servers="127.0.0.1:1")
    assert config.task_timeout_ms == 300000
    assert config.task_timeout_s == 300.0


def test_a_negative_task_timeout_names_the_setting() -> None:
    with pytest.raises(ConfigError) as raised:
        st.StreamsConfig(application_id="tto", bootstrap_servers="127.0.0.1:1", task_timeout_ms=-1)
    assert "task_timeout_ms" in str(raised.value)


def test_a_start_against_an_unreachable_broker_gives_up_after_the_task_timeout(
    tmp_path: Path,
) -> None:
    builder = st.StreamsBuilder()
    builder.stream("events").to("copy")
    app = st.StreamsApp(
        builder.build(),
        st.StreamsConfig(
            application_id="tto",
            bootstrap_servers=f"127.0.0.1:{closed_port()}",
            state_dir=tmp_path,
            task_timeout_ms=1500,
        ),
    )
    started = time.monotonic()
    with pytest.raises(KafkaException) as raised:
        app.start()
    assert raised.value.args[0].code() == KafkaError._TRANSPORT
    assert 1.0 <= time.monotonic() - started < 20.0  # waited 120 s whatever the setting before


def test_a_task_whose_committed_offsets_stay_unstable_names_its_partitions() -> None:
    """Under exactly_once_v2 a task starts only once its input offsets are stable. A transaction
    the coordinator counts as ended but whose markers never reached its partitions (a broker
    stopped mid-commit: chaos seed 710625) keeps them unstable for good; past the task timeout
    the error names the partitions and the way out, instead of librdkafka's bare timeout."""

    class Unstable:
        def committed(self, partitions: list[Any], timeout: float) -> list[Any]:
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, "Failed to get committed offsets", retriable=True)
            )

    thread = offline_thread(
        "tto-unstable",
        consumer=Unstable(),
        restorer=IdleRestorer(),
        processing_guarantee="exactly_once_v2",
        task_timeout_ms=300,
    )
    with pytest.raises(StreamTableError) as raised:
        thread.tasks.create([("events", 2)])  # task 0_2 starts restoring
    message = str(raised.value)
    assert "events[2] (task 0_2)" in message
    assert "kafka-transactions.sh find-hanging" in message
