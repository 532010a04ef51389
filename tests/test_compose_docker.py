"""``docker compose up``, for real: the project's Dockerfile and docker-compose.yml on a
Docker engine of the test's own (tests/docker_standins.py; docs/docker-test.md).

The public images they name are stood in for by images built here under the same tags,
since no registry is reachable; the project's own files are used unchanged. Grafana has
no stand-in and is left out of the run (tests/test_deploy.py checks its dashboard).
Skipped, saying why, where no Docker engine can start (not root, docker.io missing).
"""

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from docker_standins import (
    MIRROR,
    Engine,
    Unavailable,
    build_standins,
    public_images,
)

from support import ARTIFACTS, CLIENT_SOCKET_LEAK, ROOT, Listener, free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PROJECT = "rtplottest"
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = [
    name
    for name, service in yaml.safe_load(COMPOSE.read_text())["services"].items()
    if name != "grafana" and not service.get("profiles")  # stream: with its profile only
]
RTPLOT = {"worker": 9101, "beat": 9102, "renderer": 9103, "gateway": 8000}
TIMES: dict[str, float] = {}  # what each stage took, written to test-artifacts


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    try:
        engine = Engine(ARTIFACTS / "logs/dockerd.log").__enter__()
    except Unavailable as exc:
        pytest.skip(f"no Docker engine can start here: {exc}")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def images(engine: Engine) -> None:
    """The stand-ins (built once, kept in the engine's data root), then the project's
    image from its own Dockerfile, unchanged (``docker build``'s layer cache keeps a
    rebuild short)."""
    try:
        urllib.request.urlopen(f"{MIRROR}/dists/bookworm/Release", timeout=20).close()
    except OSError as exc:
        pytest.skip(f"the stand-in images need Debian's packages ({MIRROR}): {exc}")
    started = time.monotonic()
    try:
        build_standins(engine.docker)
    except Unavailable as exc:
        pytest.skip(str(exc))
    TIMES["stand-ins"] = time.monotonic() - started
    started = time.monotonic()
    engine.docker.build("rtplot:latest", ROOT)
    TIMES["rtplot image"] = time.monotonic() - started


