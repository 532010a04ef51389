"""Cost follows what is watched: the renderer, the whole pipeline and the gateways, scaled.

    .venv/bin/python -m bench.scaleout                     # every table, about 6 minutes
    .venv/bin/python -m bench.scaleout --quick             # small and short, about 2 minutes
    .venv/bin/python -m bench.scaleout --before /tmp/rtplot-before   # adds "before" rows

Four measurements, each on fresh processes and a private redis-server on loopback:

- **Renderer throughput**: symbol-renders a second of one ``rtplot renderer`` process,
  for 1-day and 7-day windows. The benchmark writes the minute in progress of its
  symbols, round-robin and as fast as it can, with the fetcher's own store, and reads
  the renderer's ``rtplot_renderer_renders_total`` and CPU; renders per CPU-second is
  what one core of renderer does.
- **The whole pipeline**: ``rtplot up``'s four services with 500 symbols of 7-day windows
  at 1 s ticks: how often each symbol's render advanced a second, the write -> publish
  lag from the renderer's own histogram, and each service's CPU.
- **Gateways**: 4 gateway processes and 200 symbols, each gateway's clients (a page, a
  figure-mode client and the article's client per symbol) watching a disjoint 50. A
  publisher sends every symbol's delta, figure and ``graph_plot`` once a second, either
  on python-socketio's single channel to stock python-socketio gateways (what every
  gateway received before channels per room) or on the rooms' own channels to rtplot's
  gateways: Redis output, and each gateway's messages received and CPU, in one run.
- **Redis traffic, 40 symbols ticking and one page watching one**: the whole pipeline
  with 7-day windows; Redis' own byte counters (``INFO stats``), in and out.

With ``--before PATH`` (a checkout of an earlier revision, for example
``git worktree add /tmp/rtplot-before ab8b614``), the renderer and the 40-symbol run are
also run from that tree, in the same run.
"""

import argparse
import asyncio
import re
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import redis

from bench import profiles
from bench.loadgen import Crowd, event_frame, socketio_url
from bench.render import NOW as RENDER_NOW
from bench.render import sample_delta, window_of
from common.bars import MINUTE, Bar
from common.contract.keys import Keys
from common.contract.packets import event_packet, figure_payload
from common.contract.rooms import Mode, Room
from common.contract.snapshots import read_newest
from common.messages import (
    PING_GRAPH,
    SUBSCRIBE,
    graph_plot_payload,
)
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from renderer.figure import encode
from renderer.views import default_figure
from rtplot.processes import Service, Stack, cpu_seconds, free_port

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = {"1 day": 390, "7 days": 10_080}


def symbols(count: int, prefix: str = "S") -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(count)]


def metric(url: str, name: str) -> float:
    """The sum of a Prometheus metric's samples (all labels) at ``url``."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


def histogram(url: str, name: str) -> list[tuple[float, float]]:
    """A Prometheus histogram's cumulative buckets: (upper bound, count so far)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [
        (float("inf") if le == "+Inf" else float(le), float(count))
        for le, count in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M)
    ]


def histogram_quantile(
    after: list[tuple[float, float]], before: list[tuple[float, float]], fraction: float
) -> float:
    """The upper bound of the bucket holding the ``fraction`` quantile (seconds) of what
    was observed between two readings of a histogram (start-up's renders left out)."""
    counts = dict(before)
    buckets = [(bound, count - counts.get(bound, 0.0)) for bound, count in after]
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= fraction * total:
            return bound
    return float("nan")


def preload(client: "redis.Redis", names: list[str], minutes: int, now: float) -> None:
    """Each symbol's whole window, written with the fetcher's store (one synthetic series
    for all of them: what a bar says costs a render nothing more)."""
    store = BarStore(client, Keys(), minutes)
    bars = SyntheticSource().fetch({"SRC": store.window_start(now)}, now).bars["SRC"]
    for name in names:
        store.upsert(name, bars, as_of=now, now=now)


