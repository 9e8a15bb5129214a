"""What ``make bench`` runs, from the environment (``BENCH_*``; see bench/run.py's docstring)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bench.datagen import DataSettings
from bench.latency_settings import LatencySettings
from bench.peer_env import PEERS, selected_peers

WORKLOADS = ("w1", "w2", "w3", "w5", "w6", "w7", "latency", "peers")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "")
    return int(raw) if raw else default


def skipped(raw: str) -> frozenset[str]:
    """``BENCH_SKIP``: workload names, comma-separated; an unknown one ends the run."""
    names = frozenset(w.strip().lower() for w in raw.split(",") if w.strip())
    unknown = names - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"BENCH_SKIP: unknown workloads {sorted(unknown)}; known: {WORKLOADS}")
    return names


@dataclass(frozen=True)
class Settings:
    data: DataSettings
    repeats: int
    timeout_s: float
    commit_ms_alos: int
    commit_ms_eos: int
    cache_bytes: int
    skip: frozenset[str] = frozenset()
    w3_keys: int = 100_000
    w5_clients: int = 5_000
    w5_positions: int = 25_000
    processes: int = 1
    peers: tuple[str, ...] = tuple(PEERS)
    latency: LatencySettings = field(default_factory=LatencySettings)

    def runs(self, workload: str) -> bool:
        return workload not in self.skip and not (workload == "w2" and "w1" in self.skip)

    @staticmethod
    def from_env() -> Settings:
        records = env_int("BENCH_RECORDS", 1_000_000)
        positions = env_int("BENCH_POSITIONS", max(1, records // 10))
        data = DataSettings(
            records=records,
            positions=positions,
            clients=env_int("BENCH_CLIENTS", max(1, positions // 10)),
            partitions=env_int("BENCH_PARTITIONS", 4),
        )
        return Settings(
            data=data,
            repeats=max(1, env_int("BENCH_REPEATS", 1)),
            timeout_s=float(env_int("BENCH_TIMEOUT_S", 600)),
            commit_ms_alos=env_int("BENCH_COMMIT_MS_ALOS", 1000),
            commit_ms_eos=env_int("BENCH_COMMIT_MS_EOS", 100),
            cache_bytes=env_int("BENCH_CACHE_BYTES", 10 * 1024 * 1024),
            skip=skipped(os.environ.get("BENCH_SKIP", "")),
            w3_keys=env_int("BENCH_W3_KEYS", 100_000),
            w5_clients=env_int("BENCH_W5_CLIENTS", 5_000),
            w5_positions=env_int("BENCH_W5_POSITIONS", 25_000),
            processes=env_int("BENCH_PROCESSES", os.cpu_count() or 1),
            peers=selected_peers(os.environ.get("BENCH_PEERS", "")),
            latency=latency_from_env(),
        )

    def commit_ms(self, guarantee: str) -> int:
        return self.commit_ms_eos if guarantee == "exactly_once_v2" else self.commit_ms_alos


def latency_from_env() -> LatencySettings:
    """``BENCH_LATENCY_*``; a bad value ends the run before anything starts."""
    try:
        return LatencySettings.from_env(os.environ)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
