"""Service settings: environment variables, defaults, and errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import streamtable as st
from streamtable.errors import ConfigError
from us_shareholders.config import ServiceSettings, SettingsError, load_settings
from us_shareholders.schedule import parse_schedule
from us_shareholders.venues import DEFAULT_US_EXCHANGES

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    settings = load_settings()
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.application_id == "us-shareholders"
    assert settings.state_dir == Path(".cache/us-shareholders/state")
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert (settings.positions_topic, settings.clients_topic) == ("share-holders", "clients")
    assert settings.instruments_topic is None
    assert settings.us_exchanges == DEFAULT_US_EXCHANGES
    assert settings.digest_schedule == parse_schedule("MON 07:00 America/New_York")
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (
        "127.0.0.1",
        25,
        "none",
    )
    assert settings.smtp_username is None
    assert settings.smtp_password is None
    assert settings.mail_from == "us-shareholders@localhost"
    assert settings.list_unsubscribe is None
    assert settings.processing_guarantee == "exactly_once_v2"
    assert settings.num_standby_replicas == 0
    assert settings.commit_interval_ms is None
    assert settings.kafka == {}
    assert settings.templates_dir is None
    assert settings.log_personal_data is False


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "USH_BOOTSTRAP_SERVERS": "k1:9092, k2:9093",
        "USH_HTTP_PORT": "9001",
        "USH_STATE_DIR": str(tmp_path / "state"),
        "USH_US_EXCHANGES": "nasdaq, NYSE",
        "USH_DIGEST_SCHEDULE": "fri 16:30 Europe/London",
        "USH_INSTRUMENTS_TOPIC": "instruments",
        "USH_SMTP_SECURITY": "starttls",
        "USH_SMTP_PORT": "587",
        "USH_SMTP_USERNAME": "digest",
        "USH_SMTP_PASSWORD": "s3cret",
        "USH_SMTP_TIMEOUT_S": "2.5",
        "USH_MAIL_FROM": "US Holdings <digest@bank.example>",
        "USH_LIST_UNSUBSCRIBE": "https://bank.example/unsubscribe",
        "USH_PROCESSING_GUARANTEE": "at_least_once",
        "USH_COMMIT_INTERVAL_MS": "250",
        "USH_TEMPLATES_DIR": str(tmp_path),
        "USH_LOG_PERSONAL_DATA": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.bootstrap_servers == "k1:9092,k2:9093"
    assert settings.http_port == 9001
    assert settings.state_dir == tmp_path / "state"
    assert settings.us_exchanges == frozenset({"NASDAQ", "NYSE"})
    assert str(settings.digest_schedule) == "FRI 16:30 Europe/London"
    assert settings.instruments_topic == "instruments"
    assert (settings.smtp_security, settings.smtp_port) == ("starttls", 587)
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.smtp_timeout_s == 2.5
    assert settings.mail_from_address.addr_spec == "digest@bank.example"
    assert settings.mail_from_address.display_name == "US Holdings"
    assert settings.list_unsubscribe == "https://bank.example/unsubscribe"
    assert settings.processing_guarantee == "at_least_once"
    assert settings.commit_interval_ms == 250
    assert settings.templates_dir == tmp_path
    assert settings.log_personal_data is True


def test_overrides_win_over_the_environment_and_none_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USH_HTTP_PORT", "9001")
    assert load_settings(http_port=9002).http_port == 9002
    assert load_settings(http_port=None).http_port == 9001


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.http_port = 1


def test_kafka_passthrough_from_json_and_single_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "USH_KAFKA",
        '{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.password": "pw"}',
    )
    monkeypatch.setenv("USH_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("USH_KAFKA__SSL_CA_LOCATION", "/etc/ca.pem")
    settings = load_settings()
    assert settings.kafka == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.password": "pw",
        "ssl.ca.location": "/etc/ca.pem",
    }
    assert "pw" not in repr(settings)


def test_streams_config_kwargs_build_a_streams_config(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path,
        http_port=8088,
        commit_interval_ms=200,
        kafka={"security.protocol": "SSL"},
    )
    kwargs = settings.streams_config_kwargs()
    assert kwargs == {
        "application_id": "us-shareholders",
        "bootstrap_servers": "127.0.0.1:9092",
        "state_dir": tmp_path,
        "processing_guarantee": "exactly_once_v2",
        "num_standby_replicas": 0,
        "application_server": "127.0.0.1:8088",
        "kafka": {"security.protocol": "SSL"},
        "commit_interval_ms": 200,
    }
    config = st.StreamsConfig(**kwargs)
    assert config.exactly_once
    assert config.application_server == "127.0.0.1:8088"
    assert "commit_interval_ms" not in load_settings().streams_config_kwargs()
    advertised = load_settings(http_host="0.0.0.0", advertised_host="node-1.internal")
    assert advertised.streams_config_kwargs()["application_server"] == "node-1.internal:8080"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("USH_HTTP_PORT", "http", "USH_HTTP_PORT: must be an integer between 1 and 65535"),
        ("USH_HTTP_PORT", "70000", "USH_HTTP_PORT: must be an integer between 1 and 65535"),
        ("USH_SMTP_PORT", "0", "USH_SMTP_PORT: must be an integer between 1 and 65535"),
        ("USH_BOOTSTRAP_SERVERS", "kafka", "USH_BOOTSTRAP_SERVERS: must be host:port"),
        ("USH_APPLICATION_ID", "us shareholders", "USH_APPLICATION_ID: must be 1-249"),
        ("USH_POSITIONS_TOPIC", "a/b", "USH_POSITIONS_TOPIC: must be 1-249"),
        ("USH_DIGEST_SCHEDULE", "MON 7 UTC", "USH_DIGEST_SCHEDULE: time '7' must be HH:MM"),
        ("USH_DIGEST_SCHEDULE", "MON 07:00 Nowhere/City", "USH_DIGEST_SCHEDULE: time zone"),
        ("USH_US_EXCHANGES", " , ", "USH_US_EXCHANGES: must name at least one exchange"),
        ("USH_SMTP_SECURITY", "tls", "USH_SMTP_SECURITY: Input should be 'none', 'starttls'"),
        ("USH_SMTP_TIMEOUT_S", "-1", "USH_SMTP_TIMEOUT_S: must be a number of seconds > 0"),
        ("USH_MAIL_FROM", "not an address", "USH_MAIL_FROM: 'not an address' is not an email"),
        ("USH_LIST_UNSUBSCRIBE", "javascript:alert(1)", "USH_LIST_UNSUBSCRIBE: must be an https"),
        ("USH_PROCESSING_GUARANTEE", "exactly_once", "USH_PROCESSING_GUARANTEE: Input should"),
        ("USH_NUM_STANDBY_REPLICAS", "-1", "USH_NUM_STANDBY_REPLICAS: must be an integer >= 0"),
        ("USH_KAFKA", "{not json", "USH_KAFKA: must be a JSON object"),
        ("USH_KAFKA", '{"a": [1]}', "USH_KAFKA: property 'a' must be a string, number"),
        ("USH_TEMPLATES_DIR", "/no/such/dir", "USH_TEMPLATES_DIR: '/no/such/dir' is not a dir"),
        ("USH_LOG_PERSONAL_DATA", "maybe", "USH_LOG_PERSONAL_DATA: Input should be a valid bool"),
    ],
)
def test_a_bad_value_names_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=re.escape(message)) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert isinstance(caught.value, ConfigError)


def test_a_bad_override_names_the_variable_of_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"^USH_HTTP_PORT: must be an integer") as caught:
        load_settings(http_port=-5)
    assert caught.value.setting == "USH_HTTP_PORT"
    with pytest.raises(SettingsError, match="USH_NO_SUCH_SETTING: is not a setting"):
        ServiceSettings(no_such_setting=1)
