"""``Schedules``: callbacks due at intervals (an app's wall-clock schedules). A schedule fires
at most once per check, however late the check, then moves to its next slot after ``now``: a
long batch or a paused process never brings a burst of catch-up calls."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamtable.topology import Schedule, Schedules

pytestmark = pytest.mark.unit


def run_due(schedules: Schedules[str], kind: str, now: int) -> None:
    """What the task engine and the processing thread do: call each schedule due."""
    for entry in schedules.due(kind, now):
        entry.callback(now)


def recording(
    schedules: Schedules[str], interval: int, kind: str = "wall", start: int = 0
) -> tuple[list[int], Callable[[], None]]:
    """A schedule whose calls (their ``now``) go to the list; and its cancel function."""
    calls: list[int] = []
    cancel = schedules.add(interval, kind, calls.append, start)
    return calls, cancel


def test_it_fires_once_its_interval_has_passed() -> None:
    schedules: Schedules[str] = Schedules()
    calls, _ = recording(schedules, 100, start=1_000)
    run_due(schedules, "wall", 1_099)
    assert calls == []
    run_due(schedules, "wall", 1_100)
    assert calls == [1_100]
    run_due(schedules, "wall", 1_150)
    assert calls == [1_100], "not again before its next slot"
    run_due(schedules, "wall", 1_200)
    assert calls == [1_100, 1_200]


def test_a_late_check_fires_once_and_moves_to_the_next_slot_after_now() -> None:
    schedules: Schedules[str] = Schedules()
    calls, _ = recording(schedules, 100)
    run_due(schedules, "wall", 1_050)  # ten slots late
    assert calls == [1_050], "one call, no catch-up burst"
    run_due(schedules, "wall", 1_099)  # its next slot is 1_100, on its own grid
    assert calls == [1_050]
    run_due(schedules, "wall", 1_100)
    assert calls == [1_050, 1_100]


def test_a_check_exactly_on_a_slot_moves_past_it() -> None:
    schedules: Schedules[str] = Schedules()
    calls, _ = recording(schedules, 100)
    run_due(schedules, "wall", 300)
    run_due(schedules, "wall", 300)
    assert calls == [300]


def test_cancel_stops_it_and_drops_it_at_the_next_check() -> None:
    schedules: Schedules[str] = Schedules()
    calls, cancel = recording(schedules, 100)
    kept, cancel_kept = recording(schedules, 100)
    cancel()
    run_due(schedules, "wall", 100)
    assert calls == []
    assert kept == [100]
    cancel_kept()
    assert schedules, "kept until the next check"
    run_due(schedules, "wall", 150)
    assert not schedules


def test_a_schedule_cancelled_by_an_earlier_callback_of_the_same_check_does_not_fire() -> None:
    schedules: Schedules[str] = Schedules()
    later: list[int] = []
    cancel_later: list[Callable[[], None]] = []
    schedules.add(100, "wall", lambda now: cancel_later[0](), 0)
    cancel_later.append(schedules.add(100, "wall", later.append, 0))
    run_due(schedules, "wall", 100)
    assert later == []


def test_only_schedules_of_the_kind_checked_fire() -> None:
    schedules: Schedules[str] = Schedules()
    wall, _ = recording(schedules, 100, kind="wall")
    stream, _ = recording(schedules, 100, kind="stream")
    run_due(schedules, "stream", 500)
    assert (wall, stream) == ([], [500])
    run_due(schedules, "wall", 500)
    assert wall == [500]


def test_due_hands_out_each_due_schedule_already_moved_on() -> None:
    schedules: Schedules[str] = Schedules()
    schedules.add(100, "wall", lambda now: None, 0)
    [entry] = schedules.due("wall", 250)
    assert isinstance(entry, Schedule)
    assert entry.next_time == 300
    assert list(schedules.due("wall", 250)) == []


def test_empty_schedules_are_false() -> None:
    schedules: Schedules[str] = Schedules()
    assert not schedules
    schedules.add(100, "wall", lambda now: None, 0)
    assert schedules


@pytest.mark.parametrize("interval", [0, -5])
def test_an_interval_that_is_not_positive_is_refused(interval: int) -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        Schedules[str]().add(interval, "wall", lambda now: None, 0)