class Mover(threading.Thread):
    """Writes the minute in progress of ``names`` round-robin, as fast as it can, until
    stopped: every write is a new version for the renderer."""

    def __init__(self, url: str, names: list[str], minutes: int, now: float) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.store = BarStore(self.client, Keys(), minutes)
        self.names, self.now = names, now
        self.stopping = threading.Event()
        self.writes = 0

    def run(self) -> None:
        minute = int(self.now) // MINUTE * MINUTE
        while not self.stopping.is_set():
            name = self.names[self.writes % len(self.names)]
            close = 100 + (self.writes % 97) / 100
            bar = Bar(minute, 100.0, 101.0, 99.0, close, self.writes)
            self.store.upsert(name, [bar], as_of=self.now + self.writes * 1e-6, now=self.now)
            self.writes += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.client.close()


# -- renderer throughput ----------------------------------------------------------------


@dataclass
class Throughput:
    tree: str  # "this" or the other tree's path
    window: str
    symbols: int
    seconds: float
    renders_per_s: float
    renderer_cpu: float  # % of a core
    renders_per_cpu_s: float  # what a core of renderer does
    writes_per_s: float


def renderer_throughput(
    window: str, count: int, seconds: float, tree: Path | None = None, profile: Path | None = None
) -> Throughput:
    """With ``profile``, py-spy samples the renderer while it renders and writes collapsed
    stacks there."""
    minutes = WINDOWS[window]
    names = symbols(count)
    now = time.time()
    with Stack(cwd=tree, window_minutes=minutes, log_level="WARNING") as stack:
        preload(stack.client, names, minutes, now)
        renderer = stack.start("renderer")
        stack.wait_snapshots(names, timeout=300)
        mover = Mover(stack.redis.url, names, minutes, now)
        renders_before = metric(renderer.url + "/metrics", "rtplot_renderer_renders_total")
        cpu_before, started = renderer.cpu_seconds(), time.monotonic()
        mover.start()
        sampler = profiles.record(renderer.pid, seconds, profile) if profile else None
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        renders = metric(renderer.url + "/metrics", "rtplot_renderer_renders_total")
        cpu = renderer.cpu_seconds() - cpu_before
        mover.stop()
        if sampler is not None:
            sampler.wait(60)
    done = renders - renders_before
    return Throughput(
        tree="this" if tree is None else str(tree),
        window=window,
        symbols=count,
        seconds=elapsed,
        renders_per_s=done / elapsed,
        renderer_cpu=cpu / elapsed * 100,
        renders_per_cpu_s=done / cpu if cpu else float("nan"),
        writes_per_s=mover.writes / elapsed,
    )


# -- the whole pipeline -----------------------------------------------------------------


@dataclass
class Pipeline:
    tree: str
    symbols: int
    window: str
    seconds: float
    advances_min: float  # the slowest symbol's renders per second
    advances_median: float
    lag_p50_ms: float  # write -> published, the renderer's histogram (bucket bound)
    lag_p99_ms: float
    cpu: dict[str, float]  # service -> % of a core
    redis_in_mb_s: float
    redis_out_mb_s: float


