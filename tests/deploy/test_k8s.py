"""deploy/k8s/*.yaml: a StatefulSet with a volume claim per pod, a headless Service giving each
pod the stable name it advertises, readiness on /readyz, a PodDisruptionBudget and SIGTERM
grace for the clean close. (Not applied here: no cluster on this machine.)"""

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


def objects() -> list[dict[str, Any]]:
    found = [
        doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml_documents(path)
    ]
    assert all(isinstance(doc, dict) and "kind" in doc for doc in found)
    return found


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    matching = [o for o in objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(matching) == 1, f"{kind} {name}: {len(matching)} found"
    return matching[0]


def statefulset() -> dict[str, Any]:
    return one("StatefulSet")


def container() -> dict[str, Any]:
    (only,) = statefulset()["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def pod_labels() -> dict[str, str]:
    labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    assert isinstance(labels, dict)
    return labels


def environment(pod: str, namespace: str) -> dict[str, str]:
    """The container's USH_* environment as Kubernetes expands it for pod ``pod``."""
    env: dict[str, str] = {}
    for ref in container().get("envFrom", []):
        env.update(one("ConfigMap", ref["configMapRef"]["name"])["data"])
    values = {"POD_NAME": pod, "POD_NAMESPACE": namespace}
    for item in container()["env"]:
        if "value" in item:
            # $(VAR) refers only to variables defined earlier in the list, as in Kubernetes.
            env[item["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), item["value"]
            )
        elif "fieldRef" in item["valueFrom"]:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in {"metadata.name", "metadata.namespace"}, path
        else:
            env[item["name"]] = "from-a-secret"
    return env


def test_everything_lives_in_one_namespace_that_is_defined() -> None:
    namespaces = {o["metadata"].get("namespace") for o in objects() if o["kind"] != "Namespace"}
    assert namespaces == {one("Namespace")["metadata"]["name"]}


def test_settings_are_real_and_load_for_each_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    sts = statefulset()
    namespace = sts["metadata"]["namespace"]
    headless = one("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    for ordinal in range(sts["spec"]["replicas"]):
        pod = f"{sts['metadata']['name']}-{ordinal}"
        env = environment(pod, namespace)
        check_variables(env, pod)
        settings = load(env, monkeypatch)
        stable_name = f"{pod}.{headless['metadata']['name']}.{namespace}.svc.cluster.local"
        assert settings.application_server == f"{stable_name}:{settings.http_port}"
        assert settings.http_host == "0.0.0.0"
        assert ports["http"] == settings.http_port
        mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
        claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
        state = [name for name, path in mounts.items() if path == str(settings.state_dir)]
        assert state, "the state dir is not mounted"
        assert state[0] in claims, "the state dir is not on the pod's volume claim"


def test_probes_ask_real_endpoints_on_the_served_port(tmp_path: Path) -> None:
    probes = {kind: container()[kind] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    with service_api(tmp_path) as api:
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container()[kind]["httpGet"]
            assert probe["port"] in ports or probe["port"] in ports.values(), kind
            assert get(api, probe["path"]).status_code in (200, 503), kind


def test_services_and_the_disruption_budget_select_the_pods() -> None:
    labels = pod_labels()
    assert statefulset()["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for svc in (o for o in objects() if o["kind"] == "Service"):
        assert svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]
        (port,) = svc["spec"]["ports"]
        assert port["targetPort"] in {p["name"] for p in container()["ports"]}
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_grace_covers_the_clean_close_and_the_pod_runs_as_non_root() -> None:
    spec = statefulset()["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= CLEAN_CLOSE_S
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert parse_cli(container()["args"]).command == "run"
