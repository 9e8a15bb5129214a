"""The error tree (streamtable.errors): every exception the library defines is under
StreamTableError, the public ones are drawn in the module's docstring, and ``loggable`` keeps
a message that may quote data out of the logs."""

from __future__ import annotations

import pytest

import streamtable
from streamtable import errors
from streamtable.errors import StreamTableError, loggable
from tests.support.exceptions import exception_classes

pytestmark = pytest.mark.unit


def test_every_exception_the_library_defines_is_under_the_root() -> None:
    found = exception_classes(streamtable)
    assert "streamtable.runtime.config._Bad" in found  # the walk reaches private modules
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, StreamTableError))
    assert outside == []


def test_every_exported_exception_is_in_the_tree_and_in_its_drawing() -> None:
    exported = {
        name: obj
        for module in (streamtable, errors)
        for name in getattr(module, "__all__", dir(module))
        if isinstance(obj := getattr(module, name), type) and issubclass(obj, BaseException)
    }
    assert {"StreamTableError", "StoreNotReady", "KafkaError"} <= set(exported)
    for name, cls in exported.items():
        assert issubclass(cls, StreamTableError), name
        assert f"── {name} " in (errors.__doc__ or "") or name == "StreamTableError", name


def test_a_message_that_may_quote_data_is_not_logged() -> None:
    class QuotesData(StreamTableError):
        message_is_loggable = False

    def fail() -> None:
        raise QuotesData("bad address 'ada@example.com'")

    with pytest.raises(QuotesData) as caught:
        fail()
    described = loggable(caught.value)
    assert "ada@example.com" not in described
    assert described.startswith("QuotesData raised at ")
    assert (
        loggable(StreamTableError("store 's' is closed")) == "StreamTableError: store 's' is closed"
    )
