"""Fan-out: one gateway process, thousands of WebSocket clients, 20 symbols.

    .venv/bin/python -m bench.fanout --clients 1000 2000 --modes stock asyncio eventlet

For each mode and client count it starts a private redis-server and one gateway on
loopback: ``rtplot gateway`` (``asyncio`` or ``eventlet``), or ``stock``, plain
python-socketio as its docs set it up (bench/stock_gateway.py), for comparison. It opens
the clients from this process (bench/loadgen.py), subscribes them round-robin to 20
symbols, then publishes an update per symbol once a second through the Socket.IO Redis
queue, as the renderer does: a 390-point figure (``--payload figure``), or the small
delta the web page subscribes to (``--payload delta``). Every payload carries its publish
time as its first field, so each receipt gives a publish-to-client latency without
parsing the rest.

Reported per run: latency p50/p99; the spread of one update from its first to its last
client (p50/p99); delivered messages/s; the gateway's CPU (% of one core) and RSS per
connection (idle, before publishing); and this load generator's CPU, so it can be seen
not to be the bottleneck. With ``--repeats`` each figure is the median over the runs.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from bench import profiles
from bench.loadgen import (
    Crowd,
    OnEvent,
    cpu_seconds,
    event_frame,
    percentile,
    rss_kb,
    self_cpu,
    socketio_url,
    wait_http,
)
from bench.render import sample_delta
from common.keys import Keys
from common.messages import BARS, FIGURE, SUBSCRIBE, OrjsonCodec, delta_room, figure_room
from fetcher.sources.synthetic import SyntheticSource
from renderer.figure import build_figure
from rtplot.up import PrivateRedis, free_port, terminate

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
    rss_kb_per_conn: float
    loadgen_cpu: float  # % of one core while publishing


@dataclass
class Receipts:
    """Every receipt's latency, and each update's first and last receipt."""

    latencies: list[float] = field(default_factory=list)
    spans: dict[str, list[float]] = field(default_factory=dict)  # sent -> [first, last]

    def handler(self, event: str) -> OnEvent:
        prefix = f'42["{event}",{{"sent":'

        def on_event(frame: str, received: float) -> None:
            if frame.startswith(prefix):
                sent = frame[len(prefix) : frame.index(",", len(prefix))]
                self.latencies.append(received - float(sent))
                span = self.spans.setdefault(sent, [received, received])
                span[1] = received

        return on_event

    def spreads(self) -> list[float]:
        return sorted(last - first for first, last in self.spans.values())


def payload_for(kind: str, symbol: str) -> dict[str, Any]:
    if kind == "delta":
        return {"sent": 0.0, **sample_delta(), "symbol": symbol}
    bars = (
        SyntheticSource()
        .fetch({symbol: int(time.time()) - 390 * 60 + 1}, time.time())
        .bars[symbol][-390:]
    )
    return {"sent": 0.0, "symbol": symbol, "seq": 0, "figure": build_figure(symbol, bars)}


def publisher(redis_url: str, kind: str, stop: threading.Event, seconds: float) -> None:
    import socketio

    manager = socketio.RedisManager(
        redis_url, channel=Keys().socketio_channel, write_only=True, json=OrjsonCodec
    )
    event, room = (BARS, delta_room) if kind == "delta" else (FIGURE, figure_room)
    payloads = {symbol: payload_for(kind, symbol) for symbol in SYMBOLS}
    seq = 0
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        tick = time.monotonic()
        seq += 1
        for symbol, payload in payloads.items():
            payload["seq"] = seq
            payload["sent"] = time.time()
            manager.emit(event, payload, room=room(symbol), namespace="/")
        stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))


@dataclass
class Measured:
    connected: int
    rss_kb_per_conn: float
    gateway_cpu: float
    loadgen_cpu: float
    receipts: Receipts


async def run_clients(
    url: str,
    count: int,
    kind: str,
    publish_seconds: float,
    redis_url: str,
    gateway_pid: int,
    profile: Path | None = None,
) -> Measured:
    receipts = Receipts()
    updates = {"updates": "delta"} if kind == "delta" else {}

    def subscribe(i: int) -> list[str]:
        request = {"symbol": SYMBOLS[i % len(SYMBOLS)], **updates}
        return [event_frame(SUBSCRIBE, orjson.dumps(request).decode())]

    event = BARS if kind == "delta" else FIGURE
    crowd = Crowd(url, count, subscribe, receipts.handler(event))
    base_rss = rss_kb(gateway_pid)
    connected = await crowd.connect()
    await asyncio.sleep(2)
    idle_rss = rss_kb(gateway_pid)

    publish_stop = threading.Event()
    thread = threading.Thread(
        target=publisher, args=(redis_url, kind, publish_stop, publish_seconds), daemon=True
    )
    gateway_cpu0, self0, wall0 = cpu_seconds(gateway_pid), self_cpu(), time.monotonic()
    thread.start()
    sampler = profiles.record(gateway_pid, publish_seconds, profile) if profile else None
    await asyncio.sleep(publish_seconds + 1)
    if sampler is not None:
        await asyncio.to_thread(sampler.wait, 60)
    publish_stop.set()
    wall = time.monotonic() - wall0
    gateway_cpu = (cpu_seconds(gateway_pid) - gateway_cpu0) / wall * 100
    loadgen_cpu = (self_cpu() - self0) / wall * 100
    await crowd.close()
    return Measured(
        connected, (idle_rss - base_rss) / max(connected, 1), gateway_cpu, loadgen_cpu, receipts
    )


def gateway_command(mode: str, port: int, redis_url: str) -> list[str]:
    if mode == "stock":
        return [sys.executable, "-m", "bench.stock_gateway", str(port), redis_url]
    return [sys.executable, "-m", "rtplot.cli", "gateway", "--mode", mode]


def one_run(
    mode: str, count: int, publish_seconds: float, kind: str = "figure", profile: Path | None = None
) -> Result:
    """One gateway process under ``count`` clients; with ``profile``, py-spy samples the
    gateway while updates are published and writes collapsed stacks there."""
    port = free_port()
    private_redis = PrivateRedis("redis-server")
    redis_url = private_redis.url
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPLOT_")}
    env.update(
        {
            "RTPLOT_REDIS_URL": redis_url,
            "RTPLOT_PORT": str(port),
            "RTPLOT_SYMBOLS": ",".join(SYMBOLS[:4]),
            "RTPLOT_LOG_LEVEL": "WARNING",
            "RTPLOT_MAX_QUEUED": "1000",
        }
    )
    gateway = subprocess.Popen(
        gateway_command(mode, port, redis_url),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        url = socketio_url(port)
        measured = asyncio.run(
            run_clients(url, count, kind, publish_seconds, redis_url, gateway.pid, profile)
        )
    finally:
        # Stock python-socketio takes minutes to drop 10,000 clients (it scans every
        # room per disconnect); the run is over, so do not wait for it.
        terminate([gateway], grace=30)
        private_redis.stop()
    ordered = sorted(measured.receipts.latencies)
    spreads = measured.receipts.spreads()
    return Result(
        mode=mode,
        payload=kind,
        clients=count,
        connected=measured.connected,
        p50_ms=percentile(ordered, 0.5) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        spread_p50_ms=percentile(spreads, 0.5) * 1000,
        spread_p99_ms=percentile(spreads, 0.99) * 1000,
        delivered_per_s=len(ordered) / publish_seconds,
        gateway_cpu=measured.gateway_cpu,
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
        name: statistics.median(getattr(r, name) for r in runs)
        for name, value in vars(runs[0]).items()
        if isinstance(value, float)
    }
    return replace(runs[0], connected=min(r.connected for r in runs), **medians)


def table(results: list[Result]) -> str:
    lines = [
        "| mode | payload | clients | connected | p50 | p99 | spread p50 | spread p99 | "
        "delivered/s | gateway CPU | RSS per idle connection | load generator CPU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.payload} | {r.clients:,} | {r.connected:,} | {r.p50_ms:.0f} ms | "
            f"{r.p99_ms:.0f} ms | {r.spread_p50_ms:.0f} ms | {r.spread_p99_ms:.0f} ms | "
            f"{r.delivered_per_s:,.0f} | {r.gateway_cpu:.0f} % | "
            f"{r.rss_kb_per_conn:.1f} KB | {r.loadgen_cpu:.0f} % |"
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
    args = parser.parse_args()
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
