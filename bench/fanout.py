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
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import websockets

from common.keys import Keys
from common.messages import FIGURE, OrjsonCodec, figure_room
from fetcher.sources.synthetic import SyntheticSource
from renderer.figure import build_figure
from rtplot.up import PrivateRedis, free_port

SYMBOLS = [f"SYM{i:02d}" for i in range(20)]
CONNECT_CONCURRENCY = 200  # handshakes in flight at once


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


class Client:
    """Just enough Engine.IO v4 / Socket.IO v5 to subscribe and time `figure` events."""

    def __init__(self, latencies: list[float]) -> None:
        self.latencies = latencies
        self.ready = asyncio.Event()

    async def run(self, url: str, symbol: str, stop: asyncio.Event) -> None:
        async with websockets.connect(
            url, max_size=None, compression=None, ping_interval=None
        ) as ws:
            await ws.recv()  # 0{...}: open
            await ws.send("40")
            await ws.recv()  # 40{...}: connected
            await ws.send(f'42["subscribe",{{"symbol":"{symbol}"}}]')
            self.ready.set()
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout=1)
                except TimeoutError:
                    continue
                if message == "2":
                    await ws.send("3")  # pong
                elif isinstance(message, str) and message.startswith('42["figure",{"sent":'):
                    # The publish time is the payload's first field: no need to parse the rest.
                    end = message.index(",", 20)
                    self.latencies.append(time.time() - float(message[20:end]))


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Measured:
    connected: int
    rss_kb_per_conn: float
    gateway_cpu: float
    loadgen_cpu: float
    latencies: list[float]


async def run_clients(
    url: str, count: int, publish_seconds: float, redis_url: str, gateway_pid: int
) -> Measured:
    latencies: list[float] = []
    stop = asyncio.Event()
    clients = [Client(latencies) for _ in range(count)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def start(client: Client, i: int) -> None:
        async with gate:
            task = asyncio.create_task(client.run(url, SYMBOLS[i % len(SYMBOLS)], stop))
            await asyncio.wait(
                [task, asyncio.create_task(client.ready.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        await task

    base_rss = rss_kb(gateway_pid)
    tasks = [asyncio.create_task(start(c, i)) for i, c in enumerate(clients)]
    await _wait_ready(clients, timeout=120)
    await asyncio.sleep(2)
    connected = sum(c.ready.is_set() for c in clients)
    idle_rss = rss_kb(gateway_pid)

    publish_stop = threading.Event()
    thread = threading.Thread(
        target=publisher, args=(redis_url, publish_stop, publish_seconds), daemon=True
    )
    gateway_cpu0, self0, wall0 = cpu_seconds(gateway_pid), _self_cpu(), time.monotonic()
    thread.start()
    await asyncio.sleep(publish_seconds + 1)
    publish_stop.set()
    wall = time.monotonic() - wall0
    gateway_cpu = (cpu_seconds(gateway_pid) - gateway_cpu0) / wall * 100
    loadgen_cpu = (_self_cpu() - self0) / wall * 100
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return Measured(
        connected, (idle_rss - base_rss) / max(connected, 1), gateway_cpu, loadgen_cpu, latencies
    )


async def _wait_ready(clients: list[Client], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(c.ready.is_set() for c in clients):
        await asyncio.sleep(0.2)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_run(mode: str, count: int, publish_seconds: float) -> Result:
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
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        measured = asyncio.run(run_clients(url, count, publish_seconds, redis_url, gateway.pid))
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
        private_redis.stop()
    ordered = sorted(measured.latencies) or [float("nan")]
    return Result(
        mode=mode,
        clients=count,
        connected=measured.connected,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000,
        delivered_per_s=len(measured.latencies) / publish_seconds,
        gateway_cpu=measured.gateway_cpu,
        rss_kb_per_conn=measured.rss_kb_per_conn,
        loadgen_cpu=measured.loadgen_cpu,
    )


def _wait_http(url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


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
    args = parser.parse_args()
    results = []
    for count in args.clients:
        for mode in args.modes:
            result = one_run(mode, count, args.seconds)
            print(result, flush=True)
            results.append(result)
    print(markdown(results, args.seconds))
    print(orjson.dumps([r.__dict__ for r in results]).decode())


if __name__ == "__main__":
    main()
