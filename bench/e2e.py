"""End to end: from a bar written to Redis to a client's receipt, under load.

    .venv/bin/python -m bench.e2e                      # 1,000 and 5,000 clients, both modes
    .venv/bin/python -m bench.e2e --quick              # 1,000 clients, asyncio, ~20 s
    .venv/bin/python -m bench.e2e --clients 2000 --seconds 10 --repeats 3 --modes asyncio

Each run starts a private redis-server, ``rtplot renderer`` and one ``rtplot gateway`` on
loopback, backfills a day (390 bars) of synthetic bars for 20 symbols, and connects N
lean clients (bench.loadgen) subscribed round-robin in delta mode, as the page does. The
benchmark then plays the fetcher: once a second it writes the minute in progress of every
symbol with the fetcher's own store (``BarStore.upsert``: the Lua upsert that bumps the
version and appends the change notice the renderer reads), noting ``time.time()`` just
before each write. The renderer publishes that version as the delta's ``seq``, so each
``bars`` event a client receives is matched to the writes it carries (``base_seq + 1 ..
seq``; more than one when the renderer coalesced a burst) and each gives a latency.

The writer is a subprocess of its own, so neither its CPU nor its GIL is the load
generator's. It also listens on the Socket.IO Redis channel and notes when each delta is
published, which splits every latency in two: write -> on the queue (the renderer's
part, Redis included) and queue -> client (the gateway's, and the load generator's).

Clients connect in waves of WAVE, each wave waiting for its snapshots. Connected all at
once (200 handshakes in flight), the asyncio gateway refuses some subscribes with
"temporarily unavailable": each subscribe awaits a Redis read, and redis-py's asyncio pool
(100 connections by default) raises "Too many connections" instead of waiting for one.
"""

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import redis

from bench import profiles
from bench.loadgen import Crowd, cpu_seconds, event_frame, percentile, self_cpu, socketio_url
from common.bars import MINUTE, floor_minute
from common.keys import Keys
from common.messages import BARS, FIGURE, SUBSCRIBE
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from rtplot.up import PrivateRedis, free_port, terminate

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = [f"SYM{i:02d}" for i in range(20)]
WINDOW_MINUTES = 390  # "a day": the benchmarks' 1-day window
WARMUP_TICKS = 2  # writes before the measured ones: first renders and sends are slower
START_TIMEOUT = 60.0  # seconds for a service, the snapshots or the writer to be ready
WAVE = 100  # clients connecting at once (see connect_in_waves)
WAVE_TIMEOUT = 10.0  # seconds for a wave's snapshots to arrive
DRAIN_SECONDS = 5.0  # most time given to the last writes to arrive after writing stops
STOP_GRACE = 10.0
BUSY_MACHINE = 25.0  # % of a core used by others in a run: worth a warning under the table

Write = tuple[str, int, float]  # (symbol, version written, time.time() just before)
Receipt = tuple[str, int, int, float]  # (symbol, base_seq, seq, time.time() at receipt)
Published = dict[tuple[str, int], float]  # (symbol, seq) -> when its delta hit the queue


@dataclass
class RunResult:
    """One run: one mode, one client count, one repeat. Times in ms, CPU in % of a core."""

    mode: str
    clients: int
    connected: int  # clients that sent their subscribe
    subscribed: int  # clients that received their snapshot
    seconds: float
    p50_ms: float  # write -> client
    p99_ms: float
    max_ms: float
    queue_p50_ms: float  # write -> the delta published on the Socket.IO queue
    queue_p99_ms: float
    relay_p50_ms: float  # the queue -> client
    relay_p99_ms: float
    deliveries: int  # (client, write) pairs delivered, each with a latency
    expected: int  # (client, write) pairs that should have been delivered
    delivered_share: float
    delivered_per_s: float
    coalesced: int  # bars events carrying more than one write (renderer fell behind)
    unmatched: int  # versions received that no write of ours made (must be 0)
    renderer_cpu: float
    gateway_cpu: float
    redis_cpu: float
    writer_cpu: float  # this benchmark's stand-in for the fetcher
    loadgen_cpu: float
    other_cpu: float  # the rest of the machine: anything else running skews the figures
    latencies_ms: list[float] = field(default_factory=list, repr=False)


