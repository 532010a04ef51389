"""What a reconnect costs: resuming from the seq a client held against taking the
snapshot again, in the same run.

`rtplot up`'s pipeline (7-day windows by default) with two asyncio gateways. Clients
subscribe in delta mode on gateway A, one of 4 symbols each, and follow their updates.
Gateway A is killed; ``--away`` seconds later gateway B answers, and every client
reconnects to it after the page's own first delay (500 ms, +-50 % at random) and
subscribes: first with ``since`` (resume), then, reconnecting once more, without it (a
snapshot each, as before resume existed). Each storm reports how long the clients
took to be live again (from the storm's start to each subscribe's ack: the delay, the
WebSocket handshake and the subscribe), what each downloaded (handshake included), what
Redis sent out meanwhile (``INFO stats``), and the load generator's own CPU.

    .venv/bin/python -m bench.resume --clients 1000 --away 10
"""

import argparse
import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis
import websockets

from bench import profiles
from bench.stats import percentile
from rtplot.processes import Stack

SYMBOLS = ("AAPL", "MSFT", "TSLA", "BRK-B")


@dataclass
class Held:
    symbol: str
    seq: int = 0
    epoch: str = ""


@dataclass
class Storm:
    kind: str
    clients: int
    live_p50_ms: float
    live_p99_ms: float
    bytes_per_client: float
    redis_out_mb: float
    resumed: int
    loadgen_cpu: float  # the load generator's CPU seconds over the storm's wall seconds
    seconds: float  # from the first reconnect to the last ack

    def row(self) -> str:
        return (
            f"| {self.kind} | {self.clients:,} | {self.live_p50_ms:,.0f} / "
            f"{self.live_p99_ms:,.0f} ms | {self.bytes_per_client / 1000:,.1f} kB | "
            f"{self.redis_out_mb:,.2f} MB | {self.resumed:,} | {self.loadgen_cpu:.0%} |"
        )


HEADER = (
    "| reconnect | clients | live again (p50 / p99) | downloaded per client | Redis out "
    "| resumed | load generator CPU |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"


async def subscribe(
    port: int, held: Held, since: bool, began: float, wait: float, follow: float
) -> tuple[float, int, bool]:
    """After ``wait`` seconds, connect and subscribe, as a page does on reconnecting;
    (ms from ``began`` to the ack, bytes to the ack, resumed). Then follow updates for
    ``follow`` seconds, keeping ``held`` current."""
    await asyncio.sleep(wait)
    async with websockets.connect(url(port), open_timeout=120, ping_interval=None) as ws:
        received = len(await ws.recv())  # Engine.IO open
        await ws.send("40")
        received += len(await ws.recv())
        request: dict[str, Any] = {"symbol": held.symbol, "updates": "delta"}
        if since and held.seq:
            request["since"] = {"seq": held.seq, "epoch": held.epoch}
        await ws.send("421" + orjson.dumps(["subscribe", request]).decode())
        ack = None
        while ack is None:
            frame = await asyncio.wait_for(ws.recv(), timeout=120)
            received += len(frame)
            ack = _take(frame, held)
        took = (time.perf_counter() - began) * 1000
        deadline = time.monotonic() + follow
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=left)
            except (TimeoutError, websockets.ConnectionClosed):
                break  # the gateway was killed: the client holds what it has
            if frame == "2":
                await ws.send("3")
            _take(frame, held)
        return took, received, bool(ack.get("resumed"))


def _take(frame: str | bytes, held: Held) -> dict[str, Any] | None:
    """The ack, if this frame is it; an update moves ``held`` on."""
    if not isinstance(frame, str):
        return None
    if frame.startswith("431"):
        return dict(orjson.loads(frame[3:])[0])
    if frame.startswith("42"):
        _, payload = orjson.loads(frame[2:])
        held.seq, held.epoch = payload["seq"], payload["epoch"]
    return None


async def storm(
    port: int, held: list[Held], since: bool, follow: float, jitter: bool = True
) -> tuple[list[tuple[float, int, bool]], float]:
    """Every client reconnects, each after the page's first reconnection delay
    (gateway/static/app.js: 500 ms, +-50 % at random) unless not ``jitter``; CPU
    seconds of this load generator meanwhile."""
    began, cpu = time.perf_counter(), time.process_time()
    delays = [random.uniform(0.25, 0.75) if jitter else 0.0 for _ in held]
    tasks = [
        asyncio.create_task(subscribe(port, h, since, began, wait, follow))
        for h, wait in zip(held, delays, strict=True)
    ]
    results = await asyncio.gather(*tasks)
    return results, time.process_time() - cpu


def redis_out(client: "redis.Redis") -> int:
    return int(client.info("stats")["total_net_output_bytes"])


def measure(kind: str, results: list[tuple[float, int, bool]], out: int, cpu: float) -> Storm:
    took = sorted(r[0] for r in results)
    seconds = took[-1] / 1000
    return Storm(
        kind,
        len(results),
        percentile(took, 0.50),
        percentile(took, 0.99),
        sum(r[1] for r in results) / len(results),
        out / 1e6,
        sum(r[2] for r in results),
        cpu / seconds if seconds else 0.0,
        seconds,
    )


def run(clients: int, away: float, window_minutes: int, profile: Path | None = None) -> list[Storm]:
    """With ``profile``, py-spy samples gateway B through the resume storm and writes
    collapsed stacks there."""
    with Stack(
        grace=10,
        symbols=",".join(SYMBOLS),
        log_level="WARNING",
        window_minutes=window_minutes,
        max_queued=1000,
    ) as stack:
        for name in ("worker", "beat", "renderer"):
            stack.launch(name)
        for name in ("gateway-a", "gateway-b"):
            stack.launch(name, "gateway", "--mode", "asyncio")
        stack.wait_healthy()
        stack.wait_snapshots(SYMBOLS, timeout=300)
        port_a, port_b = stack.services["gateway-a"].port, stack.services["gateway-b"].port
        client = redis.Redis.from_url(stack.redis.url)
        held = [Held(SYMBOLS[i % len(SYMBOLS)]) for i in range(clients)]

        async def first() -> None:
            first_storm = storm(port_a, held, since=False, follow=away + 120, jitter=False)
            running = asyncio.ensure_future(first_storm)
            deadline = time.monotonic() + 120
            while any(not h.seq for h in held) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)  # until every client holds a figure
            await asyncio.sleep(3)  # and has followed a few updates
            stack.services["gateway-a"].kill()
            await running  # each client's connection ends with the gateway

        asyncio.run(first())
        time.sleep(away)
        storms = []
        for kind, since in (("resume (since)", True), ("snapshot (no since)", False)):
            before = redis_out(client)
            sampling = None
            if profile is not None and since:
                sampling = profiles.record(stack.services["gateway-b"].pid, 12, profile)
            results, cpu = asyncio.run(storm(port_b, held, since=since, follow=0))
            storms.append(measure(kind, results, redis_out(client) - before, cpu))
            if sampling is not None:
                sampling.wait()
        client.close()
        return storms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--away", type=float, default=10.0, help="seconds between the kill and the storm"
    )
    parser.add_argument("--window-minutes", type=int, default=7 * 24 * 60)
    parser.add_argument("--profile", type=Path, help="py-spy gateway B's resume storm here")
    args = parser.parse_args()
    storms = run(args.clients, args.away, args.window_minutes, args.profile)
    print(HEADER)
    for result in storms:
        print(result.row())
    if args.profile is not None:
        print()
        print(profiles.markdown(profiles.top(args.profile)))


if __name__ == "__main__":
    main()
