"""``rtplot up``: the whole pipeline on one machine, as child processes.

Uses the Redis at RTPLOT_REDIS_URL, or, if none answers there and ``redis-server`` is
on PATH, a private one on a free port that lives and dies with this command.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from types import FrameType

import redis

from common.settings import Settings

SERVICES = ("worker", "beat", "renderer", "gateway")  # started in this order
STOP_GRACE = 10.0  # seconds a child gets to exit after SIGTERM
NO_REDIS = """\
rtplot up: no Redis answers at {url}, and redis-server is not on PATH to start one.
  Either install Redis (Debian/Ubuntu: sudo apt-get install redis-server;
  macOS: brew install redis) and run `rtplot up` again,
  or point RTPLOT_REDIS_URL at a Redis you have, e.g.
  RTPLOT_REDIS_URL=redis://my-redis:6379/0 rtplot up"""


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_argv(executable: str, port: int, directory: str, *extra: str) -> list[str]:
    """A redis-server on loopback that keeps nothing on disk, unless ``extra`` says so
    (later arguments win)."""
    return [
        executable,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        directory,
        *extra,
    ]


class PrivateRedis:
    """A throwaway redis-server for this run; its data goes with it."""

    def __init__(self, executable: str) -> None:
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="rtplot-redis-")
        self.process = subprocess.Popen(
            redis_argv(executable, self.port, self.dir.name),
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        while not redis_answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the private redis-server on port {self.port} did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        terminate([self.process])
        self.dir.cleanup()


def terminate(processes: list["subprocess.Popen[bytes]"], grace: float = STOP_GRACE) -> None:
    """SIGTERM to each, in order; whichever has not exited ``grace`` seconds later is
    killed."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, gateway: "subprocess.Popen[bytes]", timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and gateway.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


def up(settings: Settings) -> int:
    private: PrivateRedis | None = None
    env = dict(os.environ)
    if not redis_answers(settings.redis_url):
        executable = shutil.which("redis-server")
        if executable is None:
            print(NO_REDIS.format(url=settings.redis_url), file=sys.stderr)
            return 1
        private = PrivateRedis(executable)
        env["RTPLOT_REDIS_URL"] = private.url
        print(
            f"rtplot up: no Redis at {settings.redis_url}; started a private one at "
            f"{private.url} (its data is discarded on exit)",
            flush=True,
        )
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    page = f"http://{host}:{settings.port}/"
    children: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        for service in SERVICES:
            # Own session: Ctrl-C reaches only us, and we stop the children in order.
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "rtplot.cli", service], env=env, start_new_session=True
                )
            )
        if _wait_healthy(page + "healthz", children[-1]):
            print(
                f"\nrtplot is up ({settings.source} data): open {page}\nPress Ctrl-C to stop.\n",
                flush=True,
            )
        return _supervise(children)
    except _Stop:
        print("\nrtplot up: stopping...", file=sys.stderr, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        terminate(list(reversed(children)))
        if private is not None:
            private.stop()


def _supervise(children: list["subprocess.Popen[bytes]"]) -> int:
    """Wait until a child exits on its own: then the pipeline is broken, stop it all."""
    while True:
        for service, child in zip(SERVICES, children, strict=True):
            code = child.poll()
            if code is not None:
                print(
                    f"rtplot up: the {service} exited with status {code}; stopping",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
        time.sleep(0.5)
