"""The runs: the processes, the clients, one measured run, and the median of repeats."""

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import orjson

from bench import profiles
from bench.e2e.market import SYMBOLS, WINDOW_MINUTES, Write, backfill
from bench.e2e.matching import Receipts, match
from bench.e2e.writer import DRAIN_SECONDS, Published, Writer
from bench.loadgen import Crowd, event_frame, self_cpu, socketio_url
from bench.stats import median, percentile
from common.messages import SUBSCRIBE
from rtplot.processes import Stack, cpu_seconds

WARMUP_TICKS = 2  # writes before the measured ones: first renders and sends are slower
START_TIMEOUT = 60.0  # seconds for a service, the snapshots or the writer to be ready
WAVE = 100  # clients connecting at once (see connect_in_waves)
WAVE_TIMEOUT = 10.0  # seconds for a wave's snapshots to arrive


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
    queue_p50_ms: float  # write -> the delta published on its room's channel
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


def subscribe_frames(i: int) -> list[str]:
    """Client i watches one symbol, round-robin, in delta mode like the page."""
    payload = {"symbol": SYMBOLS[i % len(SYMBOLS)], "updates": "delta"}
    return [event_frame(SUBSCRIBE, orjson.dumps(payload).decode())]


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
        await writer.ready(START_TIMEOUT)
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
    return percentile(samples, fraction) * 1000


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
    with Stack(
        symbols=",".join(SYMBOLS), window_minutes=WINDOW_MINUTES, log_level="WARNING"
    ) as stack:
        backfill(stack.client)
        renderer = stack.launch("renderer")
        gateway = stack.launch("gateway", "gateway", "--mode", mode)
        stack.wait_healthy(START_TIMEOUT)
        stack.wait_snapshots(SYMBOLS, START_TIMEOUT)
        pids = Pids(renderer.pid, gateway.pid, stack.redis.pid)
        # Sampled until the run ends, however long the clients take to connect: py-spy
        # writes what it has when interrupted.
        sampler = profiles.record(renderer.pid, 3600, profile) if profile else None
        measured = asyncio.run(measure(gateway.port, stack.redis.url, pids, ticks, count))
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(60)
    return summarize(mode, count, ticks, measured)


LOWEST = {"connected", "subscribed", "delivered_share"}  # a row reports its worst run's
ROW_KEYS = {"mode", "clients", "seconds", "repeats", "runs"}  # not figures of a run


def median_row(runs: list[RunResult], repeats: int) -> ResultRow:
    """Each figure the median of the runs', but those in LOWEST: the worst run's."""
    figures = {}
    for name in (f.name for f in fields(ResultRow) if f.name not in ROW_KEYS):
        values = [getattr(r, name) for r in runs]
        figures[name] = min(values) if name in LOWEST else median(values)
    first = runs[0]
    return ResultRow(
        mode=first.mode,
        clients=first.clients,
        seconds=first.seconds,
        repeats=repeats,
        runs=runs,
        **figures,
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