def whole_pipeline(
    count: int,
    window: str,
    seconds: float,
    tree: Path | None = None,
    viewer: bool = False,
    warmup: float = 10.0,
) -> Pipeline:
    """``rtplot up``'s services on ``count`` symbols; with ``viewer``, one page (a lean
    client in delta mode) watches the first symbol."""
    names = symbols(count)
    minutes = WINDOWS[window]
    settings: dict[str, Any] = {
        "symbols": ",".join(names),
        "max_symbols": count,
        "window_minutes": minutes,
        "fetch_interval": 1,
        "log_level": "WARNING",
    }
    with Stack(cwd=tree, **settings) as stack:
        # Written before the worker starts, so its first tick has no week to backfill.
        preload(stack.client, names, minutes, time.time())
        for name in ("worker", "beat", "renderer", "gateway"):
            stack.launch(name)
        stack.wait_healthy()
        stack.wait_snapshots(names, timeout=300)
        page = LeanPage(stack.services["gateway"].port, names[0]) if viewer else None
        time.sleep(warmup)  # ticks settle; the first whole figures are stored
        heads = _heads(stack.client, names)
        cpu = {name: s.cpu_seconds() for name, s in stack.services.items()}
        cpu["redis"] = cpu_seconds(stack.redis.pid)
        traffic = _traffic(stack.client)
        lag_url = stack.services["renderer"].url + "/metrics"
        lag_before = histogram(lag_url, "rtplot_renderer_lag_seconds")
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        after = _heads(stack.client, names)
        used = {name: s.cpu_seconds() for name, s in stack.services.items()}
        used["redis"] = cpu_seconds(stack.redis.pid)
        moved = _traffic(stack.client)
        lag_after = histogram(lag_url, "rtplot_renderer_lag_seconds")
        lag = [histogram_quantile(lag_after, lag_before, f) for f in (0.5, 0.99)]
        if page is not None:
            page.close()
    advances = sorted((after[n] - heads[n]) / elapsed for n in names)
    return Pipeline(
        tree="this" if tree is None else str(tree),
        symbols=count,
        window=window,
        seconds=elapsed,
        advances_min=advances[0],
        advances_median=advances[len(advances) // 2],
        lag_p50_ms=lag[0] * 1000,
        lag_p99_ms=lag[1] * 1000,
        cpu={name: (used[name] - cpu[name]) / elapsed * 100 for name in cpu},
        redis_in_mb_s=(moved[0] - traffic[0]) / elapsed / 1e6,
        redis_out_mb_s=(moved[1] - traffic[1]) / elapsed / 1e6,
    )


def _heads(client: "redis.Redis", names: list[str]) -> dict[str, int]:
    """Each symbol's newest render."""
    return {name: newest.head for name, newest in read_newest(client, Keys(), names).items()}


def _traffic(client: "redis.Redis") -> tuple[int, int]:
    """Bytes Redis has read from and written to its clients so far."""
    stats: dict[str, Any] = client.info("stats")
    return int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"])


class LeanPage:
    """One lean client in delta mode, in a thread of its own, counting what it gets."""

    def __init__(self, port: int | None, symbol: str) -> None:
        self.received = 0
        self.loop = asyncio.new_event_loop()
        frame = event_frame(
            SUBSCRIBE, orjson.dumps({"symbol": symbol, "updates": "delta"}).decode()
        )
        self.crowd = Crowd(socketio_url(port or 0), 1, lambda _i: [frame], self._count)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.crowd.connect(), self.loop).result(60)

    def _count(self, frame: str, received: float) -> None:
        self.received += 1

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.crowd.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


# -- gateways: one channel against a channel per room ------------------------------------


@dataclass
class Gateways:
    layout: str  # "single channel (stock python-socketio)" or "a channel per room"
    gateways: int
    symbols: int
    seconds: float
    redis_out_mb_s: float
    messages_per_gateway: list[float]  # a second, as Redis' PUBLISH counted receivers
    read_mb_s_per_gateway: list[float]  # what each gateway process read (/proc, rchar)
    cpu_per_gateway: list[float]  # % of a core
    delivered_per_s: float  # events the clients received, all gateways
    beyond_owner: int  # messages received by a gateway whose clients do not watch them
    unreceived: int  # messages no gateway received


def gateways_compared(count: int = 200, gateways: int = 4, seconds: float = 10.0) -> list[Gateways]:
    return [gateway_layout(single, count, gateways, seconds) for single in (True, False)]


def gateway_layout(single: bool, count: int, gateways: int, seconds: float) -> Gateways:
    names = symbols(count)
    share = count // gateways
    with Stack(log_level="WARNING", symbols=",".join(names), max_symbols=count) as stack:
        services = []
        for i in range(gateways):
            if single:
                port = free_port()
                command = (sys.executable, "-m", "bench.stock_gateway")
                args = (str(port), stack.redis.url)
                service = stack.launch(f"gateway-{i}", *args, command=command, port=port)
            else:
                service = stack.launch(f"gateway-{i}", "gateway")
            services.append(service)
        stack.wait_healthy()
        crowds = ClientsPerGateway(services, names, share)
        publisher = Publisher(stack.redis.url, names, single, share, gateways)
        cpu = [s.cpu_seconds() for s in services]
        read = [read_bytes(s.pid) for s in services]
        traffic = _traffic(stack.client)
        delivered = crowds.received
        started = time.monotonic()
        publisher.run_for(seconds)
        elapsed = time.monotonic() - started
        moved = _traffic(stack.client)
        cpu = [s.cpu_seconds() - c for s, c in zip(services, cpu, strict=True)]
        read = [read_bytes(s.pid) - r for s, r in zip(services, read, strict=True)]
        delivered = crowds.received - delivered
        crowds.close()
    return Gateways(
        layout="single channel (stock python-socketio)" if single else "a channel per room",
        gateways=gateways,
        symbols=count,
        seconds=elapsed,
        redis_out_mb_s=(moved[1] - traffic[1]) / elapsed / 1e6,
        messages_per_gateway=[m / elapsed for m in publisher.received],
        read_mb_s_per_gateway=[r / elapsed / 1e6 for r in read],
        cpu_per_gateway=[c / elapsed * 100 for c in cpu],
        delivered_per_s=delivered / elapsed,
        beyond_owner=publisher.beyond_owner,
        unreceived=publisher.unreceived,
    )