@dataclass
class ResultRow:
    """The median over ``repeats`` runs of one mode and client count; ``runs`` keeps each
    run (and its raw latencies, for distribution plots)."""

    mode: str
    clients: int
    seconds: float
    repeats: int
    connected: int  # the fewest connected in any run
    subscribed: int  # the fewest given their snapshot in any run
    p50_ms: float
    p99_ms: float
    max_ms: float
    queue_p50_ms: float
    queue_p99_ms: float
    relay_p50_ms: float
    relay_p99_ms: float
    delivered_per_s: float
    delivered_share: float  # the lowest of the runs
    renderer_cpu: float
    gateway_cpu: float
    redis_cpu: float
    writer_cpu: float
    loadgen_cpu: float
    other_cpu: float
    runs: list[RunResult] = field(default_factory=list, repr=False)

    @property
    def latencies_ms(self) -> list[float]:
        """Every run's latencies, pooled."""
        return [latency for run in self.runs for latency in run.latencies_ms]


# -- the writer subprocess: the fetcher's part, and a probe on the queue -----------------


def write_tick(store: BarStore, source: SyntheticSource, symbols: Sequence[str]) -> list[Write]:
    """What a fetch tick does to the store: the minute in progress (and the one before,
    which changes at a minute's turn) upserted symbol by symbol."""
    now = time.time()
    fetched = source.fetch({s: floor_minute(now) - MINUTE for s in symbols}, now)
    writes: list[Write] = []
    for symbol in symbols:
        written = time.time()
        outcome = store.upsert(symbol, fetched.bars[symbol], as_of=now, now=now)
        if outcome.changed or outcome.trimmed:  # only then is there a new version
            writes.append((symbol, outcome.version, written))
    return writes


class QueueProbe(threading.Thread):
    """Notes when each ``bars`` message appears on the Socket.IO Redis channel, as the
    gateways receive it. Figure messages (15 KB) are only searched, never parsed, so the
    probe holds the writer's GIL for microseconds at a time and barely delays a write."""

    MARK = f'"event":"{BARS}"'.encode()

    def __init__(self, redis_url: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(Keys().socketio_channel)
        self.stopping = threading.Event()
        self.published: Published = {}

    def wait_subscribed(self) -> None:
        for _ in range(50):  # bounded: 50 x 0.1 s
            message = self.pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "subscribe":
                return
        raise RuntimeError("the queue probe could not subscribe")

    def run(self) -> None:
        while not self.stopping.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None or message["type"] != "message":
                continue
            received = time.time()
            if self.MARK in message["data"]:
                delta = orjson.loads(message["data"])["data"][0]
                self.published.setdefault((delta["symbol"], int(delta["seq"])), received)

    def close(self) -> None:
        """Idempotent; once it returns, ``published`` no longer changes."""
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=STOP_GRACE)
        self.pubsub.close()
        self.client.close()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.flush()


