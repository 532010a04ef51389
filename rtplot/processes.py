"""rtplot's services as child processes on one machine: a private redis-server, services
with their output in a log file, and a stack of both that stops whatever it started.

``rtplot up``, the end-to-end tests and the benchmarks all start their processes here.
Children get a session of their own: a Ctrl-C at the terminal reaches only the parent,
which stops them in order.
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

import redis

from common.connection import answers
from common.contract.keys import Keys

RTPLOT = (sys.executable, "-m", "rtplot.cli")  # this interpreter: no console script needed
STOP_GRACE = 10.0  # seconds a child gets to exit after SIGTERM
START_TIMEOUT = 60.0  # seconds to answer /healthz: a cold start imports Celery and pandas
LOG_TAIL = 2000  # characters of a log quoted when a process fails

Setting = str | int | float


class ProcessFailed(RuntimeError):
    """A child exited, or never became healthy; the message ends with its log's tail."""


def clean_env(**settings: Setting) -> dict[str, str]:
    """This process's environment without any RTPLOT_* variable, so a developer's own
    settings never reach a child, plus ``settings`` by name: ``port=8001`` is
    ``RTPLOT_PORT=8001``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPLOT_")}
    env.update({f"RTPLOT_{name.upper()}": str(value) for name, value in settings.items()})
    return env


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FREE_PORT_SPAN = 12_000  # ports below the ephemeral range free_port picks among
_PICK = random.SystemRandom()  # not the random module's state, which tests may seed


def free_port() -> int:
    """A loopback port free now, from below the kernel's ephemeral range (another process
    may take it before the child binds, rarely). Not one the kernel hands out itself:
    every outgoing connection's local port comes from that range, so in a busy test run a
    client could take such a port between this call and the child's bind."""
    low = _ephemeral_low()
    for _ in range(100):
        port = _PICK.randrange(max(1024, low - FREE_PORT_SPAN), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # all taken: what the kernel offers
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def redis_answers(url: str) -> bool:
    return answers(url)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:  # not listening yet, or a 503 (HTTPError) while it connects
        return False


def terminate(processes: Iterable["subprocess.Popen[bytes]"], grace: float = STOP_GRACE) -> None:
    """SIGTERM to each, in order; whichever has not exited ``grace`` seconds later is
    killed. All get the same grace, at once, so stopping many takes one grace at most."""
    processes = list(processes)
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


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far (its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its children not included).

    /proc/PID/stat counts in the kernel's 10 ms ticks, too coarse for a gateway that
    relays a short run's updates in less than one; each live thread's schedstat gives its
    run time in nanoseconds. A thread that has exited is only in the ticks, so the larger of
    the two is the better reading."""
    ticks = sum(cpu_times(pid))
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
        ran = sum(int((thread / "schedstat").read_text().split()[0]) for thread in threads)
    except (OSError, ValueError, IndexError):  # exited, or a kernel without schedstat
        return ticks
    return max(ticks, ran / 1e9)


def rss_kb(pid: int) -> int:
    """Resident memory of a live process; ProcessLookupError once it has exited (a
    zombie has no memory left to report)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ProcessLookupError(pid)


class RedisServer:
    """A redis-server of our own on a free loopback port. It keeps nothing on disk unless
    ``extra`` arguments say so (``"--appendonly", "yes"``: later arguments win). Stopped,
    it starts again on the same port and directory, so an AOF is replayed; ``cleanup``
    stops it and deletes the directory."""

    def __init__(self, *extra: str, executable: str = "redis-server") -> None:
        self.executable = executable
        self.extra = extra
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="rtplot-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def argv(self) -> list[str]:
        return [
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir),
            *("--save", "", "--appendonly", "no"),
            *self.extra,
        ]

    def start(self, timeout: float = 10.0) -> Self:
        self.process = subprocess.Popen(
            self.argv(), stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not redis_answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ProcessFailed(f"the private redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None:
            terminate([self.process])

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *_: object) -> None:
        self.cleanup()


class Service:
    """One child process: ``command`` (``rtplot``, by default) with ``args``. Its output
    goes to a new file in ``log_dir``, or, without one, to this process's own output, as
    ``rtplot up`` shows it. ``port`` is where it serves /healthz, if known."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        log_dir: Path | None = None,
        command: Sequence[str] = RTPLOT,
        cwd: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.command, self.args = tuple(command), tuple(args)
        self.env = dict(env)
        self.cwd, self.port = cwd, port
        self.stopped = False  # stopped or killed on purpose: no failure if it is gone
        self.log_path: Path | None = None
        if log_dir is None:
            self.process = self._popen(None)
            return
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        # Unbuffered: a log read after a crash, or while waiting, holds all it wrote.
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        with self.log_path.open("wb") as log:  # the child holds its own descriptor
            self.process = self._popen(log)

    def _popen(self, log: IO[bytes] | None) -> "subprocess.Popen[bytes]":
        return subprocess.Popen(
            [*self.command, *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=None if log is None else subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        """Its HTTP root on loopback: /healthz and /metrics (the page, for a gateway)."""
        assert self.port is not None, f"{self.name} has no known port"
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return "" if self.log_path is None else self.log_path.read_text(errors="replace")

    def failure(self, what: str) -> ProcessFailed:
        tail = self.log()[-LOG_TAIL:]
        return ProcessFailed(f"{self.name} {what}" + (f"; its log ends:\n{tail}" if tail else ""))

    def check_alive(self) -> None:
        if not self.alive():
            raise self.failure(f"exited with status {self.process.returncode}")

    def wait_healthy(self, url: str | None = None, timeout: float = START_TIMEOUT) -> None:
        """Until ``url`` (default: its own /healthz) answers 200; fails as soon as the
        process exits, or at ``timeout``."""
        url = url or self.url + "/healthz"
        deadline = time.monotonic() + timeout
        while not http_ok(url):
            self.check_alive()
            if time.monotonic() > deadline:
                raise self.failure(f"did not answer {url} within {timeout:g} s")
            time.sleep(0.1)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL if it has not exited ``grace`` seconds later; the exit
        status."""
        self.stopped = True
        terminate([self.process], grace)
        return int(self.process.returncode)

    def kill(self) -> int:
        self.stopped = True
        self.process.kill()
        return self.process.wait()

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        return rss_kb(self.pid)


class Stack:
    """A private redis-server and named rtplot services on it, every one with ``settings``
    (RTPLOT_* by name) and a /healthz port of its own: RTPLOT_PORT for a gateway (its
    name, up to a ``-``, or its first argument is ``gateway``), RTPLOT_METRICS_PORT for
    the others, unless the settings name one. Services start in the order launched and
    are waited healthy; ``close`` stops them in reverse order, then Redis. As a context
    manager, a start that fails stops everything started before it."""

    def __init__(
        self,
        *redis_args: str,
        log_dir: Path | None = None,
        cwd: Path | None = None,
        grace: float = STOP_GRACE,
        **settings: Setting,
    ) -> None:
        self.redis = RedisServer(*redis_args)
        self.client = redis.Redis.from_url(self.redis.url)  # connects on first use
        self.settings = settings
        self.cwd, self.grace = cwd, grace
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if log_dir is None:  # a scratch folder, kept until close to explain failures
            self._scratch = tempfile.TemporaryDirectory(prefix="rtplot-logs-")
            log_dir = Path(self._scratch.name)
        self.log_dir = log_dir
        self.services: dict[str, Service] = {}
        self._unconfirmed: list[Service] = []

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self) -> Self:
        """Starts Redis; ``close`` must follow, whatever happens next."""
        try:
            self.redis.start()
        except BaseException:
            self.close()
            raise
        return self

    def env(self, **settings: Setting) -> dict[str, str]:
        return clean_env(redis_url=self.redis.url, **{**self.settings, **settings})

    def launch(
        self, name: str, /, *args: str, command: Sequence[str] = RTPLOT, **settings: Setting
    ) -> Service:
        """Starts ``rtplot <args>`` (default: ``rtplot <name>``) or ``command <args>``
        without waiting for it (see ``wait_healthy``)."""
        args = args or (name,)
        own = "port" if "gateway" in (name.split("-")[0], args[0]) else "metrics_port"
        settings.setdefault(own, free_port())
        service = Service(
            name,
            args,
            self.env(**settings),
            log_dir=self.log_dir,
            command=command,
            cwd=self.cwd,
            port=int(settings[own]),
        )
        self.services[name] = service
        self._unconfirmed.append(service)
        return service

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Every service launched since the last wait, in launch order."""
        while self._unconfirmed:
            self._unconfirmed[0].wait_healthy(timeout=timeout)
            self._unconfirmed.pop(0)

    def start(
        self, name: str, /, *args: str, command: Sequence[str] = RTPLOT, **settings: Setting
    ) -> Service:
        service = self.launch(name, *args, command=command, **settings)
        self.wait_healthy()
        return service

    def restart(self, name: str) -> Service:
        """The service stopped if it still runs, then started again: same arguments,
        settings and ports."""
        old = self.services[name]
        old.stop(self.grace)
        new = Service(
            name,
            old.args,
            old.env,
            log_dir=self.log_dir,
            command=old.command,
            cwd=old.cwd,
            port=old.port,
        )
        self.services[name] = new
        self._unconfirmed.append(new)
        self.wait_healthy()
        return new

    def check_alive(self) -> None:
        """Fails, with its log, if a service exited without being stopped."""
        for service in self.services.values():
            if not service.stopped:
                service.check_alive()

    def wait_snapshots(self, symbols: Iterable[str], timeout: float = START_TIMEOUT) -> None:
        """Until the renderer has stored a figure of every symbol (default key prefix)."""
        keys = [Keys().snapshot(symbol) for symbol in symbols]
        deadline = time.monotonic() + timeout
        while self.client.exists(*keys) < len(keys):
            self.check_alive()
            if time.monotonic() > deadline:
                raise ProcessFailed(f"no snapshot of every symbol within {timeout:g} s")
            time.sleep(0.1)

    def close(self) -> None:
        """Every service (SIGTERM in reverse order, a grace, then SIGKILL), then Redis."""
        terminate([s.process for s in reversed(self.services.values())], self.grace)
        for service in self.services.values():
            service.stopped = True
        self.client.close()
        self.redis.cleanup()
        if self._scratch is not None:
            self._scratch.cleanup()
