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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import socketio

from rtplot.processes import Stack

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

    series: dict[str, Series] = {}
    received = [0]
    with Stack(
        grace=30,
        symbols=",".join(SYMBOLS),
        window_minutes=390,
        log_level="WARNING",
        rate_burst=1000,
        rate_limit=1000,
    ) as stack:
        for name in SERVICES:
            stack.launch(name)
        stack.wait_healthy()
        time.sleep(3)  # let the first ticks and renders land
        url = stack.services["gateway"].url
        seconds = args.minutes * 60
        loop = asyncio.new_event_loop()
        clients = loop.run_in_executor(
            None, lambda: asyncio.run(run_clients(url, args.clients, seconds, received))
        )
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            at = time.monotonic() - start
            for name in SERVICES:
                service = stack.services[name]
                series.setdefault(f"{name} RSS (MB)", Series()).add(at, service.rss_kb() / 1024)
                series.setdefault(f"{name} open files", Series()).add(at, open_files(service.pid))
            memory = stack.client.info("memory")["used_memory"] / 2**20
            series.setdefault("redis used memory (MB)", Series()).add(at, memory)
            time.sleep(args.every)
        loop.run_until_complete(clients)

    report = _report(args, series, received[0])
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


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
