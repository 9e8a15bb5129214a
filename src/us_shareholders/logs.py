"""Process logging: structured (one JSON object a line) or text for a terminal.

``--log-format`` / ``USH_LOG_FORMAT``: ``json``, ``text`` or ``auto`` (the default: JSON unless
standard error is a terminal). ``--log-level`` / ``USH_LOG_LEVEL``: DEBUG, INFO, WARNING, ERROR.
A JSON line has ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``thread`` and, for
an exception, ``exc``. Nothing the service logs names a client other than by id.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from streamtable.errors import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("auto", "json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = ("httpx", "mail.log", "uvicorn.access")  # a line per request or SMTP command


class JsonFormatter(logging.Formatter):
    """One JSON object per record (hand-written: a few lines, no extra dependency)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure(level: str, fmt: str) -> None:
    """Set up the root logger; raises ConfigError naming the variable for a bad value."""
    level = level.strip().upper()
    if level not in LEVELS:
        raise ConfigError("USH_LOG_LEVEL", f"must be one of {', '.join(LEVELS)}, got {level!r}")
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise ConfigError("USH_LOG_FORMAT", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
