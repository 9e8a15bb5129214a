"""``ServiceSettings``: every setting of the us-shareholders service, read from ``USH_*``.

Immutable and validated when loaded. A bad value stops startup with a :class:`SettingsError`
naming the environment variable (``USH_HTTP_PORT: must be an integer between 1 and 65535``).
Each setting is documented once, next to its default; its variable is ``USH_`` + its upper-cased
name. Values passed to :func:`load_settings` (the CLI's options) win over the environment.

Kafka client settings (SASL, SSL...) pass through to librdkafka, either as one JSON object in
``USH_KAFKA`` (``{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}``) or one variable
per property, ``USH_KAFKA__SECURITY_PROTOCOL=SASL_SSL`` (after ``USH_KAFKA__`` the name is
lower-cased and ``_`` becomes ``.``); single variables win over the JSON object (read by
:mod:`us_shareholders.kafka_settings`).

Example::

    settings = load_settings(http_port=8081)
    app = StreamsApp(topology, StreamsConfig(**settings.streams_config_kwargs()))
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _PydanticSettingsError

from streamtable.errors import ConfigError
from streamtable.runtime import kafka_logger
from us_shareholders.kafka_settings import KafkaPropertiesSource, kafka_properties
from us_shareholders.mail import parse_mailbox
from us_shareholders.schedule import DigestSchedule, parse_schedule
from us_shareholders.venues import DEFAULT_US_EXCHANGES, parse_exchanges

KAFKA_LOGGER = "us_shareholders.kafka"
"""The logger of librdkafka's own messages from the service's clients."""

__all__ = ["ENV_PREFIX", "ServiceSettings", "SettingsError", "load_settings"]

ENV_PREFIX = "USH_"
_KAFKA_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_HOST_PORT = re.compile(r"^[^\s:,]+:\d{1,5}$")


class SettingsError(ConfigError):
    """A service setting has a bad value. ``variable`` is its environment variable. No retry."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(variable, message)
        self.variable = variable
        self.message = message


def _parse_schedule_value(value: object) -> DigestSchedule:
    if isinstance(value, DigestSchedule):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string like 'MON 07:00 America/New_York'")
    return parse_schedule(value)


Schedule = Annotated[
    DigestSchedule,
    NoDecode,
    PlainValidator(_parse_schedule_value),
    PlainSerializer(str, return_type=str),
]


