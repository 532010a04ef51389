"""``rtplot up``: the whole pipeline on one machine, as child processes.

Uses the Redis at RTPLOT_REDIS_URL, or, if none answers there and ``redis-server`` is
on PATH, a private one on a free port that lives and dies with this command.

It speaks like a tool: what it starts and where, the URL to open, then a summary line
now and then (read from the services' own /metrics), and the services' warnings and
errors. Each service's whole log goes to a file; RTPLOT_LOG_LEVEL=DEBUG shows all of it.
A service that dies is named, with the end of its log, and everything stops.
"""

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.parser import text_string_to_metric_families

from common.connection import is_sentinel
from common.logs import line_level
from common.settings import METRICS_PORTS, Settings
from rtplot.processes import RedisServer, Service, free_port, http_ok, redis_answers, terminate

SERVICES = ("worker", "beat", "renderer", "gateway")  # started in this order
STREAM_SERVICES = ("worker", "beat", "stream", "renderer", "gateway")  # RTPLOT_STREAM set
START_TIMEOUT = 60.0  # seconds for every service to answer /healthz before a warning
SUMMARY_EVERY = 10.0  # seconds between looks at the metrics
SUMMARY_QUIET = 60.0  # the longest a summary waits while only the rate changes
TAIL_LINES = 20  # of a dead service's log
NO_REDIS = """\
rtplot up: no Redis answers at {url}, and redis-server is not on PATH to start one.
  Either install Redis (Debian/Ubuntu: sudo apt-get install redis-server;
  macOS: brew install redis) and run `rtplot up` again,
  or point RTPLOT_REDIS_URL at a Redis you have, e.g.
  RTPLOT_REDIS_URL=redis://my-redis:6379/0 rtplot up"""

NO_SENTINEL = """\
rtplot up: no Redis primary answers through the sentinels at {url}.
  rtplot up starts a private Redis only in place of a single server, never in place of
  a Sentinel set: check that the sentinels run and know the service name in the URL
  (docs/sentinel.md), or unset RTPLOT_REDIS_URL to use a private Redis."""

PORT_TAKEN = """\
rtplot up: {host}:{port} is in use (another rtplot up?): stop what uses it, or choose
  another port for the page, e.g. RTPLOT_PORT=8001 rtplot up"""


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


def say(message: str, out: TextIO | None = None) -> None:
    print(message, file=out or sys.stdout, flush=True)


def up(settings: Settings) -> int:
    if not _port_free(settings.host, settings.port):
        say(PORT_TAKEN.format(host=settings.host, port=settings.port), sys.stderr)
        return 1
    env = dict(os.environ)  # the user's own RTPLOT_* settings are the children's
    private: RedisServer | None = None
    children: list[Service] = []
    log_dir: Path | None = None
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    code = 1
    try:
        redis_url = settings.redis_url
        answered = redis_answers(redis_url)
        if not answered and is_sentinel(redis_url):
            # The user asked for a replicated Redis: a private one would silently lose
            # every guarantee they set it up for.
            say(NO_SENTINEL.format(url=redacted(redis_url)), sys.stderr)
            return 1
        if not answered:
            executable = shutil.which("redis-server")
            if executable is None:
                say(NO_REDIS.format(url=redacted(redis_url)), sys.stderr)
                return 1
            private = RedisServer(executable=executable).start()  # its data goes with it
            env["RTPLOT_REDIS_URL"] = redis_url = private.url
            say(
                f"rtplot up: no Redis at {redacted(settings.redis_url)}; started a private "
                f"one at {private.url} (its data is discarded on exit)"
            )
        services = services_for(settings)
        say(
            f"rtplot up: starting {', '.join(services[:-1])} and {services[-1]} on "
            f"{redacted(redis_url)} ({settings.source} data: {', '.join(settings.symbols)})"
        )
        log_dir = Path(tempfile.mkdtemp(prefix="rtplot-up-"))
        ports = metrics_ports(settings)
        for name in services:
            own = {} if name == "gateway" else {"RTPLOT_METRICS_PORT": str(ports[name])}
            children.append(Service(name, [name], {**env, **own}, log_dir=log_dir))
        code = Supervisor(settings, children, ports, log_dir).run()
    except _Stop:
        say("\nrtplot up: stopping...", sys.stderr)
        code = 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        terminate(child.process for child in reversed(children))
        if private is not None:
            private.cleanup()
        if log_dir is not None and code == 0:
            shutil.rmtree(log_dir, ignore_errors=True)
        elif log_dir is not None:
            say(f"rtplot up: the services' logs are kept in {log_dir}", sys.stderr)
    return code


