"""Callbacks due at intervals: a task's punctuators and an app's wall-clock schedules.

One type for both. A schedule fires at most once per check, then moves to the next slot after
``now``: a late check (a long batch, a paused process) never brings a burst of catch-up calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")


class Schedule(Generic[K]):
    """``callback(now)`` every ``interval`` (of the clock that ``kind`` names) from ``start``."""

    __slots__ = ("callback", "cancelled", "interval", "kind", "next_time")

    def __init__(self, interval: int, kind: K, callback: Callable[[int], None], start: int) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.kind = kind
        self.callback = callback
        self.next_time = start + interval
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Schedules(Generic[K]):
    """A list of :class:`Schedule`; cancelled ones are dropped at the next check."""

    def __init__(self) -> None:
        self._entries: list[Schedule[K]] = []

    def __bool__(self) -> bool:
        return bool(self._entries)

    def add(
        self, interval: int, kind: K, callback: Callable[[int], None], start: int
    ) -> Callable[[], None]:
        """Schedule ``callback``; returns the function that cancels it."""
        entry = Schedule(interval, kind, callback, start)
        self._entries.append(entry)
        return entry.cancel

    def due(self, kind: K, now: int) -> Iterator[Schedule[K]]:
        """The schedules of ``kind`` due at ``now``, each moved to its next slot after ``now``
        as it is handed out (the caller then calls its callback)."""
        if not self._entries:
            return
        self._entries = [e for e in self._entries if not e.cancelled]
        for entry in list(self._entries):
            if entry.kind == kind and not entry.cancelled and now >= entry.next_time:
                entry.next_time += ((now - entry.next_time) // entry.interval + 1) * entry.interval
                yield entry
