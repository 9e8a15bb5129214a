"""Credentials the broker refuses stop the start at once with an error naming the settings
(librdkafka alone retries forever and the metadata request fails after 30 s with a misleading
"Broker transport failure").

Needs a broker with a SASL_PLAINTEXT listener (PLAIN, user ``test``/``test-secret``), e.g.
``KAFKA_LOCAL_SASL=1 tools/kafka/kafka-local start`` (port = client port + 2), named by
``KAFKA_SASL_BOOTSTRAP_SERVERS``; without it the module starts such a broker of its own (own
home and ports) and stops it afterwards.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import streamtable as st
from streamtable.runtime import check_connection
from tests.support.positions import seed_topology
from tests.system.test_broker_restart import OwnBroker, _free_port

pytestmark = pytest.mark.integration

SASL_BOOTSTRAP = os.environ.get("KAFKA_SASL_BOOTSTRAP_SERVERS", "").strip()


def sasl(password: str) -> dict[str, str | int | bool]:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "test",
        "sasl.password": password,
    }


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if SASL_BOOTSTRAP:
        yield SASL_BOOTSTRAP
        return
    own = OwnBroker(tmp_path_factory.mktemp("kafka-sasl-home"))
    sasl_port = _free_port()
    own.env.update({"KAFKA_LOCAL_SASL": "1", "KAFKA_LOCAL_SASL_PORT": str(sasl_port)})
    own.start()
    try:
        yield f"127.0.0.1:{sasl_port}"
    finally:
        own.stop()


def test_a_wrong_password_fails_the_start_within_seconds_naming_the_settings(
    bootstrap: str, tmp_path: Path
) -> None:
    config = st.StreamsConfig(
        application_id="auth-wrong",
        bootstrap_servers=bootstrap,
        state_dir=tmp_path,
        kafka=sasl("not-the-password"),
    )
    app = st.StreamsApp(seed_topology("auth-topic"), config)
    started = time.monotonic()
    with pytest.raises(st.ConfigError) as caught:
        app.start()
    assert time.monotonic() - started < 10
    assert caught.value.setting == "kafka sasl.username/sasl.password"
    assert "authentication failed" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    app.close()


def test_the_right_password_connects(bootstrap: str) -> None:
    check_connection({"bootstrap.servers": bootstrap, **sasl("test-secret")}, timeout_s=30)
