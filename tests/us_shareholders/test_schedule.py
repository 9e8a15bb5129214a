"""The digest schedule: week identity, DST-correct scheduled instants and the catch-up rule."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from us_shareholders.schedule import DigestSchedule, WeekId, missed_weeks, parse_schedule

pytestmark = pytest.mark.unit

NEW_YORK = parse_schedule("MON 07:00 America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- parsing -------------------------------------------------------------------------------------


def test_parse_schedule_reads_day_time_and_zone() -> None:
    schedule = parse_schedule("  mon 07:00   America/New_York ")
    assert schedule == DigestSchedule(1, time(7, 0), ZoneInfo("America/New_York"))
    assert str(schedule) == "MON 07:00 America/New_York"
    assert parse_schedule("Sunday 23:59 UTC").weekday == 7


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("MON 07:00", "must be 'DAY HH:MM ZONE'"),
        ("FUNDAY 07:00 UTC", "weekday 'FUNDAY' must be one of MON, TUE"),
        ("MON 24:00 UTC", "time '24:00' must be HH:MM"),
        ("MON 7pm UTC", "time '7pm' must be HH:MM"),
        ("MON 07:60 UTC", "time '07:60'"),
        ("MON 07:00 Mars/Olympus_Mons", "time zone 'Mars/Olympus_Mons' is not a known IANA zone"),
        ("MON 07:00 ../../etc/passwd", "is not a known IANA zone"),
    ],
)
def test_parse_schedule_names_the_bad_part(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_schedule(text)


# --- week identity -------------------------------------------------------------------------------


def test_week_id_text_form_and_order() -> None:
    assert str(WeekId(2026, 48)) == "2026-W48"
    assert WeekId.parse("2026-W05") == WeekId(2026, 5)
    assert WeekId(2025, 52) < WeekId(2026, 1) < WeekId(2026, 2)
    with pytest.raises(ValueError, match=r"has weeks 1\.\.52, not 53"):
        WeekId(2025, 53)
    with pytest.raises(ValueError, match="YYYY-Www"):
        WeekId.parse("2026-48")


def test_week_id_previous_and_next_cross_years_including_week_53() -> None:
    assert WeekId(2027, 1).previous() == WeekId(2026, 53)  # 2026 is a 53-week ISO year
    assert WeekId(2026, 53).next() == WeekId(2027, 1)
    assert WeekId(2026, 1).previous() == WeekId(2025, 52)
    assert WeekId(2020, 53).next() == WeekId(2021, 1)


def test_year_boundary_dates_belong_to_their_iso_week() -> None:
    utc_schedule = parse_schedule("MON 07:00 UTC")
    # 2026-12-31 (Thursday) and 2027-01-01 (Friday) are both in 2026-W53.
    assert utc_schedule.week_of(utc(2026, 12, 31, 12)) == WeekId(2026, 53)
    assert utc_schedule.week_of(utc(2027, 1, 1, 12)) == WeekId(2026, 53)
    assert utc_schedule.week_of(utc(2027, 1, 4, 0)) == WeekId(2027, 1)
    # 2024-12-30 (Monday) starts 2025-W01: week 1 can begin in December.
    assert utc_schedule.week_of(utc(2024, 12, 30, 0)) == WeekId(2025, 1)
    assert utc_schedule.scheduled_at(WeekId(2025, 1)) == utc(2024, 12, 30, 7)


def test_week_of_uses_the_schedule_zone() -> None:
    # Sunday 2026-11-29 23:30 in New York is already Monday 04:30 UTC: still W48 in New York.
    instant = utc(2026, 11, 30, 4, 30)
    assert NEW_YORK.week_of(instant) == WeekId(2026, 48)
    assert parse_schedule("MON 07:00 UTC").week_of(instant) == WeekId(2026, 49)
    # Monday 00:30 in Tokyo is still Sunday in UTC.
    tokyo = parse_schedule("MON 07:00 Asia/Tokyo")
    assert tokyo.week_of(utc(2026, 11, 29, 15, 30)) == WeekId(2026, 49)


def test_week_of_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        NEW_YORK.week_of(datetime(2026, 1, 5, 7))


# --- scheduled instants and DST ------------------------------------------------------------------


def test_new_york_seven_oclock_is_eleven_utc_in_summer_and_twelve_in_winter() -> None:
    assert NEW_YORK.scheduled_at(WeekId(2026, 27)) == utc(2026, 6, 29, 11)
    assert NEW_YORK.scheduled_at(WeekId(2026, 48)) == utc(2026, 11, 23, 12)
    # The Mondays on either side of each 2026 change (8 March and 1 November).
    assert NEW_YORK.scheduled_at(WeekId(2026, 10)) == utc(2026, 3, 2, 12)
    assert NEW_YORK.scheduled_at(WeekId(2026, 11)) == utc(2026, 3, 9, 11)
    assert NEW_YORK.scheduled_at(WeekId(2026, 44)) == utc(2026, 10, 26, 11)
    assert NEW_YORK.scheduled_at(WeekId(2026, 45)) == utc(2026, 11, 2, 12)


def test_london_follows_bst_in_both_directions() -> None:
    london = parse_schedule("MON 07:00 Europe/London")
    # BST starts 29 March 2026 and ends 25 October 2026.
    assert london.scheduled_at(WeekId(2026, 13)) == utc(2026, 3, 23, 7)
    assert london.scheduled_at(WeekId(2026, 14)) == utc(2026, 3, 30, 6)
    assert london.scheduled_at(WeekId(2026, 43)) == utc(2026, 10, 19, 6)
    assert london.scheduled_at(WeekId(2026, 44)) == utc(2026, 10, 26, 7)


def test_time_in_spring_forward_gap_is_due_when_the_clock_jumps() -> None:
    # 8 March 2026, New York: 02:00 EST -> 03:00 EDT; 02:30 never happens.
    gap = parse_schedule("SUN 02:30 America/New_York")
    week = WeekId.of_date(date(2026, 3, 8))
    at = gap.scheduled_at(week)
    assert at == utc(2026, 3, 8, 7)  # 03:00 EDT, the first instant after the gap
    assert at.astimezone(gap.zone).time() == time(3, 0)
    # London, 29 March 2026: 01:00 GMT -> 02:00 BST.
    london_gap = parse_schedule("SUN 01:15 Europe/London")
    assert london_gap.scheduled_at(WeekId.of_date(date(2026, 3, 29))) == utc(2026, 3, 29, 1)


def test_time_in_fall_back_overlap_is_due_at_its_first_occurrence() -> None:
    # 1 November 2026, New York: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    overlap = parse_schedule("SUN 01:30 America/New_York")
    assert overlap.scheduled_at(WeekId.of_date(date(2026, 11, 1))) == utc(2026, 11, 1, 5, 30)
    # London, 25 October 2026: 01:30 at 00:30 UTC (BST) and 01:30 UTC (GMT).
    london = parse_schedule("SUN 01:30 Europe/London")
    assert london.scheduled_at(WeekId.of_date(date(2026, 10, 25))) == utc(2026, 10, 25, 0, 30)


def test_next_scheduled_at() -> None:
    assert NEW_YORK.next_scheduled_at(utc(2026, 11, 23, 11)) == utc(2026, 11, 23, 12)
    assert NEW_YORK.next_scheduled_at(utc(2026, 11, 23, 12)) == utc(2026, 11, 23, 12)
    assert NEW_YORK.next_scheduled_at(utc(2026, 11, 23, 12, 0, 1)) == utc(2026, 11, 30, 12)


ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Apia",  # skipped 30 December 2011 entirely
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "UTC",
]


@given(
    day=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    weekday=st.integers(1, 7),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 59]),
    zone=st.sampled_from(ZONES),
)
def test_scheduled_instant_lies_in_its_own_week(
    day: date, weekday: int, hour: int, minute: int, zone: str
) -> None:
    schedule = DigestSchedule(weekday, time(hour, minute), ZoneInfo(zone))
    week = WeekId.of_date(day)
    at = schedule.scheduled_at(week)
    assert at.tzinfo is UTC
    assert schedule.week_of(at) == week
    local = at.astimezone(schedule.zone)
    if local.time() != time(hour, minute):  # only in a DST gap: due at most a few hours late
        assert (
            timedelta(0)
            < local.replace(tzinfo=None) - datetime.combine(week.day(weekday), time(hour, minute))
            <= timedelta(hours=24)
        )
    assert schedule.scheduled_at(week.next()) > at


# --- when a digest is due ------------------------------------------------------------------------

W48 = WeekId(2026, 48)
W48_AT = utc(2026, 11, 23, 12)  # Monday 07:00 EST
LONG_AGO = utc(2026, 1, 1)


def test_nothing_is_due_before_the_scheduled_time() -> None:
    assert NEW_YORK.due_week(W48_AT - timedelta(seconds=1), WeekId(2026, 47), LONG_AGO) is None


def test_the_current_week_is_due_at_and_after_the_scheduled_time() -> None:
    assert NEW_YORK.due_week(W48_AT, WeekId(2026, 47), LONG_AGO) == W48
    assert NEW_YORK.due_week(utc(2026, 11, 29, 23), WeekId(2026, 47), LONG_AGO) == W48


def test_a_done_week_is_not_due_again() -> None:
    assert NEW_YORK.due_week(W48_AT + timedelta(hours=1), W48, LONG_AGO) is None
    # a clock that went back behind the last done week does not re-run anything
    assert NEW_YORK.due_week(W48_AT, WeekId(2026, 49), LONG_AGO) is None


def test_catch_up_runs_only_the_current_week_and_reports_the_missed_ones() -> None:
    last_done = WeekId(2026, 44)
    now = utc(2026, 11, 25, 9)  # Wednesday of W48, after three weeks down
    assert NEW_YORK.due_week(now, last_done, LONG_AGO) == W48
    assert missed_weeks(last_done, W48) == [WeekId(2026, 45), WeekId(2026, 46), WeekId(2026, 47)]
    assert missed_weeks(WeekId(2026, 47), W48) == []
    assert missed_weeks(None, W48) == []


def test_catch_up_across_the_year_end() -> None:
    # Down from late December 2026 (W52) to Tuesday 5 January 2027 (W01).
    now = utc(2027, 1, 5, 15)
    assert NEW_YORK.week_of(now) == WeekId(2027, 1)
    assert NEW_YORK.due_week(now, WeekId(2026, 52), LONG_AGO) == WeekId(2027, 1)
    assert missed_weeks(WeekId(2026, 52), WeekId(2027, 1)) == [WeekId(2026, 53)]


def test_a_brand_new_deployment_waits_for_the_next_scheduled_time() -> None:
    armed = W48_AT + timedelta(hours=2)  # deployed Monday 09:00 New York, after the digest time
    assert NEW_YORK.due_week(armed + timedelta(minutes=1), None, armed) is None
    assert NEW_YORK.due_week(utc(2026, 11, 29, 23), None, armed) is None
    # the next Monday 07:00 it runs
    next_at = utc(2026, 11, 30, 12)
    assert NEW_YORK.due_week(next_at, None, armed) == WeekId(2026, 49)


def test_a_deployment_armed_before_the_scheduled_time_runs_that_week() -> None:
    armed = W48_AT - timedelta(hours=3)
    assert NEW_YORK.due_week(W48_AT - timedelta(seconds=1), None, armed) is None
    assert NEW_YORK.due_week(W48_AT, None, armed) == W48
    assert NEW_YORK.due_week(W48_AT, None, W48_AT) == W48  # armed at the very instant


def test_no_history_and_not_armed_is_never_due() -> None:
    assert NEW_YORK.due_week(W48_AT + timedelta(days=1), None, None) is None


def test_due_week_near_the_year_end_with_week_53() -> None:
    # Monday 28 December 2026 07:00 New York starts 2026-W53.
    at = NEW_YORK.scheduled_at(WeekId(2026, 53))
    assert at == utc(2026, 12, 28, 12)
    assert NEW_YORK.due_week(utc(2027, 1, 1, 0), WeekId(2026, 52), LONG_AGO) == WeekId(2026, 53)
    assert NEW_YORK.due_week(utc(2027, 1, 1, 0), WeekId(2026, 53), LONG_AGO) is None
