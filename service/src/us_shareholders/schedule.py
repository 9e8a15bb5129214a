"""When the weekly digest is due: the schedule, week identity, and the catch-up rule.

A schedule is a day of the week, a wall-clock time and an IANA time zone, written
``"MON 07:00 America/New_York"``. Weeks are ISO weeks *in the schedule's zone* (:class:`WeekId`,
``2026-W48``). Everything here is pure: the current time is always passed in.

Local times that do not exist or exist twice (daylight-saving changes) are resolved
deterministically by :meth:`DigestSchedule.scheduled_at`:

* a time in a spring-forward gap (``SUN 02:30 America/New_York`` on the day clocks jump from
  02:00 to 03:00) is due at the first instant after the gap (03:00 local, the moment the wall
  clock passes 02:30), as cron does;
* a time in a fall-back overlap (``01:30`` happens twice) is due at its first occurrence (the
  daylight-saving one, ``fold=0``).

Example::

    >>> s = parse_schedule("MON 07:00 America/New_York")
    >>> week = WeekId(2026, 27)
    >>> s.scheduled_at(week).isoformat()   # summer: EDT, UTC-4
    '2026-06-29T11:00:00+00:00'
    >>> s.scheduled_at(WeekId(2026, 48)).isoformat()   # winter: EST, UTC-5
    '2026-11-23T12:00:00+00:00'
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "WEEKDAYS",
    "DigestSchedule",
    "WeekId",
    "missed_weeks",
    "parse_schedule",
]

WEEKDAYS: tuple[str, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
"""Day abbreviations, index + 1 = ISO weekday (MON = 1 ... SUN = 7)."""

_FULL_WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_EXAMPLE = "'MON 07:00 America/New_York'"


def _weeks_in_year(year: int) -> int:
    # 28 December is always in the last ISO week of its year.
    return date(year, 12, 28).isocalendar().week


@dataclass(frozen=True, order=True, slots=True)
class WeekId:
    """An ISO week: ``WeekId(2026, 48)``, written ``2026-W48``. Ordered by time."""

    year: int
    week: int

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999:
            raise ValueError(f"ISO year {self.year} out of range 1..9999")
        last = _weeks_in_year(self.year)
        if not 1 <= self.week <= last:
            raise ValueError(f"ISO year {self.year} has weeks 1..{last}, not {self.week}")

    @classmethod
    def parse(cls, text: str) -> WeekId:
        """Parse ``"2026-W48"``; raises ValueError otherwise."""
        match = _WEEK_RE.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"week {text!r} is not of the form YYYY-Www, e.g. '2026-W48'")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of_date(cls, day: date) -> WeekId:
        """The ISO week containing ``day``."""
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    def day(self, weekday: int) -> date:
        """The date of ``weekday`` (ISO: 1 = Monday ... 7 = Sunday) in this week."""
        return date.fromisocalendar(self.year, self.week, weekday)

    @property
    def monday(self) -> date:
        return self.day(1)

    @property
    def sunday(self) -> date:
        return self.day(7)

    def previous(self) -> WeekId:
        """The week before this one (across year boundaries)."""
        return WeekId.of_date(self.monday - timedelta(days=7))

    def next(self) -> WeekId:
        """The week after this one (across year boundaries)."""
        return WeekId.of_date(self.monday + timedelta(days=7))

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"


def missed_weeks(last_done: WeekId | None, current: WeekId) -> list[WeekId]:
    """The weeks strictly between ``last_done`` and ``current``: skipped, to be logged.

    Empty when there is no history, or when ``last_done`` is ``current`` or its predecessor.
    """
    if last_done is None:
        return []
    weeks = []
    week = last_done.next()
    while week < current:
        weeks.append(week)
        week = week.next()
    return weeks


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """Weekly at ``weekday`` (ISO: 1 = Monday) and wall-clock ``time`` in ``zone``."""

    weekday: int
    time: dt.time
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not 1 <= self.weekday <= 7:
            raise ValueError(f"weekday must be 1 (Monday) .. 7 (Sunday), not {self.weekday}")
        if self.time.tzinfo is not None:
            raise ValueError("time must be a naive wall-clock time; the zone says where")

    def __str__(self) -> str:
        return f"{WEEKDAYS[self.weekday - 1]} {self.time:%H:%M} {self.zone.key}"

    def week_of(self, instant: datetime) -> WeekId:
        """The ISO week, in the schedule's zone, that contains the aware ``instant``."""
        _require_aware(instant, "instant")
        return WeekId.of_date(instant.astimezone(self.zone).date())

    def scheduled_at(self, week: WeekId) -> datetime:
        """The aware UTC instant the digest of ``week`` is due (see the module doc for DST)."""
        local = datetime.combine(week.day(self.weekday), self.time)
        first = local.replace(tzinfo=self.zone, fold=0)
        instant = first.astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == local:
            return instant  # exists (fold=0 picks the first of two occurrences)
        # In a gap: fold=0 reads the wall time with the offset before the jump (an instant after
        # the gap), fold=1 with the offset after it (an instant before the gap). The jump lies
        # between; find it to the second.
        early = local.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        late_offset = instant.astimezone(self.zone).utcoffset()
        lo, hi = int(early.timestamp()), int(instant.timestamp())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.zone).utcoffset() == late_offset:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, UTC)

    def next_scheduled_at(self, now: datetime) -> datetime:
        """The first scheduled instant at or after ``now``."""
        week = self.week_of(now)
        at = self.scheduled_at(week)
        return at if now <= at else self.scheduled_at(week.next())

    def due_week(
        self, now: datetime, last_done: WeekId | None, armed_at: datetime | None
    ) -> WeekId | None:
        """The week whose digest should run now, or None.

        ``last_done`` is the last week a partition completed; ``armed_at`` is when the partition
        was first seen by the service (its history began). With W = ``week_of(now)``:

        * before W's scheduled time: None;
        * ``last_done`` >= W: None (done; or the clock went back);
        * ``last_done`` < W: W. Only the current week is caught up; the weeks in between are
          skipped (:func:`missed_weeks` lists them for the log);
        * no history (a brand-new deployment): W only if it was armed at or before W's
          scheduled time, otherwise None (it waits for the next one). Not armed: None.
        """
        _require_aware(now, "now")
        week = self.week_of(now)
        at = self.scheduled_at(week)
        if now < at:
            return None
        if last_done is not None:
            return week if last_done < week else None
        if armed_at is None:
            return None
        _require_aware(armed_at, "armed_at")
        return week if armed_at <= at else None


