"""What the deployment files are checked against: the service's real settings, CLI and API."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from us_shareholders import cli, logs
from us_shareholders.config import ENV_PREFIX, ServiceSettings
from us_shareholders.service import Service

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# The clean close on SIGTERM: app.close (60 s), the delivery worker (30 s), the HTTP server
# (10 s), the requests producer's flush (10 s); see Service._stop_sidecars.
CLEAN_CLOSE_S = 110


def cli_only_variables() -> set[str]:
    """``USH_*`` variables the CLI reads itself (not settings): found in its source."""
    return set(re.findall(r'os\.environ\.get\("(USH_[A-Z_]+)"', inspect.getsource(cli)))


def known_variable(name: str) -> bool:
    if not name.startswith(ENV_PREFIX):
        return False
    field = name[len(ENV_PREFIX) :].lower()
    return (
        field in ServiceSettings.model_fields
        or (name.startswith(f"{ENV_PREFIX}KAFKA__") and len(name) > len(f"{ENV_PREFIX}KAFKA__"))
        or name in cli_only_variables()
    )


def check_variables(env: Mapping[str, str], where: str) -> None:
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and not known_variable(k))
    assert not unknown, f"{where}: USH_* variables that the service does not read: {unknown}"


def load(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """The settings a process started with exactly ``env``'s USH_* variables gets (validated);
    the CLI-only ones (log level and format) are checked as the CLI checks them."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, str(value))
    if "USH_LOG_LEVEL" in env:
        assert str(env["USH_LOG_LEVEL"]).strip().upper() in logs.LEVELS
    if "USH_LOG_FORMAT" in env:
        assert str(env["USH_LOG_FORMAT"]).strip().lower() in logs.FORMATS
    return ServiceSettings()


def parse_cli(args: list[str]) -> Any:
    """The CLI's own parser: a command line in a deployment file must be one it accepts."""
    return cli._parser().parse_args(args)


def entry_point() -> str:
    """The console script the service's distribution installs."""
    text = (REPO / "service" / "pyproject.toml").read_text()
    match = re.search(r'^(\S+) = "us_shareholders\.cli:main"$', text, flags=re.MULTILINE)
    assert match, "service/pyproject.toml has no us_shareholders.cli:main script"
    return match.group(1)


def yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@contextmanager
def service_api(tmp_path: Path) -> Iterator[Any]:
    """The real service's ASGI app (with its metrics registry), not started: no broker is
    needed to ask it for its routes and /metrics."""
    settings = ServiceSettings(
        bootstrap_servers="127.0.0.1:9",  # never contacted: nothing is started
        state_dir=tmp_path / "state",
    )
    service = Service(settings)
    try:
        yield service.http.config.app
    finally:
        service.app.close()
        service.requests.close()


def get(api: Any, path: str) -> httpx.Response:
    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://instance") as client:
            return await client.get(path)

    return asyncio.run(ask())
