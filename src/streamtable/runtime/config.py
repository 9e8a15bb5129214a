"""``StreamsConfig``: the settings of a :class:`~streamtable.runtime.app.StreamsApp`.

Immutable and validated when built; a bad value raises :class:`~streamtable.errors.ConfigError`
naming the setting. Each setting is documented once, next to its default.

Example::

    config = StreamsConfig(application_id="us-shareholders", bootstrap_servers="kafka:9092",
                           processing_guarantee="exactly_once_v2")
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamtable.errors import ConfigError
from streamtable.runtime._logs import kafka_logger

_KAFKA_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
_HOST_PORT = re.compile(r"^[^\s:]+:\d{1,5}$")
_MIB = 1024 * 1024

ProcessingGuarantee = Literal["at_least_once", "exactly_once_v2"]

KAFKA_LOGGER = "streamtable.kafka"
"""The logger that receives the Kafka client library's (librdkafka's) own messages."""


def _default_state_dir() -> Path:
    return Path(tempfile.gettempdir()) / "streamtable"


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    application_id: str
    """Consumer group id, prefix of internal topics and of the transactional id. Required."""

    bootstrap_servers: str
    """Kafka brokers, ``host:port[,host:port]``. Required."""

    state_dir: Path = Field(default_factory=_default_state_dir)
    """Where local state lives: ``<state_dir>/<application_id>/<task id>/<store>``."""

    processing_guarantee: ProcessingGuarantee = "at_least_once"
    """``at_least_once`` or ``exactly_once_v2`` (one transaction per commit)."""

    commit_interval_ms: int | None = None
    """How often offsets are committed; None: 30000 under at_least_once, 100 under EOS."""

    cache_max_bytes: int = 10 * 1024 * 1024
    """Bytes of record cache for the whole instance, shared by all its tasks' stores (dedupes
    per key between commits, as Kafka Streams' ``statestore.cache.max.bytes``); 0 disables it."""

    python_gc: Literal["tuned", "default"] = "tuned"
    """``tuned``: while the app runs, the objects that existed when it started are frozen out
    of Python's cyclic garbage collector (``gc.freeze()``) and the young generation is
    collected every 100,000 allocations instead of 700, so that the collector does not rescan
    the process at the pace of the records (it took a sixth of the CPU time of the windowed
    benchmark, W6). Process-wide; the last tuned app to stop restores the settings it found.
    ``default``: the interpreter's settings are left alone."""

    rocksdb_memory_bytes: int | None = 128 * 1024 * 1024
    """Memory for all RocksDB stores of this instance together (one shared block cache that
    also holds the memtables, index and filter blocks), however many tasks and stores it runs;
    None: each store takes RocksDB's own defaults, so memory grows with the number of stores."""

    num_standby_replicas: int = 0
    """Warm copies of each task's state kept on other instances (standby tasks), promoted
    with little to restore when the active one goes away."""

    application_server: str | None = None
    """``host:port`` where this instance serves interactive queries, or None."""

    store_kind: Literal["rocksdb", "memory"] = "rocksdb"
    """Engine of stores whose topology does not choose one."""

    replication_factor: int = 1
    """Replication factor of the internal topics the runtime creates."""

    on_error: Literal["dlq", "fail"] = "dlq"
    """A record that cannot be processed: ``dlq`` sends it to ``<app>-dlq`` and continues;
    ``fail`` stops the app in state ERROR."""

    session_timeout_ms: int = 10000
    """Consumer group session timeout: how fast a dead instance's partitions move."""

    task_timeout_ms: int = 300000
    """How long the runtime asks the broker again while it is unreachable, or a partition
    leader or group coordinator is moving (a broker restart), before it gives up: a start then
    raises, a running app goes to ERROR. As Kafka Streams' ``task.timeout.ms`` (5 minutes)."""

    kafka: dict[str, str | int | bool] = Field(default_factory=dict)
    """Passed to librdkafka for every client (SASL/SSL settings and the like)."""

    @model_validator(mode="after")
    def _check(self) -> _Settings:
        if not self.application_id or not _KAFKA_NAME.match(self.application_id):
            raise _Bad("application_id", "must be non-empty and use only [a-zA-Z0-9._-]")
        if not self.bootstrap_servers.strip():
            raise _Bad("bootstrap_servers", "must not be empty")
        if self.commit_interval_ms is not None and self.commit_interval_ms < 0:
            raise _Bad("commit_interval_ms", "must be >= 0")
        if self.cache_max_bytes < 0:
            raise _Bad("cache_max_bytes", "must be >= 0")
        if self.rocksdb_memory_bytes is not None and self.rocksdb_memory_bytes < _MIB:
            raise _Bad("rocksdb_memory_bytes", "must be >= 1048576 (1 MiB), or None")
        if self.num_standby_replicas < 0:
            raise _Bad("num_standby_replicas", "must be >= 0")
        if self.application_server is not None and not _HOST_PORT.match(self.application_server):
            raise _Bad("application_server", "must be 'host:port'")
        if self.replication_factor < 1:
            raise _Bad("replication_factor", "must be >= 1")
        if self.session_timeout_ms < 1000:
            raise _Bad("session_timeout_ms", "must be >= 1000")
        if self.task_timeout_ms < 0:
            raise _Bad("task_timeout_ms", "must be >= 0")
        return self


class _Bad(ConfigError, ValueError):
    """A bad setting found by the model's validator: a ValueError, so that pydantic carries it
    to ``StreamsConfig.__init__``, which raises it as a plain :class:`ConfigError`."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(setting, message)
        self.message = message


class StreamsConfig(_Settings):
    """The runtime's settings; see each field's docstring for meaning and default."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = exc.errors()[0]
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, _Bad):
                raise ConfigError(cause.setting, cause.message) from None
            setting = ".".join(str(part) for part in error["loc"]) or "config"
            raise ConfigError(setting, error["msg"]) from None

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once_v2"

    @property
    def task_timeout_s(self) -> float:
        return self.task_timeout_ms / 1000

    @property
    def effective_commit_interval_ms(self) -> int:
        if self.commit_interval_ms is not None:
            return self.commit_interval_ms
        return 100 if self.exactly_once else 30000

    def client_config(self) -> dict[str, Any]:
        """Settings shared by every Kafka client of the app.

        librdkafka's own messages go to the ``streamtable.kafka`` logger (``logger``: served
        when the client is polled; repeats held back), not straight to standard error."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "logger": kafka_logger(KAFKA_LOGGER),
            **self.kafka,
        }