def parse_schedule(text: str) -> DigestSchedule:
    """Parse ``"DAY HH:MM Zone/Name"`` (e.g. ``"MON 07:00 America/New_York"``).

    The day is an English weekday, abbreviated or not, in any case; the time is 24-hour.
    Raises ValueError saying which part is wrong.
    """
    parts = text.split() if isinstance(text, str) else []
    if len(parts) != 3:
        raise ValueError(f"schedule {text!r} must be 'DAY HH:MM ZONE', e.g. {_EXAMPLE}")
    day_text, time_text, zone_text = parts
    day = day_text.upper()
    if day in WEEKDAYS:
        weekday = WEEKDAYS.index(day) + 1
    elif day in _FULL_WEEKDAYS:
        weekday = _FULL_WEEKDAYS.index(day) + 1
    else:
        raise ValueError(f"weekday {day_text!r} must be one of {', '.join(WEEKDAYS)}")
    match = _TIME_RE.match(time_text)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"time {time_text!r} must be HH:MM on a 24-hour clock (00:00-23:59)")
    try:
        zone = ZoneInfo(zone_text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {zone_text!r} is not a known IANA zone, e.g. 'America/New_York'"
        ) from None
    return DigestSchedule(weekday, time(int(match.group(1)), int(match.group(2))), zone)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {value!r}")
