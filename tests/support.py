"""Test helpers: the pipeline as processes (rtplot.processes), Socket.IO listeners."""

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import socketio

from common.contract.keys import Keys
from rtplot.processes import RedisServer, Setting, Stack, clean_env, free_port

__all__ = ["RedisServer", "free_port"]  # re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent

# Where a test kills servers or has them close connections: its own python-socketio
# clients (websocket-client underneath) leave the socket of a connection the server ended
# to the garbage collector. That leak is theirs, not rtplot's.
CLIENT_SOCKET_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
ARTIFACTS = ROOT / "test-artifacts"
# A tick a second over a day's window: an update every second, and small figures.
# No drain on SIGTERM (tests/test_drain.py has one): each test stops its gateways at once.
TEST_SETTINGS: dict[str, Setting] = {"fetch_interval": 1, "window_minutes": 390, "drain_seconds": 0}


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


def service_env(redis_url: str, **settings: Setting) -> dict[str, str]:
    """What a test's service runs with: the test settings, then ``settings``."""
    return clean_env(redis_url=redis_url, **{**TEST_SETTINGS, **settings})


class Pipeline(Stack):
    """A Stack with the test settings, its logs kept in test-artifacts/logs, and a look
    into what the services stored."""

    def __init__(self, *redis_args: str, **settings: Setting) -> None:
        super().__init__(
            *redis_args, log_dir=ARTIFACTS / "logs", cwd=ROOT, **{**TEST_SETTINGS, **settings}
        )

    def url(self, service: str) -> str:
        return self.services[service].url

    def snapshot_seq(self, symbol: str) -> int:
        """The seq of the figure stored for subscribers; 0 while there is none, or while
        Redis is down."""
        return self._snapshot_field(symbol, "seq")

    def rendered_seq(self, symbol: str) -> int:
        """The seq of the newest render, which the stored figure may trail by a few
        seconds (RTPLOT_SNAPSHOT_EVERY); 0 as for ``snapshot_seq``."""
        return self._snapshot_field(symbol, "head")

    def _snapshot_field(self, symbol: str, field: str) -> int:
        try:
            return int(self.client.hget(Keys().snapshot(symbol), field) or 0)
        except redis.RedisError:
            return 0

    def snapshot(self, symbol: str) -> dict[str, Any]:
        raw = self.client.hget(Keys().snapshot(symbol), "payload")
        assert isinstance(raw, bytes)
        return dict(orjson.loads(raw))

    def bars(self, symbol: str) -> list[float]:
        """The minutes stored, in epoch seconds."""
        return [
            score for _, score in self.client.zrange(Keys().bars(symbol), 0, -1, withscores=True)
        ]


@contextmanager
def running(
    *services: str | Sequence[str], redis_args: Sequence[str] = (), **settings: Setting
) -> Iterator[Pipeline]:
    """A redis-server of its own and these services on it, each healthy, for a test or a
    module. A service is its name where that is its command too (``"worker"``), or
    ``(name, *args)``. Everything is stopped on the way out, also when a start fails; a
    service that exited unasked during the tests fails them, with its log."""
    with Pipeline(*redis_args, **settings) as pipeline:
        for service in services:
            name, *args = (service,) if isinstance(service, str) else service
            pipeline.launch(name, *args)
        pipeline.wait_healthy()
        yield pipeline
        pipeline.check_alive()


def replication(port: int, password: str) -> dict[str, Any]:
    """A Redis' ``INFO replication`` (role, master_link_status...), {} while it does not
    answer."""
    client = redis.Redis(port=port, password=password, socket_timeout=1)
    try:
        return dict(client.info("replication"))
    except redis.RedisError:
        return {}
    finally:
        client.close()


def record_reliability(table: str, row: dict[str, Any]) -> None:
    """A row for docs/reliability.md (python -m tests.reliability_report)."""
    path = ARTIFACTS / "reliability" / f"{table}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(row) + "\n")


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
        """Disconnects, or stops reconnecting: one left trying would go on connecting,
        to a server long gone, during later tests."""
        self.client.shutdown()