def redacted(url: str) -> str:
    """The URL without its password: it is printed, and terminals are shared."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the services do
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def services_for(settings: Settings) -> tuple[str, ...]:
    """The services ``rtplot up`` runs: the stream's too when RTPLOT_STREAM is on."""
    return STREAM_SERVICES if settings.stream else SERVICES


def metrics_ports(settings: Settings) -> dict[str, int]:
    """Where worker, beat, renderer (and stream) serve /metrics: their defaults (9101 to
    9104), or RTPLOT_METRICS_PORT and those after it; a free port instead of one taken,
    so two of them, or another program, never make a service fail to start."""
    ports = {"gateway": settings.port}
    host = "" if settings.metrics_host in ("0.0.0.0", "::") else settings.metrics_host
    base = settings.metrics_port
    background = ["worker", "beat", "renderer", *(["stream"] if settings.stream else [])]
    for offset, name in enumerate(background):
        wanted = METRICS_PORTS[name] if base is None else base + offset
        ports[name] = wanted if _port_free(host, wanted) else free_port()
    return ports


@dataclass
class Tail:
    """What a service wrote to its log file, read as it comes, and passed on if it is a
    warning, an error (or their continuation lines), or anything at DEBUG."""

    service: Service
    show_all: bool
    shown: bool = True  # whether the last record's lines are passed on
    _offset: int = 0
    _partial: bytes = b""

    def lines(self) -> list[str]:
        path = self.service.log_path
        assert path is not None
        with path.open("rb") as log:
            log.seek(self._offset)
            data = self._partial + log.read()
        self._offset += len(data) - len(self._partial)
        *complete, self._partial = data.split(b"\n")
        return [line.decode(errors="replace").rstrip("\r") for line in complete]

    def pump(self, out: TextIO) -> None:
        name = self.service.name
        for line in self.lines():
            level = line_level(line)
            if level is not None:
                self.shown = self.show_all or level >= logging.WARNING
            if self.shown and line.strip():
                # A log record names its service; a warning or a traceback does not.
                named = line.startswith("{") or name in line.split(" ", 3)[:3]
                say(line if named else f"{name} | {line}", out)


@dataclass
class Rates:
    """The last totals read from the services, to turn counters into rates."""

    at: float = 0.0
    renders: float | None = None
    printed_at: float = 0.0
    printed: tuple[float, float, float, float] | None = None
    missing: set[str] = field(default_factory=set)


