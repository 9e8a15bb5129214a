from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No USH_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("USH_"):
            monkeypatch.delenv(name)
