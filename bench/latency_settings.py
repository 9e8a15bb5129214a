"""The latency part's settings, from ``BENCH_LATENCY_*`` (bench/latency.py; bench/run.py's
docstring lists them). A bad value ends the run before anything starts, naming the variable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

GUARANTEES = ("at_least_once", "exactly_once_v2")
MAX_RECORDS = 10_000_000
"""Rate x (warm-up + duration) must stay below this: the producer's run is bounded."""


@dataclass(frozen=True)
class Setting:
    """A named pair of the two settings that decide when an update becomes visible."""

    name: str  # "default" or "low_latency"
    commit_interval_ms: int
    cache_max_bytes: int


@dataclass(frozen=True)
class LatencySettings:
    rate_per_s: int = 1_000
    duration_s: int = 30
    warmup_s: int = 2
    clients: int = 1_000
    probe_keys: int = 20
    backlog: int = 200_000
    guarantee: str = "at_least_once"
    low_commit_ms: int = 100
    low_cache_bytes: int = 0

    @property
    def records(self) -> int:
        """Every record the producer sends: warm-up and measured ones."""
        return self.rate_per_s * (self.warmup_s + self.duration_s)

    @property
    def warmup_records(self) -> int:
        return self.rate_per_s * self.warmup_s

    def low_latency(self) -> Setting:
        return Setting("low_latency", self.low_commit_ms, self.low_cache_bytes)

    @staticmethod
    def from_env(env: Mapping[str, str]) -> LatencySettings:
        """``BENCH_LATENCY_RATE`` (records/s), ``_SECONDS`` (measured), ``_WARMUP_SECONDS``,
        ``_CLIENTS``, ``_PROBE_KEYS``, ``_BACKLOG``, ``_GUARANTEE``, ``_LOW_COMMIT_MS``,
        ``_LOW_CACHE_BYTES``; unset ones take the defaults."""
        d = LatencySettings()
        guarantee = env.get("BENCH_LATENCY_GUARANTEE", "").strip() or d.guarantee
        if guarantee not in GUARANTEES:
            raise ValueError(f"BENCH_LATENCY_GUARANTEE: {guarantee!r} is not one of {GUARANTEES}")
        s = LatencySettings(
            rate_per_s=_int(env, "BENCH_LATENCY_RATE", d.rate_per_s, 1),
            duration_s=_int(env, "BENCH_LATENCY_SECONDS", d.duration_s, 1),
            warmup_s=_int(env, "BENCH_LATENCY_WARMUP_SECONDS", d.warmup_s, 0),
            clients=_int(env, "BENCH_LATENCY_CLIENTS", d.clients, 1),
            probe_keys=_int(env, "BENCH_LATENCY_PROBE_KEYS", d.probe_keys, 1),
            backlog=_int(env, "BENCH_LATENCY_BACKLOG", d.backlog, 1),
            guarantee=guarantee,
            low_commit_ms=_int(env, "BENCH_LATENCY_LOW_COMMIT_MS", d.low_commit_ms, 1),
            low_cache_bytes=_int(env, "BENCH_LATENCY_LOW_CACHE_BYTES", d.low_cache_bytes, 0),
        )
        if s.probe_keys > s.clients:
            raise ValueError(
                f"BENCH_LATENCY_PROBE_KEYS: {s.probe_keys} is more than the "
                f"{s.clients} clients (BENCH_LATENCY_CLIENTS)"
            )
        if s.records > MAX_RECORDS:
            raise ValueError(
                f"BENCH_LATENCY_RATE x (BENCH_LATENCY_WARMUP_SECONDS + BENCH_LATENCY_SECONDS): "
                f"{s.records:,} records, more than {MAX_RECORDS:,}"
            )
        return s


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """``env[name]`` as an integer (``_`` and ``,`` allowed as separators), at least
    ``minimum``; ``default`` when unset or empty."""
    raw = env.get(name, "").replace("_", "").replace(",", "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: {env[name]!r} is not an integer") from None
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value
