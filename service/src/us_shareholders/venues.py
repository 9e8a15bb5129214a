"""Which exchanges count as US venues.

A position is a "US holding" when its ``exchange`` names a US venue. Booking systems spell venues
in many ways ("NYSE Arca", "ARCX", "nyse arca "), so names are compared case-insensitively after
trimming and collapsing whitespace.

Example::

    >>> matcher = VenueMatcher(DEFAULT_US_EXCHANGES)
    >>> matcher.is_us(" nasdaq"), matcher.is_us("XNYS"), matcher.is_us("LSE")
    (True, True, False)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DEFAULT_US_EXCHANGES", "VenueMatcher", "normalize_venue", "parse_exchanges"]

DEFAULT_US_EXCHANGES: frozenset[str] = frozenset(
    {
        # Nasdaq (MIC XNAS; its market tiers)
        "NASDAQ",
        "XNAS",
        "NASDAQ GS",
        "NASDAQ GM",
        "NASDAQ CM",
        # New York Stock Exchange
        "NYSE",
        "XNYS",
        # NYSE American, formerly AMEX / NYSE MKT
        "NYSE AMERICAN",
        "NYSEAMERICAN",
        "NYSE MKT",
        "AMEX",
        "XASE",
        # NYSE Arca
        "NYSE ARCA",
        "NYSEARCA",
        "ARCA",
        "ARCX",
        # Cboe BZX, formerly BATS
        "CBOE BZX",
        "CBOE",
        "BZX",
        "BATS",
        # Investors Exchange
        "IEX",
        "IEXG",
    }
)
"""Names and MIC codes of the US venues recognised by default (normalized: upper case)."""


def normalize_venue(name: str) -> str:
    """``name`` trimmed, inner whitespace collapsed to one space, upper-cased."""
    return " ".join(name.split()).upper()


def parse_exchanges(text: str) -> frozenset[str]:
    """Parse a comma-separated list of venues (``"NASDAQ, nyse ,XNAS"``); empty items ignored."""
    return frozenset(v for v in (normalize_venue(item) for item in text.split(",")) if v)


class VenueMatcher:
    """Decides whether an exchange name is one of a set of venues (by default: the US ones)."""

    __slots__ = ("_venues",)

    def __init__(self, exchanges: Iterable[str] = DEFAULT_US_EXCHANGES) -> None:
        self._venues = frozenset(normalize_venue(e) for e in exchanges if normalize_venue(e))

    @property
    def exchanges(self) -> frozenset[str]:
        """The normalized venue names this matcher accepts."""
        return self._venues

    def is_us(self, exchange: object) -> bool:
        """True when ``exchange`` is a string naming one of the venues; False for anything else."""
        if not isinstance(exchange, str):
            return False
        return normalize_venue(exchange) in self._venues

    def __repr__(self) -> str:
        return f"VenueMatcher({sorted(self._venues)!r})"
