"""Fan-out: one gateway process, thousands of WebSocket clients, 20 symbols.

    .venv/bin/python -m bench.fanout --clients 1000 2000 --modes asyncio eventlet

For each mode and client count it starts a private redis-server and one ``rtplot
gateway`` on loopback, opens the clients from this process (a lean asyncio Engine.IO /
Socket.IO client over ``websockets``: no per-client thread, no JSON parsing of the
figure), subscribes them round-robin to 20 symbols, then publishes a 390-point figure
per symbol once a second through the Socket.IO Redis queue, as the renderer does. Every
payload carries its publish time, so each receipt gives a publish-to-client latency.

Reported per run: latency p50/p99, delivered messages/s, the gateway's CPU (% of one
core) and RSS per connection (idle, before publishing), and this load generator's CPU,
so it can be seen not to be the bottleneck.
"""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
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
from common.keys import Keys
from common.messages import FIGURE, SUBSCRIBE, OrjsonCodec, figure_room
from fetcher.sources.synthetic import SyntheticSource
from renderer.figure import build_figure
from rtplot.up import PrivateRedis, free_port

SYMBOLS = [f"SYM{i:02d}" for i in range(20)]


@dataclass
class Result:
    mode: str
    clients: int
    connected: int
    p50_ms: float
    p99_ms: float
    delivered_per_s: float
    gateway_cpu: float  # % of one core while publishing
    rss_kb_per_conn: float
    loadgen_cpu: float  # % of one core while publishing


def figure_receipts(latencies: list[float]) -> OnEvent:
    """Times each `figure` frame: its publish time is the payload's first field, so the
    rest of the frame is never parsed."""
    prefix = '42["figure",{"sent":'

    def on_event(frame: str, received: float) -> None:
        if frame.startswith(prefix):
            end = frame.index(",", len(prefix))
            latencies.append(received - float(frame[len(prefix) : end]))

    return on_event


def figure_payload(symbol: str, seq: int) -> dict[str, Any]:
    bars = (
        SyntheticSource()
        .fetch({symbol: int(time.time()) - 390 * 60 + 1}, time.time())
        .bars[symbol][-390:]
    )
    return {"sent": 0.0, "symbol": symbol, "seq": seq, "figure": build_figure(symbol, bars)}


def publisher(redis_url: str, stop: threading.Event, seconds: float) -> None:
    import socketio

    manager = socketio.RedisManager(
        redis_url, channel=Keys().socketio_channel, write_only=True, json=OrjsonCodec
    )
    payloads = {symbol: figure_payload(symbol, 0) for symbol in SYMBOLS}
    seq = 0
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        tick = time.monotonic()
        seq += 1
        for symbol, payload in payloads.items():
            payload["seq"] = seq
            payload["sent"] = time.time()
            manager.emit(FIGURE, payload, room=figure_room(symbol), namespace="/")
        stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))


@dataclass
class Measured:
    connected: int
    rss_kb_per_conn: float
    gateway_cpu: float
    loadgen_cpu: float
    latencies: list[float]


async def run_clients(
    url: str,
    count: int,
    publish_seconds: float,
    redis_url: str,
    gateway_pid: int,
    profile: Path | None = None,
) -> Measured:
    latencies: list[float] = []

    def subscribe(i: int) -> list[str]:
        return [
            event_frame(SUBSCRIBE, orjson.dumps({"symbol": SYMBOLS[i % len(SYMBOLS)]}).decode())
        ]

    crowd = Crowd(url, count, subscribe, figure_receipts(latencies))
    base_rss = rss_kb(gateway_pid)
    connected = await crowd.connect()
    await asyncio.sleep(2)
    idle_rss = rss_kb(gateway_pid)

    publish_stop = threading.Event()
    thread = threading.Thread(
        target=publisher, args=(redis_url, publish_stop, publish_seconds), daemon=True
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
        connected, (idle_rss - base_rss) / max(connected, 1), gateway_cpu, loadgen_cpu, latencies
    )


def one_run(mode: str, count: int, publish_seconds: float, profile: Path | None = None) -> Result:
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
        [sys.executable, "-m", "rtplot.cli", "gateway", "--mode", mode],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        url = socketio_url(port)
        measured = asyncio.run(
            run_clients(url, count, publish_seconds, redis_url, gateway.pid, profile)
        )
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
        private_redis.stop()
    ordered = sorted(measured.latencies)
    return Result(
        mode=mode,
        clients=count,
        connected=measured.connected,
        p50_ms=percentile(ordered, 0.5) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        delivered_per_s=len(measured.latencies) / publish_seconds,
        gateway_cpu=measured.gateway_cpu,
        rss_kb_per_conn=measured.rss_kb_per_conn,
        loadgen_cpu=measured.loadgen_cpu,
    )


def markdown(results: list[Result], publish_seconds: float) -> str:
    lines = [
        "## Fan-out: one gateway process",
        "",
        f"{len(SYMBOLS)} symbols, a 390-point figure per symbol once a second for "
        f"{publish_seconds:g} s; clients subscribed round-robin; everything on loopback.",
        "",
        "| mode | clients | connected | p50 | p99 | delivered/s | gateway CPU | "
        "RSS per idle connection | load generator CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.clients:,} | {r.connected:,} | {r.p50_ms:.0f} ms | "
            f"{r.p99_ms:.0f} ms | {r.delivered_per_s:,.0f} | {r.gateway_cpu:.0f} % | "
            f"{r.rss_kb_per_conn:.1f} KB | {r.loadgen_cpu:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--modes", nargs="+", default=["asyncio", "eventlet"])
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per run")
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy collapsed stacks of each gateway run"
    )
    args = parser.parse_args()
    results = []
    for count in args.clients:
        for mode in args.modes:
            out = args.profile / f"fanout-{mode}-{count}.txt" if args.profile else None
            result = one_run(mode, count, args.seconds, out)
            if out is not None and out.exists():
                print(profiles.markdown(profiles.top(out)))
            print(result, flush=True)
            results.append(result)
    print(markdown(results, args.seconds))
    print(orjson.dumps([r.__dict__ for r in results]).decode())


if __name__ == "__main__":
    main()