class Supervisor:
    def __init__(
        self, settings: Settings, children: list[Service], ports: dict[str, int], log_dir: Path
    ) -> None:
        self.children = children
        self.tails = [Tail(child, show_all=settings.log_level == "DEBUG") for child in children]
        host = _loopback(settings.host)
        metrics_host = _loopback(settings.metrics_host)
        self.page = f"http://{host}:{settings.port}/"
        self.source = settings.source
        self.log_dir = log_dir
        self.urls = {
            name: (self.page if name == "gateway" else f"http://{metrics_host}:{port}/")
            for name, port in ports.items()
        }
        self.rates = Rates()

    def run(self) -> int:
        started = time.monotonic()
        waiting = list(self.children)
        next_summary: float | None = None  # once every service is healthy
        while True:
            for child in self.children:
                if not child.alive():
                    return self.died(child)
            for tail in self.tails:
                tail.pump(sys.stderr)
            for child in list(waiting):
                if http_ok(self.urls[child.name] + "healthz"):
                    waiting.remove(child)
                    if child.name == "gateway":
                        self.announce()
            now = time.monotonic()
            if next_summary is None and (not waiting or now - started > START_TIMEOUT):
                if waiting:
                    names = ", ".join(child.name for child in waiting)
                    say(f"rtplot up: still waiting for {names} to be healthy", sys.stderr)
                self.summary(now)  # the first reading: rates start here
                next_summary = now + SUMMARY_EVERY
            elif next_summary is not None and now >= next_summary:
                self.summary(now)
                next_summary = now + SUMMARY_EVERY
            time.sleep(0.2)

    def announce(self) -> None:
        say(f"\nrtplot is up ({self.source} data): open {self.page}")
        say(
            f"Press Ctrl-C to stop. Logs: {self.log_dir}/ (RTPLOT_LOG_LEVEL=DEBUG shows them all)\n"
        )

    def died(self, child: Service) -> int:
        status = child.process.returncode
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        lines = child.log().splitlines()[-TAIL_LINES:]
        say(f"rtplot up: the {child.name} {how}; the last lines of its log:", sys.stderr)
        for line in lines:
            say(f"  {child.name} | {line}", sys.stderr)
        say("rtplot up: stopping the other services", sys.stderr)
        return 1

    def summary(self, now: float) -> None:
        """A line with symbols, updates per second, clients and errors (and the history
        still to fill, while there is some), when one of them changed or SUMMARY_QUIET
        has passed; a service whose /metrics does not answer is named instead."""
        read = {name: scrape(url + "metrics") for name, url in self.urls.items()}
        silent = {name for name, samples in read.items() if samples is None}
        if silent - self.rates.missing:
            say(f"rtplot up: no answer from the /metrics of {', '.join(sorted(silent))}")
        self.rates.missing = silent
        # Each from its own service: the beat exports the fetcher's families too.
        worker, renderer, gateway = (read[name] or {} for name in ("worker", "renderer", "gateway"))
        renders = renderer.get("rtplot_renderer_renders_total", 0.0)
        rate = None
        if self.rates.renders is not None and now > self.rates.at:
            rate = max(renders - self.rates.renders, 0.0) / (now - self.rates.at)
        self.rates.renders, self.rates.at = renders, now
        symbols = worker.get("rtplot_fetcher_tracked_symbols", 0.0)
        clients = gateway.get("rtplot_gateway_clients", 0.0)
        errors = worker.get("rtplot_fetcher_ticks_total{outcome=error}", 0.0) + renderer.get(
            "rtplot_renderer_publish_errors_total", 0.0
        )
        # (symbol, resolution) pairs of history still to fill: shown while there are any
        filling = worker.get("rtplot_fetcher_history_pending", 0.0)
        state = (symbols, clients, errors, filling)
        if rate is None or (
            state == self.rates.printed and now - self.rates.printed_at < SUMMARY_QUIET
        ):
            return
        self.rates.printed, self.rates.printed_at = state, now
        say(
            f"{time.strftime('%H:%M:%S')}  {symbols:.0f} symbols · {rate:.1f} updates/s · "
            f"{_plural(clients, 'client')} · {_plural(errors, 'error')}"
            + (f" · history: {filling:.0f} to fill" if filling else "")
        )


def _plural(count: float, noun: str) -> str:
    return f"{count:.0f} {noun}{'' if count == 1 else 's'}"


def scrape(url: str) -> dict[str, float] | None:
    """A /metrics page's samples, by name and labels (``name{label=value}``); None if it
    does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            name = f"{sample.name}{{{labels}}}" if labels else sample.name
            samples[name] = samples.get(name, 0.0) + sample.value
    return samples
