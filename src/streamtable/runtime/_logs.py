"""The logger that receives librdkafka's own messages, with repeats held back.

librdkafka reports every failed reconnect: with a broker gone, each client logs "Connect to
... failed: Connection refused" several times a second (about 4,000 lines a minute for one
service instance). :class:`RepeatFilter` lets the first of a kind through, holds back its
repeats for ``window_s`` seconds, and then lets the next one through saying how many it held.
"""

from __future__ import annotations

import logging
import re
import threading
import time

_NUMBERS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """At most one record per (level, message with its numbers blanked) every ``window_s``."""

    def __init__(self, window_s: float = 30.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}  # -> (last shown, held)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = time.monotonic()
        with self._lock:
            shown, held = self._seen.get(key, (-self.window_s, 0))
            if now - shown < self.window_s:
                self._seen[key] = (shown, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # forget kinds not seen for a window
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window_s}
        if held:
            record.msg = f"{record.getMessage()} ({held} similar held back in {self.window_s:.0f}s)"
            record.args = ()
        return True


def kafka_logger(name: str) -> logging.Logger:
    """The logger ``name`` with a :class:`RepeatFilter` (attached once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RepeatFilter) for f in logger.filters):
        logger.addFilter(RepeatFilter())
    return logger
