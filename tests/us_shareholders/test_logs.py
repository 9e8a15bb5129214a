"""Process logging: JSON lines by default off a terminal; bad settings name the variable."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import orjson
import pytest

from streamtable.errors import ConfigError
from us_shareholders import logs

pytestmark = pytest.mark.unit


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    logger = logging.getLogger()
    handlers, level = list(logger.handlers), logger.level
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)


def test_a_record_is_one_json_object_with_its_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "us_shareholders.digest", logging.ERROR, __file__, 1, "partition %d: %s", (3, "x"),
            exc_info=sys.exc_info(),
        )  # fmt: skip
    line = logs.JsonFormatter().format(record)
    entry = orjson.loads(line)
    assert "\n" not in line
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "us_shareholders.digest"
    assert entry["message"] == "partition 3: x"
    assert entry["ts"].endswith("+00:00")
    assert "ValueError: boom" in entry["exc"]


def test_auto_is_json_off_a_terminal(root: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()  # not a terminal
    monkeypatch.setattr("sys.stderr", stream)
    logs.configure("info", "auto")
    logging.getLogger("us_shareholders.test").info("hello %s", "there")
    logging.getLogger("us_shareholders.test").debug("not at INFO")
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["message"] for line in lines] == ["hello there"]
    assert logging.getLogger("httpx").level == logging.WARNING


@pytest.mark.parametrize(
    ("level", "fmt", "setting"),
    [("loud", "json", "USH_LOG_LEVEL"), ("INFO", "yaml", "USH_LOG_FORMAT")],
)
def test_a_bad_value_names_the_variable(
    root: logging.Logger, level: str, fmt: str, setting: str
) -> None:
    with pytest.raises(ConfigError, match=setting) as raised:
        logs.configure(level, fmt)
    assert raised.value.setting == setting


def test_a_line_is_bounded_whatever_the_message_or_traceback() -> None:
    try:
        raise ValueError("\u00e9\x00" * 600_000)
    except ValueError:
        record = logging.LogRecord(
            "streamtable.runtime.app", logging.WARNING, __file__, 1, "rec %s", ("\x01" * 900_000,),
            exc_info=sys.exc_info(),
        )  # fmt: skip
    line = logs.JsonFormatter().format(record)
    assert len(line.encode()) <= logs.MAX_LINE_BYTES
    entry = orjson.loads(line)
    assert entry["message"].startswith("rec \x01")
    assert "more characters]" in entry["message"]
    assert entry["exc"].startswith("[")  # the end of the traceback is kept: the exception
    record.exc_text = None
    text = logs.TextFormatter().format(record)
    assert len(text.encode()) <= logs.MAX_LINE_BYTES
