"""deploy/compose.yaml: three instances with a broker, checked against the service's settings,
CLI and endpoints. (Not run here: no container engine on this machine.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import (
    CLEAN_CLOSE_S,
    DEPLOY,
    check_variables,
    get,
    load,
    parse_cli,
    service_api,
    yaml_documents,
)

pytestmark = pytest.mark.unit


def compose() -> dict[str, Any]:
    (doc,) = yaml_documents(DEPLOY / "compose.yaml")
    assert isinstance(doc, dict)
    return doc


def instances() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    return {name: svc for name, svc in services.items() if svc.get("command") == ["run"]}


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert duration, duration
    assert match, duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_three_instances_of_one_application() -> None:
    found = instances()
    assert len(found) == 3, sorted(found)
    ids = {svc["environment"]["USH_APPLICATION_ID"] for svc in found.values()}
    assert len(ids) == 1


def test_each_instance_advertises_its_service_name_and_has_its_own_state_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    volumes: set[str] = set()
    host_ports: set[str] = set()
    for name, svc in instances().items():
        env = svc["environment"]
        check_variables(env, name)
        settings = load(env, monkeypatch)
        assert settings.application_server == f"{name}:{settings.http_port}"
        assert settings.http_host == "0.0.0.0"
        (mount,) = svc["volumes"]
        volume, _, target = mount.partition(":")
        assert target == str(settings.state_dir)
        assert volume in compose()["volumes"], f"{name}: {volume} is not a named volume"
        volumes.add(volume)
        (port,) = svc["ports"]
        host, _, container = port.rpartition(":")
        assert int(container) == settings.http_port
        host_ports.add(host)
    assert len(volumes) == 3, volumes
    assert len(host_ports) == 3, host_ports


def test_instances_reach_the_broker_and_the_mail_sink_by_their_service_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    kafka = services["kafka"]["environment"]
    mail = " ".join(services["mail"]["entrypoint"])
    for name, svc in instances().items():
        settings = load(svc["environment"], monkeypatch)
        host, _, port = settings.bootstrap_servers.partition(":")
        assert host in services, f"{name}: bootstrap host {host} is not a service"
        assert f"PLAINTEXT://{settings.bootstrap_servers}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
        assert f":{port}" in kafka["KAFKA_LISTENERS"]
        assert settings.smtp_host in services
        assert f"0.0.0.0:{settings.smtp_port}" in mail
        depends = svc["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully"


def test_the_topics_job_is_a_cli_command_with_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topics = compose()["services"]["topics"]
    args = parse_cli(topics["command"])
    assert (args.command, args.action) == ("topics", "create")
    check_variables(topics["environment"], "topics")
    job = load(topics["environment"], monkeypatch)
    for svc in instances().values():
        settings = load(svc["environment"], monkeypatch)
        assert (settings.bootstrap_servers, settings.positions_topic, settings.clients_topic) == (
            job.bootstrap_servers,
            job.positions_topic,
            job.clients_topic,
        )


def test_stop_grace_covers_the_clean_close_on_sigterm() -> None:
    for name, svc in instances().items():
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM", name
        assert seconds(svc["stop_grace_period"]) >= CLEAN_CLOSE_S, name


def test_health_checks_ask_real_endpoints_on_the_served_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with service_api(tmp_path) as api:
        for name, svc in instances().items():
            settings = load(svc["environment"], monkeypatch)
            test = " ".join(svc["healthcheck"]["test"])
            urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/[a-z]+)", test)
            assert urls, f"{name}: {test}"
            for port, path in urls:
                assert int(port) == settings.http_port
                assert path == "/readyz", "readiness: running with the stores restored"
                assert get(api, path).status_code in (200, 503)
