"""Which exchanges count as US venues."""

from __future__ import annotations

import pytest

from us_shareholders.venues import (
    DEFAULT_US_EXCHANGES,
    VenueMatcher,
    normalize_venue,
    parse_exchanges,
)

pytestmark = pytest.mark.unit

DEFAULT = VenueMatcher()


@pytest.mark.parametrize(
    "exchange",
    [
        "NASDAQ", "XNAS", "NYSE", "XNYS", "NYSE American", "AMEX", "XASE", "NYSE Arca", "ARCX",
        "Cboe BZX", "BZX", "BATS", "IEX", "IEXG",
    ],
)  # fmt: skip
def test_default_venues_cover_the_us_exchanges_and_their_mic_codes(exchange: str) -> None:
    assert DEFAULT.is_us(exchange)


@pytest.mark.parametrize("spelling", ["nasdaq", " Nasdaq ", "\tNYSE\n", "nyse   arca", "xnas"])
def test_matching_ignores_case_and_surrounding_or_repeated_whitespace(spelling: str) -> None:
    assert DEFAULT.is_us(spelling)


@pytest.mark.parametrize("exchange", ["LSE", "XLON", "TSX", "XETRA", "NASDAQ OMX STOCKHOLM", ""])
def test_other_venues_are_not_us(exchange: str) -> None:
    assert not DEFAULT.is_us(exchange)


@pytest.mark.parametrize("value", [None, 42, 3.5, ["NASDAQ"], {"name": "NYSE"}, b"NASDAQ"])
def test_non_strings_are_not_us(value: object) -> None:
    assert DEFAULT.is_us(value) is False


def test_a_configured_list_replaces_the_default() -> None:
    matcher = VenueMatcher(["nasdaq", " ", "Cboe  BZX"])
    assert matcher.exchanges == frozenset({"NASDAQ", "CBOE BZX"})
    assert matcher.is_us("cboe bzx")
    assert not matcher.is_us("NYSE")


def test_parse_exchanges_and_normalize() -> None:
    assert parse_exchanges("NASDAQ, nyse ,,XNAS ") == frozenset({"NASDAQ", "NYSE", "XNAS"})
    assert normalize_venue("  nyse   american ") == "NYSE AMERICAN"
    assert all(normalize_venue(v) == v for v in DEFAULT_US_EXCHANGES)
