"""The latency part's store probe, inside a benchmark app's process (bench/runner.py).

``python -m bench.runner streamtable ... --probe-store us-holders --probe-keys c0,c1`` starts a
:class:`StoreProbe` next to the app: a thread that reads each probe key through
``app.store(name).get(key)`` in a loop (:data:`INTERVAL_S` between rounds) and, for each
element that appears for the first time in a key's value (the seed topology's value is the
client's list of position ids; the latency part's ids are unique), prints
``SEEN <element> <wall-clock ns>`` (bench/latency.py matches the element with its produce
time). Kafka Streams' BenchApp has the same probe over interactive queries (``StoreProbe.java``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import streamtable as st

INTERVAL_S = 0.001
"""The pause between two rounds over the probe keys."""
NOT_READY_S = 0.1
"""The pause after the store was not ready (before RUNNING, during a rebalance)."""


def new_elements(value: Any, known: set[str]) -> list[str]:
    """The elements of ``value`` (a list, or ``None``) not in ``known``; adds them to it."""
    fresh = [str(e) for e in value or () if str(e) not in known]
    known.update(fresh)
    return fresh


class StoreProbe:
    """Polls ``store`` of ``app`` for ``keys``; ``say`` gets each ``SEEN`` line."""

    def __init__(
        self, app: st.StreamsApp, store: str, keys: Iterable[str], say: Callable[[str], None]
    ) -> None:
        self.app, self.store, self.say = app, store, say
        self.keys = list(keys)
        if not self.keys:
            raise ValueError("--probe-keys: at least one key")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-store-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        known: dict[str, set[str]] = {key: set() for key in self.keys}
        while not self._stop.is_set():
            try:
                view = self.app.store(self.store)
                for key in self.keys:
                    value = view.get(key)
                    seen_ns = time.time_ns()
                    for element in new_elements(value, known[key]):
                        self.say(f"SEEN {element} {seen_ns}")
            except st.StoreNotReady:
                self._stop.wait(NOT_READY_S)
                continue
            self._stop.wait(INTERVAL_S)
