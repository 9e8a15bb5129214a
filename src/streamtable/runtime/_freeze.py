"""At least once: no record leaves a process that was frozen long enough to lose its partitions.

A process stopped past its session timeout (SIGSTOP, a frozen VM, swapping) is removed from the
group while it cannot run, and another instance takes its partitions over from the committed
offsets. When it runs again, it still holds records fetched before the stop, and librdkafka
only tells it that the partitions are lost at a later ``consume()``. Processed meanwhile, those
records forward changes computed from stale state, and they reach the repartition and output
topics after the new owner's: a subtraction lands after a later addition, and the table keeps a
value that moved away (chaos seed 857095, kind ``aggregate``: 23 of 55 clients wrong). Under
exactly once the transaction protocol fences such a zombie; at least once nothing does.

:class:`FreezeWatch` closes that gap. A daemon thread ticks every ``tick_s``; every record the
process sends first calls :meth:`FreezeWatch.check`. When the process has not run for longer
than ``limit_s`` (the thread's own tick came late, or the sender sees that the last tick is too
old) nothing is sent until a probe has shown that this member still owns its partitions: a
synchronous offset commit of the offsets already committed, which the group coordinator refuses
from a member it has removed. While the probe fails, :class:`ProcessingStalled` stops the send;
the runtime then drops the work in progress and starts its tasks again from the committed
offsets, as after a crash.

``limit_s`` is a fraction of the session timeout (the heartbeat interval): a process must be
frozen for about three times as long before the coordinator can remove it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from streamtable.errors import TaskMigrated

log = logging.getLogger("streamtable.runtime.freeze")


class ProcessingStalled(TaskMigrated):
    """This process did not run for longer than its group allows and could not show that it
    still owns its partitions: what it was about to send may be stale (its tasks may have
    moved to another instance)."""


class FreezeWatch:
    """See the module docstring. ``probe`` returns whether this member still owns its
    partitions; ``clock`` is for tests."""

    def __init__(
        self,
        limit_s: float,
        probe: Callable[[], bool],
        *,
        tick_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tick_s >= limit_s:
            raise ValueError(f"tick_s ({tick_s}) must be shorter than limit_s ({limit_s})")
        self.limit_s = limit_s
        self._probe = probe
        self._tick_s = tick_s
        self._clock = clock
        self._tick = clock()
        self.suspect = False
        self.stalls = 0  # how many freezes were noticed (a test and log figure)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="streamtable-freeze", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            self.tick()

    def tick(self) -> None:
        now = self._clock()
        if now - self._tick > self.limit_s:
            self._suspect(now - self._tick)  # before the tick moves on: a sender may look now
        self._tick = now

    def _suspect(self, gap_s: float) -> None:
        if not self.suspect:
            self.suspect = True
            self.stalls += 1
            log.warning(
                "this process did not run for %.1f s (limit %.1f s): nothing is sent until a "
                "probe shows that it still owns its partitions",
                gap_s, self.limit_s,
            )  # fmt: skip

    def check(self) -> None:
        """Called before every send: returns at once unless the process was frozen; then
        probes, and raises :class:`ProcessingStalled` unless the probe succeeds."""
        gap = self._clock() - self._tick
        if not self.suspect and gap <= self.limit_s:
            return
        self._suspect(gap)
        if not self._probe():
            raise ProcessingStalled(
                "this process was frozen for longer than its group allows and may have lost "
                "its partitions; the records it was processing are dropped and its tasks start "
                "again from the committed offsets"
            )
        log.info("probe after a freeze: this member still owns its partitions")
        self.clear()

    def clear(self) -> None:
        """Membership shown (a successful probe, or a new assignment)."""
        self._tick = self._clock()
        self.suspect = False
