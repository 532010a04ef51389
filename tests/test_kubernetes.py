"""deploy/kubernetes/, validated offline: no cluster runs here.

Every manifest passes ``kubernetes-validate --strict`` against Kubernetes 1.30, and the
kustomization renders (with kubectl, where it is installed). Then what the schema cannot
say: the probes, the autoscaler, the disruption budget, the drain before a gateway
stops, the non-root, read-only settings, and the agreement with the image, compose and
the services' own ports. (tests/test_compose_docker.py runs the image the way these pods
do: read-only root, /tmp writable, uid 10001, no capabilities.)
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.settings import METRICS_PORTS, Settings
from support import ROOT

HERE = ROOT / "deploy/kubernetes"
VERSION = "1.30.0"
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
SERVICES = ("beat", "worker", "renderer", "gateway", "stream")
OPTIONAL = {"ingress-nginx.yaml", "stream.yaml"}  # not in the kustomization: docs say when
PORTS = {**METRICS_PORTS, "gateway": 8000}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[Path]:
    return sorted(p for p in HERE.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for p in manifests() for d in documents(p)}


def deployment(name: str) -> dict[str, Any]:
    return resources()[("Deployment", name)]


def pod(name: str) -> dict[str, Any]:
    return dict(deployment(name)["spec"]["template"]["spec"])


def container(name: str) -> dict[str, Any]:
    (only,) = pod(name)["containers"]
    return dict(only)


def validate(*paths: Path | str, stdin: str | None = None) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [str(VALIDATE), "--strict", "--kubernetes-version", VERSION, *map(str, paths)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_manifest_validates_strictly_against_kubernetes_1_30() -> None:
    result = validate(*manifests())
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"passed for resource (\S+) against version 1\.30", result.stdout)
    assert len(passed) == len(resources()) == 12, result.stdout


def test_the_validator_is_strict_an_unknown_field_fails(tmp_path: Path) -> None:
    text = (HERE / "worker.yaml").read_text()
    broken = tmp_path / "worker.yaml"
    broken.write_text(
        text.replace("failureThreshold: 6", "failureThreshold: 6\n            retries: 3")
    )
    result = validate(broken)
    assert result.returncode != 0
    assert "'retries' was unexpected" in result.stdout + result.stderr


def test_the_kustomization_lists_every_manifest_but_the_optional_ingress() -> None:
    kustomization = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifests()} - OPTIONAL
    assert kustomization["namespace"] == resources()[("Namespace", "rtplot")]["metadata"]["name"]
    assert [image["name"] for image in kustomization["images"]] == ["rtplot"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_kustomization_renders_and_what_it_renders_validates() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(HERE)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert {d["metadata"].get("namespace", "rtplot") for d in docs} == {"rtplot"}
    images = {
        c["image"]
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/rtplot:0.1.0"}
    result = validate("-", stdin=rendered.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_service_runs_its_own_command_as_compose_does() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in SERVICES:
        assert container(name)["command"] == compose[name]["command"], name
        assert container(name)["image"] == "rtplot"
        selector = deployment(name)["spec"]["selector"]["matchLabels"]
        labels = deployment(name)["spec"]["template"]["metadata"]["labels"]
        assert (
            selector.items() <= labels.items() and selector["app.kubernetes.io/component"] == name
        )


def test_every_service_is_probed_on_its_own_healthz_and_scraped_there() -> None:
    for name in SERVICES:
        spec = container(name)
        (port,) = spec["ports"]
        assert port["containerPort"] == PORTS[name], name
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = spec[probe]["httpGet"]
            assert get["path"] == "/healthz" and get["port"] == port["name"], (name, probe)
        annotations = deployment(name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(PORTS[name])
        assert annotations["prometheus.io/path"] == "/metrics"
        env = {e["name"]: e["value"] for e in spec.get("env", [])}
        own = "RTPLOT_PORT" if name == "gateway" else "RTPLOT_METRICS_PORT"
        assert env[own] == str(PORTS[name])
    config = resources()[("ConfigMap", "rtplot")]["data"]
    assert config["RTPLOT_HOST"] == config["RTPLOT_METRICS_HOST"] == "0.0.0.0"
    assert config["RTPLOT_LOG_JSON"] == "true"


def test_the_gateway_scales_on_cpu_keeps_one_up_and_drains_before_it_stops() -> None:
    hpa = resources()[("HorizontalPodAutoscaler", "gateway")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    (metric,) = hpa["metrics"]
    assert (
        metric["resource"]["name"] == "cpu"
        and metric["resource"]["target"]["type"] == "Utilization"
    )
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert container("gateway")["resources"]["requests"]["cpu"]  # utilization needs it
    pdb = resources()[("PodDisruptionBudget", "gateway")]["spec"]
    assert (
        pdb["selector"]["matchLabels"] == deployment("gateway")["spec"]["selector"]["matchLabels"]
    )
    assert pdb["maxUnavailable"] == 1
    service = resources()[("Service", "gateway")]["spec"]
    assert service["selector"] == deployment("gateway")["spec"]["selector"]["matchLabels"]
    assert service["ports"][0]["targetPort"] == "http"
    # SIGTERM only after the endpoints forgot the pod; the gateway then stops within 5 s.
    (sleep, seconds) = container("gateway")["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep" and int(seconds) >= 5
    assert pod("gateway")["terminationGracePeriodSeconds"] >= int(seconds) + 5 + 5
    rollout = deployment("gateway")["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0


@pytest.mark.parametrize("name", ["beat", "stream"])
def test_the_beat_and_the_stream_run_an_active_and_a_standby(name: str) -> None:
    assert deployment(name)["spec"]["replicas"] == 2
    spread = pod(name)["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"


def test_every_pod_runs_as_the_images_user_read_only_and_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    for name in SERVICES:
        spec = pod(name)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == uid, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        context = container(name)["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        # The one writable place: /tmp, an emptyDir.
        (mount,) = container(name)["volumeMounts"]
        assert mount["mountPath"] == "/tmp"
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert "emptyDir" in volume


def test_redis_comes_from_the_secret_as_a_url_or_through_sentinel() -> None:
    secret = resources()[("Secret", "rtplot")]
    url = secret["stringData"]["RTPLOT_REDIS_URL"]
    sentinel = re.search(
        r"RTPLOT_REDIS_URL: (redis\+sentinel://\S+)", (HERE / "secret.yaml").read_text()
    )
    assert sentinel is not None
    for example in (url, sentinel.group(1)):
        assert Settings.from_env({"RTPLOT_REDIS_URL": example}).redis_url == example
    for name in SERVICES:
        sources = container(name)["envFrom"]
        assert {"secretRef": {"name": "rtplot"}} in sources
        assert {"configMapRef": {"name": "rtplot"}} in sources


def test_the_example_ingress_is_sticky_and_keeps_websockets_open() -> None:
    ingress = resources()[("Ingress", "rtplot")]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "gateway", "port": {"name": "http"}}
