"""The two distributions as a new user gets them: each wheel built, installed in a fresh venv.

``streamtable`` alone must pull none of the service's dependencies (nor the HTTP stack of its
``query`` extra, nor prometheus-client) and still run a topology; ``us-shareholders`` with the
library wheel must install and run its CLI. The dependencies come from the package registry
(pip's cache makes a second run fast); nothing from this checkout is on the path of the venvs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
STEP_TIMEOUT_S = 300.0

LIBRARY_DEPS = {"confluent-kafka", "rocksdict", "orjson", "pydantic"}
NOT_IN_THE_LIBRARY = {
    # the service's own
    "fastapi", "jinja2", "aiosmtpd", "pydantic-settings", "tzdata", "rich",
    # the library's extras
    "starlette", "uvicorn", "httpx", "prometheus-client",
}  # fmt: skip

LIBRARY_SMOKE = """
import sys
import streamtable as st
from streamtable.runtime.metrics import StreamsMetrics

builder = st.StreamsBuilder()
(
    builder.table("positions", key_serde=st.serde.STRING, value_serde=st.serde.JSON,
                  store="positions-store")
    .group_by(lambda key, pos: (pos["client"], 1))
    .count(store="counts")
)
with st.TopologyTestDriver(builder.build()) as driver:
    driver.input_topic("positions").pipe("p1", {"client": "c1"})
    driver.input_topic("positions").pipe("p2", {"client": "c1"})
    assert driver.key_value_store("counts").get("c1") == 2

metrics = StreamsMetrics("smoke")  # without prometheus-client: not recorded, no error
metrics.dlq_records.inc()
metrics.consumer_lag.labels("t", "0").set(3)
try:
    metrics.registry
except ModuleNotFoundError as exc:
    assert "streamtable[metrics]" in str(exc), exc
else:
    raise AssertionError("a registry without prometheus-client")
try:
    import streamtable.query
except ModuleNotFoundError as exc:
    assert "streamtable[query]" in str(exc), exc
else:
    raise AssertionError("streamtable.query imported without its extra")
loaded = sorted(m for m in ("fastapi", "starlette", "uvicorn", "httpx", "prometheus_client",
                            "rich", "jinja2") if m in sys.modules)
assert not loaded, loaded
print("library ok:", st.__file__)
"""


def _run(args: list[str], cwd: Path, timing: dict[str, float], step: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    started = time.monotonic()
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False
    )
    timing[step] = time.monotonic() - started
    assert done.returncode == 0, (
        f"{step}: {args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def _pip(venv: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args]


def _installed(venv: Path, cwd: Path, timing: dict[str, float], step: str) -> dict[str, str]:
    listed = json.loads(_run(_pip(venv, "list", "--format=json"), cwd, timing, step))
    return {p["name"].lower().replace("_", "-"): p["version"] for p in listed}


def test_wheels_install_alone_and_together(tmp_path: Path) -> None:
    timing: dict[str, float] = {}
    wheels = tmp_path / "wheels"
    for name, source in (("library", REPO), ("service", REPO / "service")):
        build = ["wheel", "--no-deps", "-q", "-w", str(wheels), str(source)]
        _run([sys.executable, "-m", "pip", *build], tmp_path, timing, f"build {name} wheel")
    library = next(wheels.glob("streamtable-*.whl"))
    service = next(wheels.glob("us_shareholders-*.whl"))

    alone = tmp_path / "library-venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(alone)], tmp_path, timing, "venv 1")
    _run(_pip(alone, "install", "-q", str(library)), tmp_path, timing, "install library")
    installed = _installed(alone, tmp_path, timing, "pip list 1")
    print("pip list of the library's venv:", json.dumps(installed, sort_keys=True))
    assert installed.keys() >= LIBRARY_DEPS
    assert not NOT_IN_THE_LIBRARY & installed.keys(), NOT_IN_THE_LIBRARY & installed.keys()
    out = _run([str(alone / "bin" / "python"), "-c", LIBRARY_SMOKE], tmp_path, timing, "smoke")
    assert "library ok: " + str(alone) in out

    both = tmp_path / "service-venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(both)], tmp_path, timing, "venv 2")
    _run(
        _pip(both, "install", "-q", "--find-links", str(wheels), str(service)),
        tmp_path, timing, "install service",
    )  # fmt: skip
    assert _installed(both, tmp_path, timing, "pip list 2").keys() >= {
        "streamtable", "us-shareholders", "fastapi", "uvicorn", "prometheus-client", "jinja2",
    }  # fmt: skip
    out = _run([str(both / "bin" / "us-shareholders"), "--help"], tmp_path, timing, "--help")
    assert out.startswith("usage: us-shareholders")
    print("timing (s):", {step: round(s, 1) for step, s in timing.items()})
