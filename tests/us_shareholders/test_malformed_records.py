"""The malformed-position generator, and the serdes' reasons for rejecting its records: they
name fields and types, never the data (the reasons are logged)."""

from __future__ import annotations

import random

import pytest

from streamtable.errors import SerializationError, loggable
from streamtable.serde import STRING
from tests.support.malformed import KINDS, NEAR_1MB, PII_MARKER, malformed_positions
from us_shareholders.records import POSITION

pytestmark = pytest.mark.unit


def test_every_kind_comes_once_per_cycle_and_a_seed_gives_the_same_records() -> None:
    first = malformed_positions(random.Random(7), 2 * len(KINDS))
    assert [kind for _, _, kind in first] == list(KINDS) * 2
    assert first == malformed_positions(random.Random(7), 2 * len(KINDS))
    assert len(KINDS) >= 26
    assert max(len(v or b"") for _, v, _ in first) < 1_000_000  # fits a default Kafka record
    assert max(len(v or b"") for _, v, _ in first) >= NEAR_1MB


def test_every_record_is_rejected_with_a_reason_that_quotes_no_data() -> None:
    for key, value, kind in malformed_positions(random.Random(11), 3 * len(KINDS)):
        if key is None:
            assert kind.startswith("null_key")
            continue
        assert value is not None

        def parse(key: bytes = key, value: bytes = value) -> None:
            STRING.deserialize(key)
            POSITION.deserialize(value)

        with pytest.raises(SerializationError) as caught:
            parse()
        reason = str(caught.value)
        assert PII_MARKER not in reason, (kind, reason[:200])
        assert len(reason) < 200, kind
        assert PII_MARKER not in loggable(caught.value)


def test_a_foreign_exception_is_logged_by_type_and_place_only() -> None:
    try:
        {"client": "x"}["Ada PII-0123456789"]
    except KeyError as exc:
        described = loggable(exc)
    assert described.startswith("KeyError raised at us_shareholders/test_malformed_records.py:")
    assert PII_MARKER not in described
    assert loggable(SerializationError("x" * 1000)).endswith("...")
    assert len(loggable(SerializationError("x" * 1000))) == 300