class ServiceSettings(BaseSettings):
    """The service's settings; see each field's docstring for meaning and default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
        use_attribute_docstrings=True,  # the CLI's --help shows them
    )

    # --- Kafka and the streams runtime ---------------------------------------------------------

    bootstrap_servers: str = "127.0.0.1:9092"
    """Kafka brokers, ``host:port[,host:port...]``."""

    application_id: str = "us-shareholders"
    """Consumer group id and prefix of the internal topics (``<id>-digests``, ``<id>-dlq``)."""

    state_dir: Path = Path(".cache/us-shareholders/state")
    """Where local state (RocksDB stores, checkpoints) lives."""

    processing_guarantee: Literal["at_least_once", "exactly_once_v2"] = "exactly_once_v2"
    """``exactly_once_v2`` (one transaction per commit; needed for one digest per client and
    week across crashes) or ``at_least_once``."""

    num_standby_replicas: int = 0
    """Warm copies of each task's state on other instances."""

    commit_interval_ms: int | None = None
    """How often to commit; unset: the runtime's default (100 ms under exactly-once)."""

    kafka: Annotated[dict[str, str | int | bool], NoDecode] = Field(
        default_factory=dict, repr=False
    )
    """librdkafka properties for every client, as a JSON object (hidden from repr: secrets)."""

    positions_topic: str = "share-holders"
    """Compacted topic of open positions (key: position id)."""

    clients_topic: str = "clients"
    """Compacted topic of clients (key: client id; ``{"name", "email", "unsubscribed"}``)."""

    instruments_topic: str | None = None
    """Optional compacted topic ticker -> ``{"name"}`` for company names; empty: none."""

    us_exchanges: Annotated[frozenset[str], NoDecode] = DEFAULT_US_EXCHANGES
    """Comma-separated venues counted as US (case-insensitive); default: the main US venues
    and their MIC codes (see ``us_shareholders.venues``)."""

    # --- HTTP ----------------------------------------------------------------------------------

    http_host: str = "127.0.0.1"
    """Address the HTTP API binds to."""

    http_port: int = 8080
    """Port of the HTTP API."""

    advertised_host: str | None = None
    """Host other instances use to reach this one's API; unset: ``http_host``. Set it when
    binding to ``0.0.0.0``."""

    # --- The digest and its delivery -----------------------------------------------------------

    digest_schedule: Schedule = "MON 07:00 America/New_York"  # type: ignore[assignment]
    """``DAY HH:MM Zone``: when the weekly digest is due, in that IANA zone (DST-correct)."""

    smtp_host: str = "127.0.0.1"
    """SMTP server the digests are sent through."""

    smtp_port: int = 25
    """Port of the SMTP server (587 is usual for ``starttls``, 465 for ``ssl``)."""

    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    """``none`` (plain), ``starttls`` (upgrade after connecting) or ``ssl`` (implicit TLS)."""

    smtp_username: str | None = None
    """SMTP AUTH user; unset: no authentication."""

    smtp_password: SecretStr | None = None
    """SMTP AUTH password."""

    smtp_timeout_s: float = 30.0
    """Timeout of each SMTP network operation, in seconds."""

    mail_from: str = "us-shareholders@localhost"
    """``From`` of the digests: ``addr@domain`` or ``Name <addr@domain>``. Its domain is the
    right-hand side of each ``Message-ID``."""

    list_unsubscribe: str | None = None
    """``List-Unsubscribe`` target (an ``https:``/``http:`` URL or ``mailto:``); unset: none."""

    templates_dir: Path | None = None
    """Directory whose ``digest.txt.j2``/``digest.html.j2``/``subject.txt.j2`` override the
    built-in templates (a file missing there falls back to the built-in one)."""

    log_personal_data: bool = False
    """Whether logs may contain client names and email addresses (off: only client ids)."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "settings"
            raise SettingsError(_variable(field), _message(error)) from None
        except _PydanticSettingsError as exc:
            raise SettingsError(f"{ENV_PREFIX}*", str(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env or secrets files: the environment (and the CLI) is the whole configuration.
        return init_settings, KafkaPropertiesSource(settings_cls), env_settings

    # --- validators ----------------------------------------------------------------------------

    @field_validator("http_port", "smtp_port", mode="before")
    @classmethod
    def _port(cls, value: object) -> int:
        port = _as_int(value)
        if port is None or not 1 <= port <= 65535:
            raise ValueError("must be an integer between 1 and 65535")
        return port

    @field_validator("num_standby_replicas", "commit_interval_ms", mode="before")
    @classmethod
    def _non_negative(cls, value: object) -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        number = _as_int(value)
        if number is None or number < 0:
            raise ValueError("must be an integer >= 0")
        return number

    @field_validator("smtp_timeout_s", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> float:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError("must be a number of seconds > 0") from None
        if not seconds > 0 or seconds == float("inf"):
            raise ValueError("must be a number of seconds > 0")
        return seconds

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",")]
        if not all(_HOST_PORT.match(s) for s in servers):
            raise ValueError("must be host:port[,host:port...], e.g. '127.0.0.1:9092'")
        return ",".join(servers)

    @field_validator("application_id", "positions_topic", "clients_topic")
    @classmethod
    def _kafka_name(cls, value: str) -> str:
        if not _KAFKA_NAME.match(value):
            raise ValueError("must be 1-249 characters of [a-zA-Z0-9._-]")
        return value

    @field_validator("instruments_topic", mode="before")
    @classmethod
    def _optional_topic(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not _KAFKA_NAME.match(value.strip()):
            raise ValueError("must be empty or 1-249 characters of [a-zA-Z0-9._-]")
        return value.strip()

    @field_validator("http_host", "smtp_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value.strip()):
            raise ValueError("must be a host name or address")
        return value.strip()

    @field_validator("advertised_host", "smtp_username", "list_unsubscribe", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("smtp_password", mode="before")
    @classmethod
    def _blank_password(cls, value: object) -> object:
        return None if isinstance(value, str) and not value else value

    @field_validator("us_exchanges", mode="before")
    @classmethod
    def _exchanges(cls, value: object) -> frozenset[str]:
        if isinstance(value, str):
            venues = parse_exchanges(value)
        elif isinstance(value, list | tuple | set | frozenset):
            venues = parse_exchanges(",".join(str(v) for v in value))
        else:
            raise ValueError("must be a comma-separated list of exchanges")
        if not venues:
            raise ValueError("must name at least one exchange, e.g. 'NASDAQ,NYSE'")
        return venues

    @field_validator("kafka", mode="before")
    @classmethod
    def _kafka(cls, value: object) -> object:
        return kafka_properties(value)

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        parse_mailbox(value)
        return value.strip()

    @field_validator("list_unsubscribe")
    @classmethod
    def _unsubscribe(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if any(c.isspace() or c in "<>," for c in value) or not re.match(
            r"^(https?://[^/]+|mailto:[^@]+@.+)", value, re.IGNORECASE
        ):
            raise ValueError("must be an https:// or http:// URL or a mailto: address")
        return value

    @field_validator("templates_dir")
    @classmethod
    def _templates(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a directory")
        return value

    # --- derived values ------------------------------------------------------------------------

    @property
    def mail_from_address(self) -> Address:
        """``mail_from`` as an address (display name and ``user@domain``)."""
        return parse_mailbox(self.mail_from)

    @property
    def application_server(self) -> str:
        """``host:port`` at which other instances reach this one."""
        return f"{self.advertised_host or self.http_host}:{self.http_port}"

    def client_config(self) -> dict[str, Any]:
        """Settings of the service's own Kafka clients (the stream processing's come from
        ``streamtable.StreamsConfig``): librdkafka's messages go to the ``us_shareholders.kafka``
        logger, served when the client is polled, never straight to standard error."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "logger": kafka_logger(KAFKA_LOGGER),
            **self.kafka,
        }

    def streams_config_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``streamtable.StreamsConfig``."""
        kwargs: dict[str, Any] = {
            "application_id": self.application_id,
            "bootstrap_servers": self.bootstrap_servers,
            "state_dir": self.state_dir,
            "processing_guarantee": self.processing_guarantee,
            "num_standby_replicas": self.num_standby_replicas,
            "application_server": self.application_server,
            "kafka": dict(self.kafka),
        }
        if self.commit_interval_ms is not None:
            kwargs["commit_interval_ms"] = self.commit_interval_ms
        return kwargs


def load_settings(**overrides: Any) -> ServiceSettings:
    """The settings from the environment, with ``overrides`` (non-None ones) on top.

    Raises :class:`SettingsError` naming the variable of the first bad value.
    """
    return ServiceSettings(**{k: v for k, v in overrides.items() if v is not None})


def _variable(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _message(error: Any) -> str:
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):
        return str(cause)
    if error["type"] == "extra_forbidden":
        return "is not a setting"
    return str(error["msg"])


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None