def read_bytes(pid: int) -> int:
    """Bytes a process has read so far, sockets included (/proc/PID/io, rchar)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


class ClientsPerGateway:
    """Per symbol, on the gateway that serves it: a page (deltas), a figure-mode client
    and the article's client."""

    def __init__(self, services: list[Service], names: list[str], share: int) -> None:
        self.received = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.crowds: list[Crowd] = []
        for g, service in enumerate(services):
            frames = [
                f for symbol in names[g * share : (g + 1) * share] for f in _subscribe(symbol)
            ]
            crowd = Crowd(socketio_url(service.port or 0), len(frames), _nth(frames), self._on)
            self.crowds.append(crowd)
            asyncio.run_coroutine_threadsafe(crowd.connect(), self.loop).result(120)

    def _on(self, frame: str, received: float) -> None:
        self.received += 1

    def close(self) -> None:
        for crowd in self.crowds:
            asyncio.run_coroutine_threadsafe(crowd.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _subscribe(symbol: str) -> list[str]:
    return [
        event_frame(SUBSCRIBE, orjson.dumps({"symbol": symbol, "updates": "delta"}).decode()),
        event_frame(SUBSCRIBE, orjson.dumps({"symbol": symbol}).decode()),
        event_frame(PING_GRAPH, orjson.dumps({"symbol": symbol}).decode()),
    ]


def _nth(frames: list[str]) -> Any:
    return lambda i: [frames[i]]


class Publisher:
    """Each symbol's delta, figure and graph_plot, once a second: as python-socketio's
    ``RedisManager.emit`` sends them on its one channel, or as rtplot's renderer does on
    the rooms' own channels. Counts, from PUBLISH's answers, what each gateway was sent."""

    def __init__(self, url: str, names: list[str], single: bool, share: int, gateways: int) -> None:
        self.client = redis.Redis.from_url(url)
        self.names, self.single, self.share = names, single, share
        self.received = [0] * gateways
        self.beyond_owner = 0  # per-room messages that reached more gateways than their own
        self.unreceived = 0  # per-room messages no gateway received
        self.figure = encode(default_figure("S", window_of(_one_day(), 2)))
        self.payload = figure_payload("S", "", 2, "bench", self.figure)
        self.delta = orjson.dumps(sample_delta())

    def messages(self, symbol: str) -> list[tuple[str, bytes]]:
        sent = [
            (Room(symbol, Mode.DELTA), self.delta),
            (Room(symbol, Mode.FIGURE), self.payload),
            (Room(symbol, Mode.ARTICLE), graph_plot_payload(self.figure)),
        ]
        if self.single:
            channel = Keys().socketio_channel
            return [(channel, _queue_message(r.event, r.name, data)) for r, data in sent]
        return [(Keys().channel(r), event_packet(r.event, data)) for r, data in sent]

    def run_for(self, seconds: float) -> None:
        started = time.monotonic()
        tick = 0
        while time.monotonic() - started < seconds:
            pipe = self.client.pipeline(transaction=False)
            owners = []
            for i, symbol in enumerate(self.names):
                for channel, message in self.messages(symbol):
                    pipe.publish(channel, message)
                    owners.append(i // self.share)
            for owner, receivers in zip(owners, pipe.execute(), strict=True):
                if self.single:  # one channel: every gateway gets every message
                    self.received = [count + 1 for count in self.received]
                elif receivers and owner < len(self.received):
                    self.received[owner] += 1
                    self.beyond_owner += receivers - 1
                else:
                    self.unreceived += 1
            tick += 1
            time.sleep(max(0.0, started + tick - time.monotonic()))
        self.client.close()


def _queue_message(event: str, room: str, data: bytes) -> bytes:
    """python-socketio's message-queue ``emit`` of one JSON argument to a room."""
    return (
        b'{"method":"emit","event":%b,"data":[%b],"binary":false,"namespace":"/",'
        b'"room":%b,"skip_sid":null,"callback":null,"host_id":"bench"}'
    ) % (orjson.dumps(event), data, orjson.dumps(room))


def _one_day() -> list[Bar]:
    since = int(RENDER_NOW) - 390 * 60 + 1
    return SyntheticSource().fetch({"S": since}, RENDER_NOW).bars["S"][-390:]


# -- report -----------------------------------------------------------------------------


@dataclass
class Report:
    throughput: list[Throughput]
    pipeline: Pipeline | None
    gateways: list[Gateways]
    traffic: list[Pipeline]  # 40 symbols, one page: this tree, then --before's if given


def run(quick: bool = False, before: Path | None = None, profile_dir: Path | None = None) -> Report:
    """Every measurement; with ``profile_dir``, py-spy profiles of the renderer on 7-day
    windows go there (``renderer-this.txt``, and ``renderer-before.txt`` with ``before``)."""
    seconds = 5.0 if quick else 15.0
    trees = [None] if before is None else [before, None]

    def profile(window: str, tree: Path | None) -> Path | None:
        if profile_dir is None or window != "7 days" or not profiles.available():
            return None
        return profile_dir / f"renderer-{'this' if tree is None else 'before'}.txt"

    throughput = [
        renderer_throughput(window, 20 if quick else 100, seconds, tree, profile(window, tree))
        for window in WINDOWS
        for tree in trees
    ]
    pipeline = None if quick else whole_pipeline(500, "7 days", 30.0)
    gateways = gateways_compared(40 if quick else 200, 4, seconds)
    traffic = [
        whole_pipeline(40, "7 days", seconds, tree, viewer=True, warmup=6.0) for tree in trees
    ]
    return Report(throughput, pipeline, gateways, traffic)


def targets(report: Report) -> list[tuple[str, str, bool]]:
    """Issue 11's targets against this run: (target, this run's figure, met)."""
    rows = []
    week = [t for t in report.throughput if t.window == "7 days" and t.tree == "this"]
    if week:
        rows.append(
            (
                "renderer: at least 500 symbol-renders/s on 7-day windows",
                f"{week[0].renders_per_s:,.0f}/s",
                week[0].renders_per_s >= 500,
            )
        )
    if report.pipeline is not None:
        p = report.pipeline
        rows += [
            (
                f"{p.symbols} symbols, 7-day windows: every figure advances 0.95 times a second",
                f"slowest {p.advances_min:.2f}/s",
                p.advances_min >= 0.95,
            ),
            (
                f"{p.symbols} symbols: write -> publish p99 under 250 ms",
                f"{p.lag_p99_ms:,.0f} ms",
                p.lag_p99_ms < 250,
            ),
        ]
    if len(report.gateways) == 2:
        single, rooms = report.gateways
        share = rooms.symbols // rooms.gateways
        own = 3 * share  # a delta, a figure and a graph_plot per symbol a second
        rows += [
            (
                f"each gateway receives only its own {share} symbols' messages",
                f"{max(rooms.messages_per_gateway):,.0f}/s at most (its own: {own}/s); "
                f"{rooms.beyond_owner} beyond their gateway",
                rooms.beyond_owner == 0 and max(rooms.messages_per_gateway) <= own * 1.05,
            ),
            (
                "Redis output at least 3.5x lower with a channel per room",
                f"{single.redis_out_mb_s / max(rooms.redis_out_mb_s, 1e-9):.1f}x",
                single.redis_out_mb_s >= 3.5 * rooms.redis_out_mb_s,
            ),
        ]
    now = [t for t in report.traffic if t.tree == "this"]
    if now:
        rows.append(
            (
                "Redis output at most 2 MB/s, 40 symbols ticking, one delta viewer",
                f"{now[0].redis_out_mb_s:.2f} MB/s",
                now[0].redis_out_mb_s <= 2,
            )
        )
    return rows


def markdown(report: Report) -> str:
    lines = ["## Cost follows what is watched", ""]
    lines += [
        "### Renderer throughput",
        "",
        "One `rtplot renderer` process, its symbols' minute in progress written round-robin "
        "as fast as the benchmark can (each write a new version), with the fetcher's store. "
        "*Renders per CPU-second* is what one core of renderer does; *renders/s* what it did "
        "here, sharing the machine with the writer and Redis.",
        "",
        "| code | window | symbols | renders/s | renderer CPU | renders per CPU-second "
        "| writes/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in report.throughput:
        lines.append(
            f"| {t.tree} | {t.window} | {t.symbols} | {t.renders_per_s:,.0f} | "
            f"{t.renderer_cpu:.0f} % | {t.renders_per_cpu_s:,.0f} | {t.writes_per_s:,.0f} |"
        )
    if report.pipeline is not None:
        p = report.pipeline
        lines += [
            "",
            "### The whole pipeline: 500 symbols, 7-day windows, 1 s ticks",
            "",
            "`rtplot up`'s four services on one machine (synthetic source, windows written "
            f"before the worker starts), measured for {p.seconds:.0f} s after a warm-up. "
            "*Advances*: a symbol's new renders a second (its snapshot's head); the lag is "
            "the renderer's own histogram, from the fetch to the delta published (upper "
            "bound of the bucket).",
            "",
            "| slowest symbol advances | median | lag p50 | lag p99 | "
            + " | ".join(f"{name} CPU" for name in p.cpu)
            + " |",
            "| ---: | ---: | ---: | ---: |" + " ---: |" * len(p.cpu),
            f"| {p.advances_min:.2f}/s | {p.advances_median:.2f}/s | {p.lag_p50_ms:.0f} ms | "
            f"{p.lag_p99_ms:.0f} ms | "
            + " | ".join(f"{cpu:.0f} %" for cpu in p.cpu.values())
            + " |",
        ]
    lines += [
        "",
        "### Gateways: one channel for everything against a channel per room",
        "",
        f"{report.gateways[0].gateways} gateway processes, {report.gateways[0].symbols} "
        "symbols, each gateway's clients (per symbol: a page, a figure-mode client and the "
        "article's client) watching a disjoint share. Every symbol's delta, a one-day figure "
        "(15 kB) and its `graph_plot` are published once a second; the single-channel "
        "gateways are stock python-socketio (`bench/stock_gateway.py`), which is what every "
        "gateway received before. *Messages* are what Redis sent each gateway (from "
        "PUBLISH's receiver counts); *read* what each gateway process read (/proc).",
        "",
        "| layout | Redis output | messages per gateway | read per gateway | CPU per gateway "
        "| received by a gateway not watching them |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for g in report.gateways:
        lines.append(
            f"| {g.layout} | {g.redis_out_mb_s:.2f} MB/s | "
            f"{'/'.join(f'{m:,.0f}' for m in g.messages_per_gateway)} /s | "
            f"{'/'.join(f'{r:.2f}' for r in g.read_mb_s_per_gateway)} MB/s | "
            f"{'/'.join(f'{c:.0f}' for c in g.cpu_per_gateway)} % | "
            + ("all (one channel)" if g.layout.startswith("single") else f"{g.beyond_owner:,}")
            + " |"
        )
    if len(report.gateways) == 2 and report.gateways[1].redis_out_mb_s:
        ratio = report.gateways[0].redis_out_mb_s / report.gateways[1].redis_out_mb_s
        lines += ["", f"Redis output is {ratio:.1f}x lower with a channel per room."]
    lines += [
        "",
        "### Redis traffic: 40 symbols ticking, one page watching one",
        "",
        "The whole pipeline with 7-day windows and one lean client subscribed in delta mode "
        "to one symbol; Redis' own byte counters (`INFO stats`).",
        "",
        "| code | Redis in | Redis out | renderer CPU | gateway CPU |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for run_ in report.traffic:
        lines.append(
            f"| {run_.tree} | {run_.redis_in_mb_s:.2f} MB/s | {run_.redis_out_mb_s:.2f} MB/s | "
            f"{run_.cpu['renderer']:.0f} % | {run_.cpu['gateway']:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and short")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier revision")
    parser.add_argument("--profile", type=Path, help="folder for the renderer's py-spy stacks")
    args = parser.parse_args()
    started = time.monotonic()
    report = run(args.quick, args.before, args.profile)
    print(markdown(report))
    for name, value, ok in targets(report):
        print(f"{'met' if ok else 'MISSED'}: {name}: {value}")
    print(orjson.dumps(asdict(report)).decode())
    print(f"bench.scaleout took {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