class Compose:
    """docker-compose (Debian's 1.29) on the test's engine, with free host ports."""

    def __init__(self, engine: Engine) -> None:
        self.docker = engine.docker
        self.http_port, self.prometheus_port = free_port(), free_port()
        self.env = {
            **engine.docker.env,
            "RTPLOT_HTTP_PORT": str(self.http_port),
            "RTPLOT_PROMETHEUS_PORT": str(self.prometheus_port),
            "RTPLOT_GRAFANA_PORT": str(free_port()),
        }

    def __call__(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ["docker-compose", "--file", str(COMPOSE), "--project-name", PROJECT, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"docker-compose {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def up(self, *args: str) -> None:
        self("up", "--detach", "--no-build", *args, *SERVICES)

    def containers(self, service: str) -> list[str]:
        filters = [
            f"label=com.docker.compose.{k}" for k in (f"project={PROJECT}", f"service={service}")
        ]
        return self.docker("ps", "--quiet", *(f"--filter={f}" for f in filters)).split()

    def health(self, container: str) -> str:
        return self.docker("inspect", "--format", "{{.State.Health.Status}}", container).strip()

    def wait_healthy(self, service: str, count: int = 1, timeout: float = 120) -> list[str]:
        def healthy() -> list[str] | None:
            found = self.containers(service)
            good = [c for c in found if self.health(c) == "healthy"]
            return good if len(good) == count == len(found) else None

        return list(
            wait_until(healthy, timeout=timeout, interval=1, message=f"{count} healthy {service}")
        )

    def inside(self, container: str, url: str) -> dict[str, Any]:
        """A service's /healthz as its own healthcheck reads it, from inside."""
        return dict(json.loads(self.docker("exec", container, "rtplot", "healthcheck", url)))

    def clients(self, container: str) -> int:
        return int(self.inside(container, "http://127.0.0.1:8000/healthz")["clients"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def prometheus(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.prometheus_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["data"]

    def scraped(self) -> dict[str, list[str]]:
        """Each job's targets that Prometheus scraped successfully."""
        jobs: dict[str, list[str]] = {}
        for target in self.prometheus("/api/v1/targets")["activeTargets"]:
            if target["health"] == "up":
                jobs.setdefault(target["labels"]["job"], []).append(target["labels"]["instance"])
        return jobs


@pytest.fixture(scope="module")
def compose(engine: Engine, images: None) -> Iterator[Compose]:
    run = Compose(engine)
    run("down", "--volumes", "--remove-orphans")  # whatever an interrupted run left
    started = time.monotonic()
    try:
        run.up()
        replicas = yaml.safe_load(COMPOSE.read_text())["services"]["gateway"]["deploy"]["replicas"]
        for service in SERVICES:
            run.wait_healthy(service, replicas if service == "gateway" else 1)
        TIMES["compose up to healthy"] = time.monotonic() - started
        yield run
    finally:
        logs = subprocess.run(
            ["docker-compose", "-f", str(COMPOSE), "-p", PROJECT, "logs", "--no-color"],
            env=run.env,
            capture_output=True,
            text=True,
        )
        (ARTIFACTS / "logs/compose.log").write_text(logs.stdout + logs.stderr)
        run("down", "--volumes", "--remove-orphans")
        (ARTIFACTS / "docker-test-times.json").write_text(json.dumps(TIMES, indent=1))


def test_the_projects_dockerfile_builds_unchanged_on_the_stand_ins(
    engine: Engine, images: None
) -> None:
    docker = engine.docker
    for tag in public_images():
        if not tag.startswith("grafana/"):
            assert (
                docker(
                    "image",
                    "inspect",
                    "--format",
                    '{{index .Config.Labels "org.rtplot.standin"}}',
                    tag,
                ).strip()
                == tag
            )
    config = json.loads(docker("image", "inspect", "rtplot:latest"))[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Labels"]["org.opencontainers.image.title"] == "rtplot"
    version = docker(
        "run", "--rm", "rtplot:latest", "python", "-c", "import sys; print(*sys.version_info[:3])"
    )
    assert tuple(map(int, version.split())) >= (3, 11, 5)  # soupsieve's pin needs it
    assert "beat" in docker("run", "--rm", "rtplot:latest", "rtplot", "--help")


def test_every_service_comes_up_healthy(compose: Compose) -> None:
    assert set(SERVICES) == {"redis", "beat", "worker", "renderer", "gateway", "lb", "prometheus"}
    for service in SERVICES:
        for container in compose.containers(service):
            assert compose.health(container) == "healthy", service
    assert len(compose.containers("gateway")) == 2


def test_the_page_and_socketio_clients_work_through_haproxy(compose: Compose) -> None:
    with urllib.request.urlopen(compose.url + "/", timeout=10) as response:
        page = response.read().decode()
        cookie = response.headers.get("Set-Cookie", "")
    assert "<title>" in page and "socket.io" in page
    assert cookie.startswith("RTPLOT_GATEWAY=")  # HAProxy's stickiness
    websocket = Listener(compose.url)
    polling = Listener(compose.url, transports=["polling"])  # only works if sticky
    try:
        for listener in (websocket, polling):
            assert listener.call("subscribe", {"symbol": "AAPL"})["ok"]
        websocket.next("figure")  # the stored figure, up to a few seconds old
        live, _ = websocket.next("figure")
        for listener in (websocket, polling):
            update, _ = listener.next(
                "figure", timeout=15, where=lambda d: d["seq"] == live["seq"] + 2
            )
            assert update["symbol"] == "AAPL" and update["figure"]["data"]
    finally:
        websocket.close()
        polling.close()


def wait_scraped(compose: Compose, gateways: int) -> dict[str, list[str]]:
    """Until Prometheus scraped every service (its DNS discovery looks every 30 s)."""
    wanted = {"gateway": gateways, "worker": 1, "beat": 1, "renderer": 1, "lb": 1}

    def complete() -> dict[str, list[str]] | None:
        jobs = compose.scraped()
        return jobs if {job: len(jobs.get(job, [])) for job in wanted} == wanted else None

    return dict(wait_until(complete, timeout=90, interval=2, message=f"every target up: {wanted}"))


def test_prometheus_scrapes_every_service_and_loads_the_alerts(compose: Compose) -> None:
    wait_scraped(compose, gateways=2)
    rendered = compose.prometheus("/api/v1/query?query=rtplot_renderer_renders_total")["result"]
    assert float(rendered[0]["value"][1]) > 0
    groups = compose.prometheus("/api/v1/rules")["groups"]
    rules = yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())["groups"][0]["rules"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert loaded == {rule["alert"] for rule in rules} and len(loaded) >= 6


def test_the_image_runs_read_only_unprivileged_as_kubernetes_runs_it(compose: Compose) -> None:
    """Each service as deploy/kubernetes/ runs it: read-only root, /tmp writable, uid
    10001, no capabilities, no privilege escalation; its own key prefix on the same
    Redis, so it joins no pipeline of the deployment's."""
    docker = compose.docker
    names = [f"{PROJECT}-readonly-{service}" for service in RTPLOT]
    try:
        for (service, port), name in zip(RTPLOT.items(), names, strict=True):
            docker(
                "run", "--detach", "--name", name, "--network", f"{PROJECT}_default",
                "--read-only", "--tmpfs", "/tmp", "--user", "10001:10001",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--env", "RTPLOT_REDIS_URL=redis://:rtplot-local-only@redis:6379/1",
                "--env", "RTPLOT_KEY_PREFIX=readonly:",
                "--env", f"RTPLOT_METRICS_PORT={port}",
                "rtplot:latest", "rtplot", service,
            )  # fmt: skip
        for (service, port), name in zip(RTPLOT.items(), names, strict=True):

            def ok(name: str = name, port: int = port) -> bool:
                try:
                    return bool(compose.inside(name, f"http://127.0.0.1:{port}/healthz"))
                except (RuntimeError, ValueError):
                    return False

            wait_until(ok, timeout=60, interval=1, message=f"{service}, read-only, healthy")
    finally:
        for name in names:
            subprocess.run(["docker", "rm", "--force", name], env=docker.env, capture_output=True)


def test_three_gateways_are_balanced_by_haproxy_and_scraped(compose: Compose) -> None:
    compose.up("--scale", "gateway=3")
    gateways = compose.wait_healthy("gateway", 3)

    def active_servers() -> float:
        (lb,) = compose.containers("lb")
        text = compose.docker("exec", lb, "wget", "-qO-", "http://127.0.0.1:8404/metrics")
        for line in text.splitlines():
            if line.startswith("haproxy_backend_active_servers{") and 'proxy="gateways"' in line:
                return float(line.split()[-1])
        return 0.0

    wait_until(lambda: active_servers() == 3, timeout=30, interval=1, message="HAProxy sees 3")
    listeners = [Listener(compose.url) for _ in range(6)]
    try:
        counts = {g: compose.clients(g) for g in gateways}
        assert sorted(counts.values()) == [2, 2, 2], counts  # leastconn
    finally:
        for listener in listeners:
            listener.close()
    wait_scraped(compose, gateways=3)


@CLIENT_SOCKET_LEAK
def test_a_killed_gateway_container_hands_its_clients_to_the_others(compose: Compose) -> None:
    listeners = [Listener(compose.url) for _ in range(6)]
    try:
        for listener in listeners:
            listener.resubscribe_on_reconnect({"symbol": "TSLA"})
            assert listener.call("subscribe", {"symbol": "TSLA"})["ok"]
        before = {g: compose.clients(g) for g in compose.containers("gateway")}
        victim = max(before, key=lambda g: before[g])
        assert before[victim] >= 1
        sids = [listener.client.get_sid() for listener in listeners]
        compose.docker("kill", victim)  # restart: unless-stopped brings it back later
        killed = time.monotonic()

        def moved() -> bool:
            others = [g for g in compose.containers("gateway") if g != victim]
            return sum(compose.clients(g) for g in others) == len(listeners)

        wait_until(moved, timeout=30, interval=0.5, message="every client on the other gateways")
        recovery = time.monotonic() - killed
        moved_clients = sum(
            listener.client.get_sid() != sid for listener, sid in zip(listeners, sids, strict=True)
        )
        assert moved_clients == before[victim]
        latest = max(d["seq"] for e, d, _ in listeners[0].received if e == "figure")
        for listener in listeners:
            update, _ = listener.next("figure", timeout=15, where=lambda d: d["seq"] > latest + 1)
            assert update["symbol"] == "TSLA"
        TIMES["killed gateway: clients moved"] = recovery
    finally:
        for listener in listeners:
            listener.close()
