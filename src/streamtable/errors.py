"""The exceptions streamtable raises, under one root.

Hierarchy::

    StreamTableError                  root; never raised itself
    ├── TopologyError                 a topology cannot be built or run as described (no retry)
    │   └── CoPartitioningError       joined topics have different partition counts (no retry)
    ├── ConfigError                   a setting has a bad value; names the setting (no retry)
    ├── SerializationError            bytes could not be turned into a value or back (no retry
    │                                 for the same record: it goes to the dead-letter topic)
    ├── ProcessingError               user code raised while processing a record (no retry for
    │                                 the same record)
    ├── StoreError                    a state store cannot serve a request
    │   ├── StoreNotReady             the store is restoring, rebalancing or not yet assigned
    │   │                             here: RETRY after a short wait
    │   ├── StoreNotFound             no store of that name in the topology (no retry)
    │   └── StateDirLocked            another process owns the state directory (no retry)
    ├── TaskMigrated                  a task moved to another instance mid-operation (retry after
    │                                 the rebalance settles)
    └── KafkaError                    the Kafka client reported a fatal error (no retry)

Exceptions about a store or a setting name it (``StoreNotReady.store``, ``ConfigError.setting``).
Messages of streamtable's own exceptions never quote a record's key or value (only names of
fields, types, topics, partitions, offsets), so that they can be logged; :func:`loggable`
describes any exception that way. An application's exception under this root whose message may
quote data says so with ``message_is_loggable = False``; :func:`loggable` then gives only its
type and place, as for a foreign exception.
"""

from __future__ import annotations

import traceback

LOGGABLE_MAX_CHARS = 300
"""Longest reason :func:`loggable` returns."""


def loggable(exc: BaseException, limit: int = LOGGABLE_MAX_CHARS) -> str:
    """A short description of ``exc`` that is safe to log: no record data.

    A :class:`StreamTableError` (whose message, by contract, names no key or value) gives its
    type and message; any other exception - user code, a user's serde, a library - gives only
    its type and the place it was raised (``file:line in function``), since its message may
    quote the value it choked on; so does a StreamTableError with ``message_is_loggable``
    False. Bounded to ``limit`` characters.
    """
    kind = type(exc).__name__
    if isinstance(exc, StreamTableError) and exc.message_is_loggable:
        text = f"{kind}: {exc}"
    else:
        frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
        if frames:
            last = frames[-1]
            where = "/".join(last.filename.replace("\\", "/").split("/")[-2:])
            text = f"{kind} raised at {where}:{last.lineno} in {last.name}"
        else:
            text = kind
    text = " ".join(text.split())  # one line: a message may hold newlines
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded_utf8(text: str, max_bytes: int) -> bytes:
    """``text`` as UTF-8, cut to at most ``max_bytes`` bytes on a character boundary."""
    data = text.encode(errors="replace")
    if len(data) <= max_bytes:
        return data
    return data[: max_bytes - 3].decode(errors="ignore").encode() + b"..."


class StreamTableError(Exception):
    """Root of every exception streamtable raises."""

    retriable: bool = False
    message_is_loggable: bool = True
    """False for a subclass whose message may quote record data (see :func:`loggable`)."""


class TopologyError(StreamTableError):
    """The topology is invalid: duplicate names, unknown stores, unsupported shapes."""


class CoPartitioningError(TopologyError):
    """Topics that must be co-partitioned (joins) have different partition counts."""

    def __init__(self, topics: dict[str, int]) -> None:
        listing = ", ".join(f"{t}={n}" for t, n in sorted(topics.items()))
        super().__init__(f"topics must have the same number of partitions to be joined: {listing}")
        self.topics = dict(topics)


class ConfigError(StreamTableError):
    """A configuration value is invalid. ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class SerializationError(StreamTableError):
    """A key or value could not be (de)serialized with the configured serde.

    The message says what is wrong (field names, expected and found types, positions), never
    the data itself: it is logged. A serde of your own should keep to that too."""


class ProcessingError(StreamTableError):
    """User code (a predicate, mapper, joiner, reducer...) raised while processing a record."""


class StoreError(StreamTableError):
    """A state store cannot serve the request."""


class StoreNotReady(StoreError):
    """The store exists but is restoring, rebalancing or not hosted here yet. Retry."""

    retriable = True

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"store {store!r} is not ready: {reason}")
        self.store = store
        self.reason = reason


class StoreNotFound(StoreError):
    """No store of that name exists in the topology."""

    def __init__(self, store: str, known: list[str] | None = None) -> None:
        hint = f" (known stores: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"no store named {store!r}{hint}")
        self.store = store


class StateDirLocked(StoreError):
    """Another process holds the lock on this application's state directory."""


class TaskMigrated(StreamTableError):
    """The task moved to another instance while an operation was under way. Retry later."""

    retriable = True


class KafkaError(StreamTableError):
    """A fatal error reported by the Kafka client."""
