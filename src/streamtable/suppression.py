"""When a windowed aggregation or a table emits: ``EmitStrategy``, ``Suppressed``, ``BufferConfig``.

As Kafka Streams' classes of those names (KIP-328, KIP-825), in snake_case, durations as
``datetime.timedelta``:

- ``EmitStrategy.on_window_update()`` (the default) emits every update of a window;
  ``EmitStrategy.on_window_close()`` emits each window once, when it closes
  (``TimeWindowedKStream.emit_strategy``).
- ``Suppressed.until_window_closes(BufferConfig.unbounded())`` holds a windowed table's updates
  back until the window closes (``KTable.suppress``); ``Suppressed.until_time_limit(limit,
  buffer_config)`` holds any table's updates of a key back for ``limit`` of stream time after the
  first one.
- ``BufferConfig`` bounds the suppression buffer (records, bytes) and says what happens when it
  is full: emit the oldest entries early, or stop (a strict buffer, the only kind
  ``until_window_closes`` takes, as in Kafka Streams).

Example::

    >>> from datetime import timedelta
    >>> Suppressed.until_window_closes(BufferConfig.unbounded()).close_idle_after_ms is None
    True
    >>> BufferConfig.max_records(1000).emit_early_when_full().is_strict
    False
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from streamtable.windowing import duration_ms

FullStrategy = Literal["emit_early", "shut_down"]


@dataclass(frozen=True, slots=True)
class EmitStrategy:
    """When a time-windowed aggregation emits: on every update, or once when a window closes."""

    on_close: bool

    @staticmethod
    def on_window_update() -> EmitStrategy:
        """Every update of a window is emitted (through the record cache); the default."""
        return EmitStrategy(False)

    @staticmethod
    def on_window_close() -> EmitStrategy:
        """Each window with data is emitted once, when stream time passes its end + grace."""
        return EmitStrategy(True)


def _limit(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative (got {value})")
    return value


@dataclass(frozen=True, slots=True)
class BufferConfig:
    """The bounds of a suppression buffer and what to do when it is full.

    ``record_limit`` / ``byte_limit``: None is no bound. ``when_full``: ``"emit_early"`` emits
    the oldest entries (earliest buffer time, then key bytes) until it fits again, ahead of
    their time; ``"shut_down"`` fails the record that would overflow it (a strict buffer: no
    result is ever emitted early). ``logged``: whether the buffer has a changelog (it is
    restored from it after a restart or a move). The bytes counted per entry are an estimate:
    8 (buffer time) + 8 (timestamp) + key bytes + the serialized values it holds.
    """

    record_limit: int | None = None
    byte_limit: int | None = None
    when_full: FullStrategy = "shut_down"
    logged: bool = True

    @staticmethod
    def unbounded() -> BufferConfig:
        """No bound (a strict buffer): it holds as much as memory allows."""
        return BufferConfig()

    @staticmethod
    def max_records(records: int) -> BufferConfig:
        """At most ``records`` keys; when full, emit the oldest early."""
        return BufferConfig(_limit(records, "max_records"), None, "emit_early")

    @staticmethod
    def max_bytes(byte_limit: int) -> BufferConfig:
        """At most ``byte_limit`` bytes (estimated); when full, emit the oldest early."""
        return BufferConfig(None, _limit(byte_limit, "max_bytes"), "emit_early")

    def with_max_records(self, records: int) -> BufferConfig:
        return dataclasses.replace(self, record_limit=_limit(records, "max_records"))

    def with_max_bytes(self, byte_limit: int) -> BufferConfig:
        return dataclasses.replace(self, byte_limit=_limit(byte_limit, "max_bytes"))

    def with_no_bound(self) -> BufferConfig:
        """No bound, strict (Kafka Streams' ``withNoBound``)."""
        return dataclasses.replace(self, record_limit=None, byte_limit=None, when_full="shut_down")

    def emit_early_when_full(self) -> BufferConfig:
        """When full, emit the oldest entries ahead of their time (not strict)."""
        return dataclasses.replace(self, when_full="emit_early")

    def shut_down_when_full(self) -> BufferConfig:
        """When full, fail rather than emit early (strict): the record that would overflow the
        buffer raises ``ProcessingError`` (see docs/windowing.md for what the app then does)."""
        return dataclasses.replace(self, when_full="shut_down")

    shutdown_when_full = shut_down_when_full
    """The same as :meth:`shut_down_when_full`."""

    def with_logging_disabled(self) -> BufferConfig:
        """No changelog: the buffer's contents are lost on a restart or a move."""
        return dataclasses.replace(self, logged=False)

    @property
    def is_strict(self) -> bool:
        """Whether it never emits early (Kafka Streams' ``StrictBufferConfig``)."""
        return self.when_full == "shut_down"


@dataclass(frozen=True, slots=True)
class Suppressed:
    """How ``KTable.suppress`` holds updates back; build with :meth:`until_window_closes` or
    :meth:`until_time_limit`. Fields in milliseconds; ``time_limit_ms`` is None for
    ``until_window_closes`` (the grace period of the windows decides)."""

    time_limit_ms: int | None
    buffer_config: BufferConfig
    close_idle_after_ms: int | None = None
    name: str | None = None

    @staticmethod
    def until_window_closes(
        buffer_config: BufferConfig, *, close_idle_after: timedelta | None = None
    ) -> Suppressed:
        """One final result per window, when stream time passes its end + grace.

        ``buffer_config`` must be strict (``BufferConfig.unbounded()``, or a bound with
        ``shut_down_when_full()``): a final result is never emitted early.

        ``close_idle_after`` (beyond Kafka Streams): when the task's stream time has not moved
        for that long on the wall clock, the buffered windows whose end + grace is past on the
        wall clock are closed and emitted; a record arriving later for such a window is
        dropped as late. See docs/windowing.md.
        """
        if not isinstance(buffer_config, BufferConfig):
            raise TypeError(f"buffer_config must be a BufferConfig, got {type(buffer_config)}")
        if not buffer_config.is_strict:
            raise ValueError(
                "until_window_closes takes a strict buffer config (BufferConfig.unbounded(), or "
                "a bound with .shut_down_when_full()): final results are never emitted early; "
                "got one that emits early when full"
            )
        idle = None
        if close_idle_after is not None:
            idle = duration_ms(close_idle_after, "close_idle_after")
            if idle <= 0:
                raise ValueError(f"close_idle_after must be > 0 (got {close_idle_after})")
        return Suppressed(None, buffer_config, idle)

    @staticmethod
    def until_time_limit(
        time_to_wait_for_more_events: timedelta, buffer_config: BufferConfig
    ) -> Suppressed:
        """Emit a key's latest value once ``time_to_wait_for_more_events`` of stream time has
        passed since its first update held back (updates in between replace it)."""
        limit = duration_ms(time_to_wait_for_more_events, "time_to_wait_for_more_events")
        if limit < 0:
            raise ValueError(
                f"time_to_wait_for_more_events must not be negative (got "
                f"{time_to_wait_for_more_events})"
            )
        if not isinstance(buffer_config, BufferConfig):
            raise TypeError(f"buffer_config must be a BufferConfig, got {type(buffer_config)}")
        return Suppressed(limit, buffer_config)

    def with_name(self, name: str) -> Suppressed:
        """Name the operator; its buffer store is then ``<name>-store``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a suppression's name must be a non-empty string (got {name!r})")
        return dataclasses.replace(self, name=name)

    @property
    def until_window_close(self) -> bool:
        return self.time_limit_ms is None
