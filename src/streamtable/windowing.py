"""Time windows: which windows a record belongs to, and the windowed keys of their results.

As Kafka Streams' ``TimeWindows``, ``TimeWindow`` and ``Windowed``: a window is
``[start_ms, end_ms)`` (end exclusive); tumbling windows follow each other, hopping windows
(``advance_by``) overlap, and each window accepts records until its end plus the grace period
has passed in stream time. :class:`SlidingWindows` are defined by the records' timestamps
instead (their windows' ends are inclusive). :class:`JoinWindows` bound how far apart two
records of a stream-stream join may be.

Example::

    >>> from datetime import timedelta
    >>> windows = TimeWindows.of_size_and_grace(timedelta(minutes=5), timedelta(seconds=30))
    >>> [w.start_ms for w in windows.advance_by(timedelta(minutes=1)).windows_for(150_000)]
    [0, 60000, 120000]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any


def duration_ms(value: timedelta, name: str) -> int:
    """``value`` in whole milliseconds; a ``TypeError`` naming ``name`` for anything but a
    ``timedelta``."""
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a datetime.timedelta, got {type(value).__name__}")
    return value // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A time window ``[start_ms, end_ms)``: ``end_ms`` is exclusive (for
    :class:`SlidingWindows`' windows, ``end_ms = start_ms + time difference`` is inclusive)."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.start_ms < 0:
            raise ValueError(f"a window's start_ms must not be negative (got {self.start_ms})")
        if self.end_ms <= self.start_ms:
            raise ValueError(
                f"a window's end_ms must be after its start_ms (got [{self.start_ms}, "
                f"{self.end_ms}))"
            )


@dataclass(frozen=True, slots=True, order=True)
class SessionWindow(Window):
    """A session ``[start_ms, end_ms]``: both ends inclusive (the timestamps of its first and
    last records), so ``start_ms == end_ms`` for a session of one record, as Kafka Streams'
    ``SessionWindow``."""

    def __post_init__(self) -> None:
        if self.start_ms < 0:
            raise ValueError(f"a session's start_ms must not be negative (got {self.start_ms})")
        if self.end_ms < self.start_ms:
            raise ValueError(
                f"a session's end_ms must not be before its start_ms (got [{self.start_ms}, "
                f"{self.end_ms}])"
            )

    def merged(self, other: Window) -> SessionWindow:
        """The session spanning both."""
        return SessionWindow(min(self.start_ms, other.start_ms), max(self.end_ms, other.end_ms))


@dataclass(frozen=True, slots=True)
class Windowed:
    """The key of a windowed aggregation's result: the record key and its window (a
    :class:`Window`, or a :class:`SessionWindow` for session windows)."""

    key: Any
    window: Window


@dataclass(frozen=True, slots=True)
class TimeWindows:
    """Fixed-size windows aligned to the epoch: tumbling, or hopping with :meth:`advance_by`.

    A record with timestamp ``t`` belongs to every window ``[s, s + size)`` with ``s`` a
    multiple of the advance, ``0 <= s <= t < s + size``. Build with
    :meth:`of_size_with_no_grace` or :meth:`of_size_and_grace`; the fields are milliseconds.
    """

    size_ms: int
    advance_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0:
            raise ValueError(f"window size must be > 0 ms (size: got {self.size_ms} ms)")
        if self.grace_ms < 0:
            raise ValueError(f"grace must not be negative (grace: got {self.grace_ms} ms)")
        if not 0 < self.advance_ms <= self.size_ms:
            raise ValueError(
                "the advance of hopping windows must be > 0 and <= the window size "
                f"{self.size_ms} ms (advance: got {self.advance_ms} ms)"
            )

    @staticmethod
    def of_size_with_no_grace(size: timedelta) -> TimeWindows:
        """Tumbling windows of ``size``; a record is late as soon as its window has ended in
        stream time."""
        size_ms = duration_ms(size, "size")
        return TimeWindows(size_ms, size_ms, 0)

    @staticmethod
    def of_size_and_grace(size: timedelta, grace: timedelta) -> TimeWindows:
        """Tumbling windows of ``size`` that accept out-of-order records for ``grace`` after
        their end (in stream time)."""
        size_ms = duration_ms(size, "size")
        return TimeWindows(size_ms, size_ms, duration_ms(grace, "grace"))

    def advance_by(self, advance: timedelta) -> TimeWindows:
        """Hopping windows: a new window starts every ``advance`` (``0 < advance <= size``)."""
        return TimeWindows(self.size_ms, duration_ms(advance, "advance"), self.grace_ms)

    def window_starts(self, timestamp: int) -> range:
        """The starts of the windows holding ``timestamp``, in ascending order."""
        advance = self.advance_ms
        first = (max(0, timestamp - self.size_ms + advance) // advance) * advance
        return range(first, timestamp + 1, advance)

    def windows_for(self, timestamp: int) -> list[Window]:
        """The windows holding ``timestamp``, earliest first."""
        size = self.size_ms
        return [Window(start, start + size) for start in self.window_starts(timestamp)]

    @property
    def default_retention_ms(self) -> int:
        """How long a window store keeps a window by default: size + grace."""
        return self.size_ms + self.grace_ms


@dataclass(frozen=True, slots=True)
class SlidingWindows:
    """Windows defined by the records themselves, as Kafka Streams' ``SlidingWindows``: every
    window ``[start_ms, start_ms + time_difference_ms]`` (both ends inclusive) that holds a
    distinct set of a key's records, so two records are in a window together when at most
    ``time_difference`` apart. A record at ``t`` creates its left window ``[t - diff, t]`` and,
    when a later record is within ``diff``, its right window ``[t + 1, t + 1 + diff]``; each
    window accepts records until its end plus the grace period has passed in stream time.
    Build with :meth:`of_time_difference_with_no_grace` or
    :meth:`of_time_difference_and_grace`; the fields are milliseconds.

    Example::

        >>> from datetime import timedelta
        >>> diff, grace = timedelta(seconds=10), timedelta(seconds=2)
        >>> w = SlidingWindows.of_time_difference_and_grace(diff, grace)
        >>> (w.time_difference_ms, w.grace_ms, w.default_retention_ms)
        (10000, 2000, 22000)
    """

    time_difference_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        if self.time_difference_ms <= 0:
            # Kafka Streams accepts 0 and then fails on the first record (an empty TimeWindow).
            raise ValueError(
                "the time difference of sliding windows must be > 0 ms "
                f"(time_difference: got {self.time_difference_ms} ms)"
            )
        if self.grace_ms < 0:
            raise ValueError(f"grace must not be negative (grace: got {self.grace_ms} ms)")

    @staticmethod
    def of_time_difference_with_no_grace(time_difference: timedelta) -> SlidingWindows:
        """Windows of records at most ``time_difference`` apart; no grace period."""
        return SlidingWindows(duration_ms(time_difference, "time_difference"), 0)

    @staticmethod
    def of_time_difference_and_grace(
        time_difference: timedelta, grace: timedelta
    ) -> SlidingWindows:
        """Windows of records at most ``time_difference`` apart that accept out-of-order
        records for ``grace`` after their end (in stream time)."""
        return SlidingWindows(
            duration_ms(time_difference, "time_difference"), duration_ms(grace, "grace")
        )

    @property
    def size_ms(self) -> int:
        """The windows' size as their store and windowed keys see it: ``end - start``, the time
        difference."""
        return self.time_difference_ms

    @property
    def default_retention_ms(self) -> int:
        """How long a window store keeps a window by default, and the least allowed: 2 * time
        difference + grace (the aggregation reads windows up to 2 * diff before a record)."""
        return 2 * self.time_difference_ms + self.grace_ms


@dataclass(frozen=True, slots=True)
class JoinWindows:
    """How far apart in time two records of a stream-stream join may be, as Kafka Streams'
    ``JoinWindows``: a record at ``t`` of this stream joins records of the other stream with
    timestamps in ``[t - before, t + after]``; ``grace`` keeps the window open for out-of-order
    records after that (in stream time). Left and outer joins emit a record that found no
    partner only once its window has closed.

    Build with :meth:`of_time_difference_and_grace` or
    :meth:`of_time_difference_without_grace`, then :meth:`before` / :meth:`after` for
    asymmetric windows; the fields are milliseconds. ``before`` or ``after`` may be negative
    (a window wholly after, or before, the record), their sum may not.

    Example::

        >>> from datetime import timedelta
        >>> w = JoinWindows.of_time_difference_and_grace(timedelta(seconds=5), timedelta(seconds=1))
        >>> (w.before_ms, w.after_ms, w.grace_ms, w.size_ms)
        (5000, 5000, 1000, 10000)
    """

    before_ms: int
    after_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        if self.before_ms + self.after_ms < 0:
            raise ValueError(
                "the join window (before + after) must not be negative "
                f"(before: {self.before_ms} ms, after: {self.after_ms} ms)"
            )
        if self.grace_ms < 0:
            raise ValueError(f"grace must not be negative (grace: got {self.grace_ms} ms)")

    @staticmethod
    def of_time_difference_and_grace(time_difference: timedelta, grace: timedelta) -> JoinWindows:
        """Records join when at most ``time_difference`` apart; out-of-order records are
        accepted until ``grace`` after their window ends."""
        diff = duration_ms(time_difference, "time_difference")
        return JoinWindows(diff, diff, duration_ms(grace, "grace"))

    @staticmethod
    def of_time_difference_without_grace(time_difference: timedelta) -> JoinWindows:
        """Records join when at most ``time_difference`` apart; no grace period."""
        diff = duration_ms(time_difference, "time_difference")
        return JoinWindows(diff, diff, 0)

    def before(self, time_difference: timedelta) -> JoinWindows:
        """These windows with ``before``: how much earlier the other record may be."""
        return JoinWindows(
            duration_ms(time_difference, "time_difference"), self.after_ms, self.grace_ms
        )

    def after(self, time_difference: timedelta) -> JoinWindows:
        """These windows with ``after``: how much later the other record may be."""
        return JoinWindows(
            self.before_ms, duration_ms(time_difference, "time_difference"), self.grace_ms
        )

    @property
    def size_ms(self) -> int:
        """``before + after``, as Kafka Streams' ``JoinWindows.size()``."""
        return self.before_ms + self.after_ms

    @property
    def retention_ms(self) -> int:
        """How long the join's window stores keep a record: ``size + grace``, as Kafka
        Streams."""
        return self.size_ms + self.grace_ms


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """Sessions of activity per key, as Kafka Streams' ``SessionWindows``: a record joins (and
    merges) every session of its key that ends at most ``gap`` before it or starts at most
    ``gap`` after it; a session closes when its end plus ``gap`` plus the grace period is
    behind stream time, and a record that would only land in closed sessions is dropped as
    late. Build with :meth:`of_inactivity_gap_with_no_grace` or
    :meth:`of_inactivity_gap_and_grace`; the fields are milliseconds.

    Example::

        >>> from datetime import timedelta
        >>> gap, grace = timedelta(minutes=5), timedelta(seconds=30)
        >>> w = SessionWindows.of_inactivity_gap_and_grace(gap, grace)
        >>> (w.gap_ms, w.grace_ms, w.default_retention_ms)
        (300000, 30000, 330000)
    """

    gap_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        if self.gap_ms <= 0:
            raise ValueError(f"the inactivity gap must be > 0 ms (gap: got {self.gap_ms} ms)")
        if self.grace_ms < 0:
            raise ValueError(f"grace must not be negative (grace: got {self.grace_ms} ms)")

    @staticmethod
    def of_inactivity_gap_with_no_grace(inactivity_gap: timedelta) -> SessionWindows:
        """Sessions that end after ``inactivity_gap`` without records; no grace period."""
        return SessionWindows(duration_ms(inactivity_gap, "inactivity_gap"), 0)

    @staticmethod
    def of_inactivity_gap_and_grace(
        inactivity_gap: timedelta, after_window_end: timedelta
    ) -> SessionWindows:
        """Sessions that end after ``inactivity_gap`` without records and accept out-of-order
        records for ``after_window_end`` more (in stream time)."""
        return SessionWindows(
            duration_ms(inactivity_gap, "inactivity_gap"),
            duration_ms(after_window_end, "after_window_end"),
        )

    @property
    def default_retention_ms(self) -> int:
        """How long a session store keeps a session by default: gap + grace."""
        return self.gap_ms + self.grace_ms
