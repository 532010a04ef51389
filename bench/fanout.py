"""Fan-out: one gateway process, thousands of WebSocket clients, 20 symbols.

    .venv/bin/python -m bench.fanout --clients 1000 2000 --modes stock asyncio eventlet

For each mode and client count it starts a private redis-server and one gateway on
loopback: ``rtplot gateway`` (``asyncio`` or ``eventlet``), or ``stock``, plain
python-socketio as its docs set it up (bench/stock_gateway.py), for comparison. It opens
the clients from this process (bench/loadgen.py), subscribes them round-robin to 20
symbols, then publishes an update per symbol once a second as the renderer does, the
Socket.IO packet on the room's own Redis channel (for ``stock``, through python-socketio's
Redis queue, as its docs set it up): a 390-point figure (``--payload figure``), or the
small delta the web page subscribes to (``--payload delta``). Every payload carries its publish
time as its first field, so each receipt gives a publish-to-client latency without
parsing the rest.

Reported per run: latency p50/p99; the spread of one update from its first to its last
client (p50/p99); delivered messages/s; the gateway's CPU (% of one core) and RSS per
connection (idle, before publishing); and this load generator's CPU, so it can be seen
not to be the bottleneck. With ``--repeats`` each figure is the median over the runs.
"""

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import redis

from bench import profiles
from bench.loadgen import Crowd, OnEvent, event_frame, self_cpu, socketio_url, use_uvloop
from bench.render import sample_delta
from bench.stats import median, percentile
from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.packets import event_packet, figure_payload
from common.contract.rooms import Mode, Room
from common.contract.snapshots import Whole, WriteRender
from common.messages import BARS, FIGURE, SUBSCRIBE, OrjsonCodec
from fetcher.sources.synthetic import SyntheticSource
from renderer.figure import build_figure
from renderer.window import Window, rows_of
from rtplot.processes import Service, Stack, cpu_times, free_port

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = [f"SYM{i:02d}" for i in range(20)]


MODES = ("stock", "asyncio", "eventlet")
PAYLOADS = ("figure", "delta")


@dataclass
class Result:
    mode: str
    payload: str
    clients: int
    connected: int
    p50_ms: float
    p99_ms: float
    spread_p50_ms: float  # one update, from its first client to its last
    spread_p99_ms: float
    delivered_per_s: float
    gateway_cpu: float  # % of one core while publishing
    us_per_delivery: float  # the gateway's CPU time per update delivered, in µs
    kernel_share: float  # % of the gateway's CPU time spent in the kernel
    rss_kb_per_conn: float
    loadgen_cpu: float  # % of one core while publishing


@dataclass
class Receipts:
    """Every receipt's latency, and each update's first and last receipt."""

    latencies: list[float] = field(default_factory=list)
    spans: dict[bytes, list[float]] = field(default_factory=dict)  # sent -> [first, last]

    def handler(self, event: str) -> OnEvent:
        prefix = f'42["{event}",{{"sent":'.encode()
        start = len(prefix)

        def on_event(frame: bytes, received: float) -> None:
            if frame.startswith(prefix):
                sent = frame[start : frame.index(b",", start)]
                self.latencies.append(received - float(sent))
                span = self.spans.setdefault(sent, [received, received])
                span[1] = received

        return on_event

    def spreads(self) -> list[float]:
        return [last - first for first, last in self.spans.values()]


def payload_for(kind: str, symbol: str) -> dict[str, Any]:
    if kind == "delta":
        return {"sent": 0.0, **sample_delta(), "symbol": symbol}
    bars = (
        SyntheticSource()
        .fetch({symbol: int(time.time()) - 390 * 60 + 1}, time.time())
        .bars[symbol][-390:]
    )
    window = Window("bench", 0, rows_of([bar.as_list() for bar in bars]))
    return {"sent": 0.0, "symbol": symbol, "seq": 0, "figure": build_figure(symbol, window)}


Publish = Callable[[Room, dict[str, Any]], None]


def publisher(redis_url: str, mode: str, kind: str, stop: threading.Event, seconds: float) -> None:
    """An update per symbol once a second, each stamped with its publish time."""
    updates = Mode.DELTA if kind == "delta" else Mode.FIGURE
    payloads = {symbol: payload_for(kind, symbol) for symbol in SYMBOLS}
    client = redis.Redis.from_url(redis_url)
    publish = stock_emit(redis_url) if mode == "stock" else room_publish(client)
    seq = 0
    deadline = time.monotonic() + seconds
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            seq += 1
            for symbol, payload in payloads.items():
                payload["seq"] = seq
                payload["sent"] = time.time()
                publish(Room(symbol, updates), payload)
            stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        client.close()


def room_publish(client: "redis.Redis") -> Publish:
    """As renderer/publish.py does: the Socket.IO packet, on the room's own channel."""
    keys = Keys()

    def publish(room: Room, payload: dict[str, Any]) -> None:
        data = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        client.publish(keys.channel(room), event_packet(room.event, data))

    return publish


