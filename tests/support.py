"""Test helpers: a private redis-server, service processes, Socket.IO listeners."""

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import socketio

from rtplot.up import free_port, redis_argv

__all__ = ["free_port"]  # re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent

# Where a test kills servers or has them close connections: its own python-socketio
# clients (websocket-client underneath) leave the socket of a connection the server ended
# to the garbage collector. That leak is theirs, not rtplot's.
CLIENT_SOCKET_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
ARTIFACTS = ROOT / "test-artifacts"


def wait_until(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class RedisServer:
    """A redis-server of our own on a free port, which tests may stop and restart."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="rtplot-test-redis-")
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            redis_argv("redis-server", self.port, self.dir, *self.extra),
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), message=f"redis-server on port {self.port}")
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pings(client: "redis.Redis") -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Service:
    """One ``rtplot <command>`` process, logging to test-artifacts/logs/."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        logs = ARTIFACTS / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.env = env
        self.log_path = logs / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rtplot.cli", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return int(self.process.returncode)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def record_reliability(table: str, row: dict[str, Any]) -> None:
    """A row for docs/reliability.md (python -m tests.reliability_report)."""
    path = ARTIFACTS / "reliability" / f"{table}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(row) + "\n")


def service_env(redis_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPLOT_")}
    env.update(
        {
            "RTPLOT_REDIS_URL": redis_url,
            "RTPLOT_FETCH_INTERVAL": "1",
            "RTPLOT_WINDOW_MINUTES": "390",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"RTPLOT_{k.upper()}": v for k, v in settings.items()})
    return env


def wait_http_ok(url: str, timeout: float = 30) -> None:
    import urllib.request

    def ok() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(ok, timeout=timeout, interval=0.1, message=url)


class Listener:
    """A real python-socketio client that records every event it receives."""

    def __init__(self, url: str, transports: list[str] | None = None) -> None:
        self.client = socketio.Client(reconnection=True, reconnection_delay=0.2)
        self.events: queue.Queue[tuple[str, Any, float]] = queue.Queue()
        self.received: list[tuple[str, Any, float]] = []
        self._lock = threading.Lock()
        self.client.on("*", self._record)
        self.client.connect(url, transports=transports or ["websocket"], wait_timeout=10)

    def resubscribe_on_reconnect(self, payload: dict[str, Any]) -> None:
        """What the page does: subscribe again after every reconnect."""
        self.client.on("connect", lambda: self.client.emit("subscribe", payload))

    def _record(self, event: str, data: Any = None) -> None:
        item = (event, data, time.monotonic())
        with self._lock:
            self.received.append(item)
        self.events.put(item)

    def call(self, event: str, data: Any) -> Any:
        return self.client.call(event, data, timeout=10)

    def next(
        self, event: str, timeout: float = 10, where: Callable[[Any], bool] | None = None
    ) -> tuple[Any, float]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} event within {timeout}s")
            try:
                name, data, at = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if name == event and (where is None or where(data)):
                return data, at

    def close(self) -> None:
        self.client.disconnect()
