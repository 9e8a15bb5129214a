"""FreezeWatch: a process frozen past its heartbeat interval sends nothing until a probe shows
that it still owns its partitions (the at-least-once zombie of chaos seed 857095)."""

from __future__ import annotations

import pytest

from streamtable.runtime._freeze import FreezeWatch, ProcessingStalled

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Probe:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answers.pop(0)


def watch(clock: Clock, probe: Probe) -> FreezeWatch:
    return FreezeWatch(1.5, probe, tick_s=0.1, clock=clock)


def test_a_running_process_sends_without_probing() -> None:
    clock, probe = Clock(), Probe([])
    w = watch(clock, probe)
    for _ in range(100):
        clock.now += 0.1
        w.tick()
        w.check()
    assert probe.calls == 0
    assert w.stalls == 0


def test_a_late_tick_seen_by_the_sender_probes_once_and_goes_on_when_still_a_member() -> None:
    clock, probe = Clock(), Probe([True])
    w = watch(clock, probe)
    clock.now += 8.0  # stopped: neither the watch thread nor the sender ran
    w.check()  # the sender runs first
    w.check()
    assert probe.calls == 1
    assert not w.suspect
    assert w.stalls == 1


def test_a_late_tick_seen_by_the_watch_thread_first_still_stops_the_sender() -> None:
    clock, probe = Clock(), Probe([False, False, True])
    w = watch(clock, probe)
    clock.now += 8.0
    w.tick()  # the watch thread runs first after SIGCONT and moves its tick on
    assert w.suspect
    with pytest.raises(ProcessingStalled):
        w.check()
    with pytest.raises(ProcessingStalled):  # still suspect: every send probes again
        w.check()
    w.check()  # a probe succeeded: a member after all
    assert probe.calls == 3
    assert not w.suspect
    assert w.stalls == 1


def test_a_new_assignment_clears_the_suspicion() -> None:
    clock, probe = Clock(), Probe([])
    w = watch(clock, probe)
    clock.now += 8.0
    w.tick()
    w.clear()
    w.check()
    assert probe.calls == 0


def test_the_tick_must_be_shorter_than_the_limit() -> None:
    with pytest.raises(ValueError, match="tick_s"):
        FreezeWatch(0.1, Probe([]), tick_s=0.1)


def test_the_thread_ticks_until_stopped() -> None:
    probe = Probe([])
    w = FreezeWatch(5.0, probe, tick_s=0.01)
    w.start()
    try:
        w.check()
    finally:
        w.stop()
    assert probe.calls == 0