def stock_emit(redis_url: str) -> Publish:
    """As python-socketio documents emitting from another process: its Redis queue."""
    import socketio

    manager = socketio.RedisManager(
        redis_url, channel=Keys().socketio_channel, write_only=True, json=OrjsonCodec
    )

    def publish(room: Room, payload: dict[str, Any]) -> None:
        manager.emit(room.event, payload, room=room.name, namespace="/")

    return publish


@dataclass
class Measured:
    connected: int
    rss_kb_per_conn: float
    gateway_cpu: float
    kernel_share: float
    loadgen_cpu: float
    receipts: Receipts


async def run_clients(
    gateway: Service,
    mode: str,
    count: int,
    kind: str,
    publish_seconds: float,
    redis_url: str,
    profile: Path | None = None,
) -> Measured:
    receipts = Receipts()
    updates = {"updates": "delta"} if kind == "delta" else {}

    def subscribe(i: int) -> list[str]:
        request = {"symbol": SYMBOLS[i % len(SYMBOLS)], **updates}
        return [event_frame(SUBSCRIBE, orjson.dumps(request).decode())]

    event = BARS if kind == "delta" else FIGURE
    crowd = Crowd(socketio_url(gateway.port), count, subscribe, receipts.handler(event))
    base_rss = gateway.rss_kb()
    connected = await crowd.connect()
    await asyncio.sleep(2)
    idle_rss = gateway.rss_kb()

    publish_stop = threading.Event()
    thread = threading.Thread(
        target=publisher, args=(redis_url, mode, kind, publish_stop, publish_seconds), daemon=True
    )
    (user0, system0), self0, wall0 = cpu_times(gateway.pid), self_cpu(), time.monotonic()
    thread.start()
    sampler = profiles.record(gateway.pid, publish_seconds, profile) if profile else None
    await asyncio.sleep(publish_seconds + 1)
    if sampler is not None:
        await asyncio.to_thread(sampler.wait, 60)
    publish_stop.set()
    wall = time.monotonic() - wall0
    user, system = cpu_times(gateway.pid)
    gateway_cpu = (user - user0 + system - system0) / wall * 100
    kernel_share = (system - system0) / max(user - user0 + system - system0, 1e-9) * 100
    loadgen_cpu = (self_cpu() - self0) / wall * 100
    await crowd.close()
    return Measured(
        connected,
        (idle_rss - base_rss) / max(connected, 1),
        gateway_cpu,
        kernel_share,
        loadgen_cpu,
        receipts,
    )


def start_gateway(stack: Stack, mode: str) -> Service:
    if mode != "stock":
        return stack.start("gateway", "gateway", "--mode", mode)
    port = free_port()  # the stock gateway takes it as an argument
    command = (sys.executable, "-m", "bench.stock_gateway")
    return stack.start("gateway", str(port), stack.redis.url, command=command, port=port)


def one_run(
    mode: str, count: int, publish_seconds: float, kind: str = "figure", profile: Path | None = None
) -> Result:
    """One gateway process under ``count`` clients; with ``profile``, py-spy samples the
    gateway while updates are published and writes collapsed stacks there."""
    # Stock python-socketio takes minutes to drop 10,000 clients (it scans every room per
    # disconnect); the run is over, so do not wait for it.
    with Stack(
        grace=30,
        cwd=ROOT,
        symbols=",".join(SYMBOLS[:4]),
        log_level="WARNING",
        max_queued=1000,
    ) as stack:
        gateway = start_gateway(stack, mode)
        use_uvloop()
        measured = asyncio.run(
            run_clients(gateway, mode, count, kind, publish_seconds, stack.redis.url, profile)
        )
    latencies = measured.receipts.latencies
    spreads = measured.receipts.spreads()
    return Result(
        mode=mode,
        payload=kind,
        clients=count,
        connected=measured.connected,
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        spread_p50_ms=percentile(spreads, 0.5) * 1000,
        spread_p99_ms=percentile(spreads, 0.99) * 1000,
        delivered_per_s=len(latencies) / publish_seconds,
        gateway_cpu=measured.gateway_cpu,
        us_per_delivery=measured.gateway_cpu * 1e4 / max(len(latencies) / publish_seconds, 1),
        kernel_share=measured.kernel_share,
        rss_kb_per_conn=measured.rss_kb_per_conn,
        loadgen_cpu=measured.loadgen_cpu,
    )


def measure(
    mode: str,
    count: int,
    publish_seconds: float,
    kind: str = "figure",
    repeats: int = 1,
    profile: Path | None = None,
) -> Result:
    """The median of each figure over ``repeats`` runs (py-spy samples the first only)."""
    runs = [
        one_run(mode, count, publish_seconds, kind, profile if i == 0 else None)
        for i in range(repeats)
    ]
    medians = {
        name: median(getattr(r, name) for r in runs)
        for name, value in vars(runs[0]).items()
        if isinstance(value, float)
    }
    return replace(runs[0], connected=min(r.connected for r in runs), **medians)


