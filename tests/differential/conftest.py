"""The Java Kafka Streams reference (bench/reference's DifferentialRunner), built once per
session, as a function from cases to results (see bench/reference/PROTOCOL.md)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "reference"

JavaRunner = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@pytest.fixture(scope="session")
def java_runner() -> JavaRunner:
    build = subprocess.run(
        ["bash", str(REFERENCE / "build.sh")], capture_output=True, text=True, check=False
    )
    if build.returncode != 0:
        pytest.fail(f"building the Java reference failed:\n{build.stderr[-3000:]}")
    deps = (REFERENCE / "target" / "classpath.txt").read_text().strip()
    classpath = f"{REFERENCE / 'target' / 'classes'}:{deps}"

    def run(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stdin = "".join(json.dumps(c) + "\n" for c in cases)
        done = subprocess.run(
            ["java", "-cp", classpath, "dev.streamtable.reference.DifferentialRunner"],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    return run
