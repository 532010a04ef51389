"""Soak test: N clients for M minutes against the whole pipeline, watching for growth.

    .venv/bin/python -m bench.soak --clients 200 --minutes 5 [--write docs/soak.md]

Starts its own redis-server and rtplot services on free loopback ports, connects N
Socket.IO clients (one asyncio process, all on 127.0.0.1) spread over the configured
symbols, and every --every seconds samples each service's RSS and open files and Redis'
used memory. It reports first and last samples and the least-squares trend per minute of
each series; after the warm-up a leak shows as a steady positive trend. Not part of the
test suite: its loops are bounded by --minutes and it stops everything it started.
"""

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import socketio

from rtplot.up import PrivateRedis, free_port

SYMBOLS = ["AAPL", "MSFT", "TSLA", "BRK-B", "NVDA"]
SERVICES = ("worker", "beat", "renderer", "gateway")


@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, at: float, value: float) -> None:
        self.times.append(at)
        self.values.append(value)

    def trend_per_minute(self, skip: int) -> float:
        """Least-squares slope after the first ``skip`` samples (the warm-up)."""
        xs, ys = self.times[skip:], self.values[skip:]
        if len(xs) < 2:
            return 0.0
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def run_clients(url: str, count: int, seconds: float, received: list[int]) -> None:
    clients = []
    for i in range(count):
        client = socketio.AsyncClient(reconnection=True)

        async def on_figure(_data: object) -> None:
            received[0] += 1

        client.on("figure", on_figure)
        await client.connect(url, transports=["websocket"])
        await client.call("subscribe", {"symbol": SYMBOLS[i % len(SYMBOLS)]}, timeout=10)
        clients.append(client)
    await asyncio.sleep(seconds)
    for client in clients:
        await client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=int, default=3, help="samples left out of trends")
    parser.add_argument("--write", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not on PATH", file=sys.stderr)
        return 1

    gateway_port = free_port()
    private_redis = PrivateRedis("redis-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPLOT_")}
    env.update(
        {
            "RTPLOT_REDIS_URL": private_redis.url,
            "RTPLOT_SYMBOLS": ",".join(SYMBOLS),
            "RTPLOT_WINDOW_MINUTES": "390",
            "RTPLOT_PORT": str(gateway_port),
            "RTPLOT_LOG_LEVEL": "WARNING",
            "RTPLOT_RATE_BURST": "1000",
            "RTPLOT_RATE_LIMIT": "1000",
        }
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in SERVICES:
        service_env = dict(env, RTPLOT_METRICS_PORT=str(free_port()))
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "rtplot.cli", name],
            env=service_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    client = redis.Redis(port=private_redis.port)
    url = f"http://127.0.0.1:{gateway_port}"
    series: dict[str, Series] = {}
    received = [0]
    try:
        _wait_up(url)
        seconds = args.minutes * 60
        loop = asyncio.new_event_loop()
        clients = loop.run_in_executor(
            None, lambda: asyncio.run(run_clients(url, args.clients, seconds, received))
        )
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            at = time.monotonic() - start
            for name, proc in procs.items():
                series.setdefault(f"{name} RSS (MB)", Series()).add(at, rss_mb(proc.pid))
                series.setdefault(f"{name} open files", Series()).add(at, open_files(proc.pid))
            memory = client.info("memory")["used_memory"] / 2**20
            series.setdefault("redis used memory (MB)", Series()).add(at, memory)
            time.sleep(args.every)
        loop.run_until_complete(clients)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=30)
        client.close()
        private_redis.stop()

    report = _report(args, series, received[0])
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


def _wait_up(url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                time.sleep(3)  # let the first ticks and renders land
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the gateway did not come up")


def _report(args: argparse.Namespace, series: dict[str, Series], received: int) -> str:
    lines = [
        "# Soak test",
        "",
        f"{args.clients} Socket.IO clients over {len(SYMBOLS)} symbols for {args.minutes:g} "
        f"minutes against the whole pipeline on one machine; a sample every {args.every:g} s; "
        f"trends leave out the first {args.warmup} samples (warm-up). "
        f"{received:,} figure updates delivered.",
        "",
        "Reproduce: `.venv/bin/python -m bench.soak "
        f"--clients {args.clients} --minutes {args.minutes:g} --write docs/soak.md`",
        "",
        "| series | first | last | trend per minute |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, data in series.items():
        lines.append(
            f"| {name} | {data.values[0]:.1f} | {data.values[-1]:.1f} "
            f"| {data.trend_per_minute(args.warmup):+.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