def table(results: list[Result]) -> str:
    lines = [
        "| mode | payload | clients | connected | p50 | p99 | spread p50 | spread p99 | "
        "delivered/s | gateway CPU | CPU per delivery | of it in the kernel | "
        "RSS per idle connection | load generator CPU |",
        "| --- | --- |" + " ---: |" * 12,
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.payload} | {r.clients:,} | {r.connected:,} | {r.p50_ms:.0f} ms | "
            f"{r.p99_ms:.0f} ms | {r.spread_p50_ms:.0f} ms | {r.spread_p99_ms:.0f} ms | "
            f"{r.delivered_per_s:,.0f} | {r.gateway_cpu:.0f} % | {r.us_per_delivery:.1f} µs | "
            f"{r.kernel_share:.0f} % | {r.rss_kb_per_conn:.1f} KB | {r.loadgen_cpu:.0f} % |"
        )
    return "\n".join(lines) + "\n"


# -- idle connections: how many one process holds, and how fast it lets them go ---------

FILE_LIMIT_HEADROOM = 100  # descriptors a process needs beside its clients
IDLE_TARGET = 20_000  # issue 12: idle clients on one process


def idle_capacity() -> int:
    """Issue 12's 20,000 idle clients, or as many as this machine's open-file limit lets
    one process hold (the gateway and the load generator each hold one descriptor per
    client)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return min(IDLE_TARGET, soft - FILE_LIMIT_HEADROOM)


@dataclass
class Idle:
    mode: str
    clients: int
    connected: int
    served: int  # clients that received their snapshot
    rss_kb_per_conn: float
    stop_seconds: float  # SIGTERM to exit, with every client connected


def idle_run(mode: str, count: int) -> Idle:
    """``count`` clients that subscribe, get their snapshot and then only stay connected;
    then the gateway is stopped as compose stops it (SIGTERM), and timed."""
    with Stack(grace=30, cwd=ROOT, symbols=",".join(SYMBOLS[:4]), log_level="WARNING") as stack:
        scripts = Scripts(stack.client, Keys())
        for symbol in SYMBOLS:  # a small snapshot for every symbol: "served" = received it
            payload = figure_payload(symbol, "", 1, "bench", b'{"data":[],"layout":{}}')
            whole = Whole(payload, {}, time.time())
            packet = event_packet(FIGURE, payload)
            scripts.run(WriteRender(symbol, "", "bench", 1, {}, packet, whole=whole))
        gateway = start_gateway(stack, mode)
        use_uvloop()
        connected, served, rss = asyncio.run(_hold_idle(gateway, count))
        started = time.monotonic()
        gateway.send_signal(15)
        gateway.process.wait(timeout=60)
        stop_seconds = time.monotonic() - started
    return Idle(mode, count, connected, served, rss, stop_seconds)


async def _hold_idle(gateway: Service, count: int) -> tuple[int, int, float]:
    served: set[int] = set()

    def on_event_for(i: int) -> OnEvent:
        return lambda frame, _at: served.add(i)

    def subscribe(i: int) -> list[str]:
        return [
            event_frame(SUBSCRIBE, orjson.dumps({"symbol": SYMBOLS[i % len(SYMBOLS)]}).decode())
        ]

    crowd = Crowd(socketio_url(gateway.port or 0), count, subscribe, lambda frame, at: None)
    for i, client in enumerate(crowd.clients):
        client.on_event = on_event_for(i)
    base = gateway.rss_kb()
    connected = await crowd.connect(timeout=300)
    await asyncio.sleep(3)
    rss = (gateway.rss_kb() - base) / max(connected, 1)
    crowd.stop.set()  # the clients close only after the gateway has stopped (below)
    return connected, len(served), rss


def idle_table(rows: list[Idle]) -> str:
    lines = [
        "| mode | clients | connected | served | RSS per idle connection | stop (SIGTERM) |",
        "| --- |" + " ---: |" * 5,
    ]
    for r in rows:
        lines.append(
            f"| {r.mode} | {r.clients:,} | {r.connected:,} | {r.served:,} | "
            f"{r.rss_kb_per_conn:.1f} KB | {r.stop_seconds:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--payload", choices=PAYLOADS, default="figure")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy collapsed stacks of each gateway run"
    )
    parser.add_argument(
        "--idle", action="store_true", help="idle clients only: connected, memory, stop time"
    )
    args = parser.parse_args()
    if args.idle:
        rows = [idle_run(mode, count) for count in args.clients for mode in args.modes]
        print(idle_table(rows))
        return
    results = []
    for count in args.clients:
        for mode in args.modes:
            out = args.profile / f"fanout-{mode}-{count}.txt" if args.profile else None
            result = measure(mode, count, args.seconds, args.payload, args.repeats, out)
            if out is not None and out.exists():
                print(profiles.markdown(profiles.top(out)))
            print(result, flush=True)
            results.append(result)
    print(table(results))
    print(orjson.dumps([r.__dict__ for r in results]).decode())


if __name__ == "__main__":
    main()
