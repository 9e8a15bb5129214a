"""Process logging: structured (one JSON object a line) or text for a terminal.

``--log-format`` / ``USH_LOG_FORMAT``: ``json``, ``text`` or ``auto`` (the default: JSON unless
standard error is a terminal). ``--log-level`` / ``USH_LOG_LEVEL``: DEBUG, INFO, WARNING, ERROR.
A JSON line has ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``thread`` and, for
an exception, ``exc``. Nothing the service logs names a client other than by id.

Every line is bounded (:data:`MAX_LINE_BYTES`): a longer message or traceback is cut, keeping
the start of the message and the end of the traceback (where the exception is). The Kafka
client library's own messages (librdkafka) come through the ``streamtable.kafka`` and
``us_shareholders.kafka`` loggers, like everything else.
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


MAX_LINE_BYTES = 4096
"""No log line is longer (UTF-8 bytes, JSON escapes included)."""
_CUTS = ((1500, 1800), (300, 600), (100, 100))  # (message, traceback) characters, then tighter


def _head(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters before] ...{text[-limit:]}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (hand-written: a few lines, no extra dependency)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        exc = self.formatException(record.exc_info) if record.exc_info else None
        line = ""
        for message_chars, exc_chars in _CUTS:
            entry = {
                "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname,
                "logger": record.name,
                "message": _head(message, message_chars),
                "thread": record.threadName,
            }
            if exc is not None:
                entry["exc"] = _tail(exc, exc_chars)
            line = orjson.dumps(entry).decode()
            if len(line.encode()) <= MAX_LINE_BYTES:
                break
        return line


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` with the same bound as :class:`JsonFormatter`: a longer entry keeps
    its start (the message) and its end (the exception)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        data = text.encode()
        if len(data) <= MAX_LINE_BYTES:
            return text
        head = data[: MAX_LINE_BYTES // 2].decode(errors="ignore")
        tail = data[-(MAX_LINE_BYTES // 2 - 100) :].decode(errors="ignore")
        return f"{head} ... [{len(data) - len(head) - len(tail)} bytes cut] ... {tail}"


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
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