def writer_main() -> None:
    """``python -c 'from bench.e2e import writer_main; writer_main()' REDIS_URL``

    Says ``ready``, reads ``{start, ticks, warmup}``, writes a tick a second on the wall
    clock from ``start``, waits (bounded) for the last deltas on the queue, then answers
    ``{writes, published, cpu}`` (cpu: seconds spent on the measured ticks)."""
    redis_url = sys.argv[1]
    client = redis.Redis.from_url(redis_url)
    probe = QueueProbe(redis_url)
    try:
        store = BarStore(client, Keys(), WINDOW_MINUTES)
        source = SyntheticSource()
        source.fetch({s: floor_minute(time.time()) for s in SYMBOLS}, time.time())  # caches
        probe.wait_subscribed()
        probe.start()
        _say({"ready": True})
        order = orjson.loads(sys.stdin.buffer.readline())
        writes: list[Write] = []
        cpu_start = self_cpu()
        for tick in range(order["ticks"]):
            time.sleep(max(0.0, order["start"] + tick - time.time()))
            if tick == order["warmup"]:
                cpu_start = self_cpu()
            writes += write_tick(store, source, SYMBOLS)
        cpu = self_cpu() - cpu_start
        # The renderer may coalesce writes, but the last of each symbol is always published.
        last = {(symbol, version) for symbol, version, _at in writes}
        last = {(s, v) for s, v in last if (s, v + 1) not in last}
        deadline = time.monotonic() + DRAIN_SECONDS
        while not last <= probe.published.keys() and time.monotonic() < deadline:
            time.sleep(0.05)
        probe.close()
        published = [[s, seq, at] for (s, seq), at in probe.published.items()]
        _say({"writes": writes, "published": published, "cpu": cpu})
    finally:
        probe.close()
        client.close()


