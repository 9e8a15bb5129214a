"""The cyclic garbage collector's settings while apps run (``StreamsConfig.python_gc``).

A stream processor allocates at a steady pace: a few containers per record, and a record cache
whose entries live until the next commit, then die by reference counting. With the
interpreter's defaults, that pace starts a young-generation collection every 700 allocations,
and the cache's churn keeps promoting objects to the oldest generation, whose collection scans
every object of the process: the interpreter's modules, the libraries, the topology.

``tuned`` changes two things, for the whole process, while at least one app that asked for it is
running:

- the objects that exist when it starts are frozen (``gc.freeze()``): no collection scans them
  again (they are freed as usual when unreferenced; only cycles among them are not collected);
- the young-generation threshold goes from 700 to :data:`YOUNG_THRESHOLD` allocations (the
  older generations' thresholds are kept): most objects are freed by reference counting before
  a collection would scan them, and a record cache's entries are scanned far less often.

Measured with ``gc.callbacks`` over 300,000 W6 trades (bench/w6.py): 3.4 s of 21 s of CPU in
the collector with the interpreter's settings (4,452 young, 37 full collections), 0.2-0.3 s
tuned (28 young, none full). Cycles of garbage wait longer to be collected: at most
:data:`YOUNG_THRESHOLD` more tracked objects than the defaults let stay.

The last such app to stop restores the thresholds it found and unfreezes the frozen objects.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("streamtable.runtime.gc")

YOUNG_THRESHOLD = 100_000
"""Allocations (minus deallocations) of tracked objects between two young collections."""

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


def acquire() -> None:
    """An app with ``python_gc="tuned"`` starts running: tune the collector if it is the first."""
    global _users, _saved
    with _lock:
        _users += 1
        if _users > 1:
            return
        young, middle, old = gc.get_threshold()
        _saved = (young, middle, old)
        gc.freeze()
        if young != 0:  # 0: collection is disabled; leave it so
            gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
        log.debug(
            "gc: %d objects frozen, thresholds %s (were %s)",
            gc.get_freeze_count(),
            gc.get_threshold(),
            _saved,
        )


def release() -> None:
    """An app that called :func:`acquire` stopped: restore the collector if it is the last."""
    global _users, _saved
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users or _saved is None:
            return
        gc.set_threshold(*_saved)
        gc.unfreeze()
        _saved = None


def tuning(run: Callable[[], None], mode: str) -> Callable[[], None]:
    """``run`` (an app's processing thread) with the collector tuned while it runs when
    ``mode`` (``python_gc``) is ``tuned``; ``run`` itself otherwise."""
    if mode != "tuned":
        return run

    def tuned() -> None:
        acquire()
        try:
            run()
        finally:
            release()

    return tuned
