"""W6's typed results (bench/w6.py): windowed counts and sums in each implementation."""

from __future__ import annotations

from bench.results_model import Model, Num


class W6Run(Model):
    """One implementation's W6 run. ``oracle`` is ``"correct"``, ``"wrong: <what differs>"`` or
    ``"failed: <why>"``; the figures are ``null`` unless the run finished."""

    implementation: str  # "streamtable", "kstreams" or "quixstreams"
    label: str
    oracle: str
    elapsed_s: Num | None = None
    rps: Num | None = None
    cpu_s: Num | None = None
    cpu_us_per_record: Num | None = None
    peak_rss_mb: Num | None = None
    output_records: int | None = None  # tumbling + hopping, as written (caches merge updates)
    code_lines: int | None = None  # the topology's lines of user code
    exit_code: int | None = None


class W6Result(Model):
    """W6's input and every implementation's run over it."""

    records: int
    clients: int
    partitions: int
    span_s: Num  # event time from the first to the last trade
    tumbling_windows: int  # the oracle's (client, window) results
    hopping_windows: int
    quixstreams_pin: str
    runs: list[W6Run]

    def find(self, implementation: str) -> W6Run | None:
        return next((r for r in self.runs if r.implementation == implementation), None)