class Writer:
    """The writer subprocess, spoken to in JSON lines. Started first, so it imports while
    the clients connect."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: IO[bytes]) -> None:
        self.process = process
        self.stderr = stderr

    @classmethod
    async def launch(cls, redis_url: str) -> "Writer":
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from bench.e2e import writer_main; writer_main()",
            redis_url,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=2**26,  # its one answer holds every write of the run
        )
        return cls(process, stderr)

    async def ready(self) -> None:
        await self._receive(START_TIMEOUT)

    def start(self, at: float, ticks: int, warmup: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps({"start": at, "ticks": ticks, "warmup": warmup}))
        self.process.stdin.write(b"\n")

    async def result(self, timeout: float) -> tuple[list[Write], Published, float]:
        answer = await self._receive(timeout)
        writes = [(str(s), int(v), float(at)) for s, v, at in answer["writes"]]
        published = {(str(s), int(seq)): float(at) for s, seq, at in answer["published"]}
        return writes, published, float(answer["cpu"])

    async def _receive(self, timeout: float) -> Any:
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        if not line:
            self.stderr.seek(0)
            errors = self.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the writer process stopped answering:\n{errors}")
        return orjson.loads(line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_GRACE)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.stderr.close()


# -- the clients' side ----------------------------------------------------------------


class Receipts:
    """Records each ``bars`` event's symbol and seqs with its receipt time. Deltas are a
    few hundred bytes, so parsing them costs little; the snapshot ``figure`` sent on
    subscribe (15 KB) is only counted, never parsed."""

    BARS_PREFIX = f'42["{BARS}",'
    FIGURE_PREFIX = f'42["{FIGURE}",'

    def __init__(self) -> None:
        self.deltas: list[Receipt] = []
        self.figures = 0
        self.per_seq: Counter[tuple[str, int]] = Counter()

    def on_event(self, frame: str, received: float) -> None:
        if frame.startswith(self.BARS_PREFIX):
            delta = orjson.loads(frame[len(self.BARS_PREFIX) : -1])
            symbol, seq = delta["symbol"], int(delta["seq"])
            base = delta.get("base_seq")
            self.deltas.append((symbol, seq - 1 if base is None else int(base), seq, received))
            self.per_seq[(symbol, seq)] += 1
        elif frame.startswith(self.FIGURE_PREFIX):
            self.figures += 1


def subscribe_frames(i: int) -> list[str]:
    """Client i watches one symbol, round-robin, in delta mode like the page."""
    payload = {"symbol": SYMBOLS[i % len(SYMBOLS)], "updates": "delta"}
    return [event_frame(SUBSCRIBE, orjson.dumps(payload).decode())]


@dataclass
class Matched:
    latencies: list[float]  # seconds, one per (client, measured write) delivered
    to_queue: list[float]  # of those: write -> published (when the probe saw it)
    from_queue: list[float]  # ... and published -> received
    coalesced: int
    unmatched: int


def match(
    receipts: Sequence[Receipt],
    writes: Sequence[Write],
    measured_from: float,
    published: Published | None = None,
) -> Matched:
    """A receipt of ``seq`` over ``base_seq`` delivers every version in between; each
    written at or after ``measured_from`` gives one latency, split in two where the
    probe saw the delta published. A version no write made (or a receipt timed before
    its write) is counted as unmatched."""
    written = {(symbol, version): at for symbol, version, at in writes}
    published = published or {}
    result = Matched([], [], [], 0, 0)
    for symbol, base, seq, received in receipts:
        result.coalesced += seq - base > 1
        on_queue = published.get((symbol, seq))
        for version in range(base + 1, seq + 1):
            at = written.get((symbol, version))
            if at is None or received <= at:
                result.unmatched += 1
            elif at >= measured_from:
                result.latencies.append(received - at)
                if on_queue is not None:
                    result.to_queue.append(on_queue - at)
                    result.from_queue.append(received - on_queue)
    return result


async def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition`` held within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def sleep_until(wall_time: float) -> None:
    await asyncio.sleep(max(0.0, wall_time - time.time()))


# -- the services -----------------------------------------------------------------------


class Service:
    """One ``rtplot`` subprocess; stderr kept in a temporary file to explain a failure."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.name = " ".join(args)
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rtplot.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )

    def wait_healthy(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:  # not listening yet, or 503 while it connects
                time.sleep(0.1)
        raise RuntimeError(f"rtplot {self.name} did not come up:\n{self.errors()}")

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        terminate([self.process], grace=STOP_GRACE)
        self.stderr.close()


def service_env(redis_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPLOT_")}
    env.update(
        {
            "RTPLOT_REDIS_URL": redis_url,
            "RTPLOT_SYMBOLS": ",".join(SYMBOLS),
            "RTPLOT_WINDOW_MINUTES": str(WINDOW_MINUTES),
            "RTPLOT_PORT": str(port),
            "RTPLOT_METRICS_PORT": str(free_port()),
            "RTPLOT_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def backfill(client: "redis.Redis") -> None:
    """A day of bars per symbol, written before the renderer starts, so it renders each
    symbol once and every later write reaches clients as a delta."""
    now = time.time()
    store = BarStore(client, Keys(), WINDOW_MINUTES)
    fetched = SyntheticSource().fetch({s: store.window_start(now) for s in SYMBOLS}, now)
    for symbol in SYMBOLS:
        store.upsert(symbol, fetched.bars[symbol], as_of=now, now=now)


def wait_snapshots(client: "redis.Redis") -> None:
    keys = Keys()
    deadline = time.monotonic() + START_TIMEOUT
    while not all(client.exists(keys.snapshot(s)) for s in SYMBOLS):
        if time.monotonic() > deadline:
            raise RuntimeError("the renderer did not render the backfilled symbols")
        time.sleep(0.1)


@dataclass
class Pids:
    renderer: int
    gateway: int
    redis: int


def machine_cpu() -> float:
    """CPU seconds all cores have been busy since boot (/proc/stat, idle and iowait out)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_readings(pids: Pids) -> dict[str, float]:
    """CPU seconds so far of each process measured, and of the whole machine."""
    return {
        "renderer": cpu_seconds(pids.renderer),
        "gateway": cpu_seconds(pids.gateway),
        "redis": cpu_seconds(pids.redis),
        "loadgen": self_cpu(),
        "machine": machine_cpu(),
    }


# -- one run ----------------------------------------------------------------------------


@dataclass
class Audience:
    connected: int  # clients whose subscribe was sent
    subscribed: int  # clients sent their snapshot, so surely in their room
    per_symbol: Counter[str]  # connected clients watching each symbol


async def connect_in_waves(
    url: str, count: int, receipts: Receipts, crowds: list[Crowd]
) -> Audience:
    """Connects ``count`` clients WAVE at a time, each wave given its snapshots before the
    next starts. All at once, the gateway refuses some subscribes (see the module's
    notes); this benchmark measures updates, not a subscribe storm."""
    per_symbol: Counter[str] = Counter()
    for first in range(0, count, WAVE):
        crowd = Crowd(url, min(WAVE, count - first), _frames_from(first), receipts.on_event)
        crowds.append(crowd)
        await crowd.connect()
        for i, client in enumerate(crowd.clients, start=first):
            if client.ready.is_set():
                per_symbol[SYMBOLS[i % len(SYMBOLS)]] += 1
        # Bounded: a client refused its snapshot only counts as not subscribed.
        await wait_until(lambda: receipts.figures >= per_symbol.total(), WAVE_TIMEOUT)
    return Audience(per_symbol.total(), receipts.figures, per_symbol)


def _frames_from(first: int) -> Callable[[int], list[str]]:
    return lambda i: subscribe_frames(first + i)


@dataclass
class Measured:
    audience: Audience
    receipts: Receipts
    writes: list[Write]
    published: Published
    measured_from: float
    cpu: dict[str, float]  # % of a core: as cpu_readings, plus the writer


async def measure(port: int, redis_url: str, pids: Pids, ticks: int, count: int) -> Measured:
    receipts = Receipts()
    crowds: list[Crowd] = []
    writer = await Writer.launch(redis_url)
    try:
        audience = await connect_in_waves(socketio_url(port), count, receipts, crowds)
        await writer.ready()
        start = int(time.time()) + 1.5  # mid-second: two ticks never share a second
        writer.start(start, WARMUP_TICKS + ticks, WARMUP_TICKS)
        measured_from = start + WARMUP_TICKS
        await sleep_until(measured_from)
        before = cpu_readings(pids)
        await sleep_until(measured_from + ticks)
        after = cpu_readings(pids)
        writes, published, writer_cpu = await writer.result(START_TIMEOUT)
        await drain(receipts, writes, audience.per_symbol)
    finally:
        for crowd in crowds:
            await crowd.close()
        await writer.stop()
    cpu = {name: (after[name] - before[name]) / ticks * 100 for name in before}
    cpu["writer"] = writer_cpu / ticks * 100
    return Measured(audience, receipts, writes, published, measured_from, cpu)


async def drain(receipts: Receipts, writes: Sequence[Write], subscribers: Counter[str]) -> None:
    """Until every subscriber has the last version written of its symbol (bounded)."""
    final = {symbol: version for symbol, version, _at in writes}
    watched = [s for s in final if subscribers[s]]

    def done() -> bool:
        return all(receipts.per_seq[(s, final[s])] >= subscribers[s] for s in watched)

    await wait_until(done, DRAIN_SECONDS)


def ms(samples: list[float], fraction: float) -> float:
    return percentile(sorted(samples), fraction) * 1000


def summarize(mode: str, count: int, ticks: int, measured: Measured) -> RunResult:
    matched = match(
        measured.receipts.deltas, measured.writes, measured.measured_from, measured.published
    )
    per_symbol = measured.audience.per_symbol
    expected = sum(per_symbol[s] for s, _v, at in measured.writes if at >= measured.measured_from)
    latencies = matched.latencies
    cpu = measured.cpu
    return RunResult(
        mode=mode,
        clients=count,
        connected=measured.audience.connected,
        subscribed=measured.audience.subscribed,
        seconds=float(ticks),
        p50_ms=ms(latencies, 0.5),
        p99_ms=ms(latencies, 0.99),
        max_ms=max(latencies, default=float("nan")) * 1000,
        queue_p50_ms=ms(matched.to_queue, 0.5),
        queue_p99_ms=ms(matched.to_queue, 0.99),
        relay_p50_ms=ms(matched.from_queue, 0.5),
        relay_p99_ms=ms(matched.from_queue, 0.99),
        deliveries=len(latencies),
        expected=expected,
        delivered_share=len(latencies) / expected if expected else float("nan"),
        delivered_per_s=len(latencies) / ticks,
        coalesced=matched.coalesced,
        unmatched=matched.unmatched,
        renderer_cpu=cpu["renderer"],
        gateway_cpu=cpu["gateway"],
        redis_cpu=cpu["redis"],
        loadgen_cpu=cpu["loadgen"],
        writer_cpu=cpu["writer"],
        other_cpu=cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine"),
        latencies_ms=[latency * 1000 for latency in latencies],
    )


def one_run(mode: str, count: int, seconds: float, profile: Path | None = None) -> RunResult:
    """A fresh redis-server, renderer and gateway for each run, all stopped after it;
    with ``profile``, py-spy samples the renderer from the clients' arrival to the end."""
    ticks = max(1, round(seconds))
    private_redis = PrivateRedis("redis-server")
    services: list[Service] = []
    client = redis.Redis.from_url(private_redis.url)
    try:
        backfill(client)
        port = free_port()
        renderer_env = service_env(private_redis.url, port)
        renderer = Service(["renderer"], renderer_env)
        services.append(renderer)
        gateway = Service(["gateway", "--mode", mode], service_env(private_redis.url, port))
        services.append(gateway)
        renderer.wait_healthy(f"http://127.0.0.1:{renderer_env['RTPLOT_METRICS_PORT']}/healthz")
        gateway.wait_healthy(f"http://127.0.0.1:{port}/healthz")
        wait_snapshots(client)
        pids = Pids(renderer.process.pid, gateway.process.pid, private_redis.process.pid)
        # Sampled until the run ends, however long the clients take to connect: py-spy
        # writes what it has when interrupted.
        sampler = profiles.record(renderer.process.pid, 3600, profile) if profile else None
        measured = asyncio.run(measure(port, private_redis.url, pids, ticks, count))
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(60)
    finally:
        for service in reversed(services):
            service.stop()
        client.close()
        private_redis.stop()
    return summarize(mode, count, ticks, measured)


def median_row(runs: list[RunResult], repeats: int) -> ResultRow:
    def med(name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in runs))

    first = runs[0]
    return ResultRow(
        mode=first.mode,
        clients=first.clients,
        seconds=first.seconds,
        repeats=repeats,
        connected=min(r.connected for r in runs),
        subscribed=min(r.subscribed for r in runs),
        p50_ms=med("p50_ms"),
        p99_ms=med("p99_ms"),
        max_ms=med("max_ms"),
        queue_p50_ms=med("queue_p50_ms"),
        queue_p99_ms=med("queue_p99_ms"),
        relay_p50_ms=med("relay_p50_ms"),
        relay_p99_ms=med("relay_p99_ms"),
        delivered_per_s=med("delivered_per_s"),
        delivered_share=min(r.delivered_share for r in runs),
        renderer_cpu=med("renderer_cpu"),
        gateway_cpu=med("gateway_cpu"),
        redis_cpu=med("redis_cpu"),
        writer_cpu=med("writer_cpu"),
        loadgen_cpu=med("loadgen_cpu"),
        other_cpu=med("other_cpu"),
        runs=runs,
    )


def run(
    clients: list[int],
    seconds: float,
    repeats: int,
    modes: Sequence[str] = ("asyncio",),
    profile: Path | None = None,
) -> list[ResultRow]:
    """One row per mode and client count: the median of ``repeats`` fresh runs. With
    ``profile``, the renderer of the very last run is sampled there (the largest load)."""
    rows = []
    last = (clients[-1], modes[-1], repeats - 1)
    for count in clients:
        for mode in modes:
            runs = [
                one_run(mode, count, seconds, profile if (count, mode, i) == last else None)
                for i in range(repeats)
            ]
            rows.append(median_row(runs, repeats))
    return rows


# -- reporting --------------------------------------------------------------------------


def command(results: Sequence[ResultRow]) -> str:
    clients = " ".join(str(c) for c in dict.fromkeys(r.clients for r in results))
    modes = " ".join(dict.fromkeys(r.mode for r in results))
    first = results[0]
    return (
        f"python -m bench.e2e --clients {clients} --seconds {first.seconds:g} "
        f"--repeats {first.repeats} --modes {modes}"
    )


def method(first: ResultRow) -> str:
    return (
        f"{len(SYMBOLS)} symbols, a day ({WINDOW_MINUTES} bars) each. Once a second the "
        "benchmark writes every symbol's minute in progress with the fetcher's own store "
        "(the Lua upsert and its change notice), noting the time just before each write; one "
        "`rtplot renderer` and one `rtplot gateway` carry it to lean WebSocket clients "
        f"subscribed round-robin in delta mode, like the page (connected {WAVE} at a time; "
        "subscribed = sent their snapshot). Each `bars` event is matched by symbol and seq "
        "to the writes it carries: latency = receipt - write over every (client, write), "
        "split where a probe on the Socket.IO Redis channel saw the delta published. "
        f"{first.seconds:g} s measured after {WARMUP_TICKS} warm-up writes; median of "
        f"{first.repeats} runs, each on fresh processes; delivered: share of (client, write) "
        "pairs that arrived (lowest run); CPU in % of one core; rest of the machine: kernel "
        "work charged to no process, and anything else running. All on loopback, load "
        f"generator included, on {os.cpu_count()} cores."
    )


def markdown(results: Sequence[ResultRow]) -> str:
    if not results:
        return "## End to end\n\nNo runs.\n"
    lines = [
        "## End to end",
        "",
        method(results[0]),
        "",
        f"Reproduce: `.venv/bin/{command(results)}`",
        "",
        "| gateway | clients | subscribed | p50 | p99 | write → queue p50 / p99 | "
        "queue → client p50 / p99 | delivered/s | delivered | renderer CPU | gateway CPU | "
        "Redis CPU | load generator CPU | rest of the machine |",
        "| --- |" + " ---: |" * 13,
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.clients:,} | {r.subscribed:,} | {r.p50_ms:.1f} ms | "
            f"{r.p99_ms:.1f} ms | {r.queue_p50_ms:.1f} / {r.queue_p99_ms:.1f} ms | "
            f"{r.relay_p50_ms:.1f} / {r.relay_p99_ms:.1f} ms | {r.delivered_per_s:,.0f} | "
            f"{r.delivered_share:.1%} | {r.renderer_cpu:.0f} % | {r.gateway_cpu:.0f} % | "
            f"{r.redis_cpu:.0f} % | {r.loadgen_cpu:.0f} % | {r.other_cpu:.0f} % |"
        )
    busiest = max((run.other_cpu for r in results for run in r.runs), default=0.0)
    if busiest > BUSY_MACHINE:
        lines += [
            "",
            f"Other work used up to {busiest:.0f} % of a core during a run: these figures "
            "measure a busy machine; rerun on a quiet one.",
        ]
    return "\n".join(lines) + "\n"


def summary(row: ResultRow) -> dict[str, Any]:
    """The row and its runs as plain numbers, without the raw latencies."""
    data = asdict(row)
    for run_data in data["runs"]:
        del run_data["latencies_ms"]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", help="default 1000 5000")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (default 10)")
    parser.add_argument("--repeats", type=int, help="runs per row, median taken (default 3)")
    parser.add_argument("--modes", nargs="+", choices=("asyncio", "eventlet"))
    parser.add_argument("--quick", action="store_true", help="1,000 clients, 5 s, one run")
    parser.add_argument("--raw", type=Path, help="write every latency (ms) here as JSON")
    args = parser.parse_args()
    quick = args.quick
    clients = args.clients or ([1000] if quick else [1000, 5000])
    seconds = args.seconds or (5.0 if quick else 10.0)
    repeats = args.repeats or (1 if quick else 3)
    modes = args.modes or (["asyncio"] if quick else ["asyncio", "eventlet"])
    started = time.monotonic()
    results = run(clients, seconds, repeats, modes)
    print(markdown(results))
    print(orjson.dumps([summary(r) for r in results]).decode())
    print(f"bench.e2e took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.raw:
        raw = [
            {"mode": r.mode, "clients": r.clients, "latencies_ms": r.latencies_ms} for r in results
        ]
        args.raw.write_bytes(orjson.dumps(raw))


if __name__ == "__main__":
    main()
