"""deploy/Dockerfile: parsed and held to the service's real port, settings, endpoints and CLI.
(Not built here: no container engine on this machine.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.deploy.support import (
    DEPLOY,
    check_variables,
    entry_point,
    get,
    load,
    parse_cli,
    service_api,
)

pytestmark = pytest.mark.unit


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "a continuation line at the end of the Dockerfile"
    parsed = []
    for line in joined:
        name, _, args = line.partition(" ")
        parsed.append((name.upper(), args.strip()))
    return parsed


def of(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def final_stage() -> list[tuple[str, str]]:
    all_ = instructions()
    last_from = max(i for i, (name, _) in enumerate(all_) if name == "FROM")
    return all_[last_from:]


def env_of_final_stage() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in final_stage():
        if name == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec form: {args}"
    return [str(v) for v in value]


def test_multi_stage_and_the_runtime_stage_copies_only_the_built_environment() -> None:
    froms = of("FROM")
    assert len(froms) >= 2
    assert re.search(r"\bAS build\b", froms[0], flags=re.IGNORECASE)
    copies = [args for name, args in final_stage() if name == "COPY"]
    assert copies, "the runtime stage copies nothing"
    assert all(args.startswith("--from=build ") for args in copies), copies
    builds = " ".join(of("RUN"))
    assert "./service" in builds, "the build stage does not build the service's distribution"


def test_runs_as_a_non_root_user() -> None:
    users = [args for name, args in final_stage() if name == "USER"]
    assert users, "no USER in the runtime stage: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric uid lets runAsNonRoot check it (Kubernetes)"


def test_the_state_dir_is_a_volume_and_the_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of_final_stage()
    check_variables(env, "Dockerfile ENV")
    settings = load(env, monkeypatch)
    volumes = [v for args in of("VOLUME") for v in exec_form(args)]
    assert str(settings.state_dir) in volumes
    assert settings.state_dir.is_absolute()
    assert settings.http_host == "0.0.0.0"
    assert of("EXPOSE") == [str(settings.http_port)]


def test_entrypoint_is_the_cli_and_the_command_is_one_it_accepts() -> None:
    (entrypoint,) = of("ENTRYPOINT")
    assert exec_form(entrypoint) == [entry_point()]
    (cmd,) = of("CMD")
    assert parse_cli(exec_form(cmd)).command == "run"
    assert of("STOPSIGNAL") == ["SIGTERM"]


def test_healthcheck_asks_a_real_endpoint_on_the_served_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (check,) = of("HEALTHCHECK")
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/[a-z]+)", check)
    assert urls, check
    settings = load(env_of_final_stage(), monkeypatch)
    with service_api(tmp_path) as api:
        for port, path in urls:
            assert int(port) == settings.http_port
            assert path == "/healthz"
            # Not started: 503, but a real route (a typo would be 404).
            assert get(api, path).status_code in (200, 503)


def test_the_build_context_lets_through_what_the_build_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, "the whole repository (.venv, .cache) would be sent as the context"
    sources = [
        src.rstrip("/")
        for name, args in instructions()
        if name == "COPY" and not args.startswith("--from=")
        for src in args.split()[:-1]
    ]
    assert sources
    assert set(sources) <= allowed, sorted(set(sources) - allowed)
