"""What a reconnect costs: resuming from the seq a client held against taking the
snapshot again, in the same run.

`rtplot up`'s pipeline (7-day windows by default) with two asyncio gateways. Clients
subscribe in delta mode on gateway A, one of 4 symbols each, and follow their updates.
Gateway A is killed; the clients stay away ``--away`` seconds, then all subscribe at
once on gateway B: first with ``since`` (resume), then, reconnecting once more, without
it (a snapshot each, as before resume existed). Each storm reports how long the
clients took to be live again (from sending the subscribe to its ack), what each
downloaded, and what Redis sent out meanwhile (``INFO stats``).

    .venv/bin/python -m bench.resume --clients 1000 --away 10
"""

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import websockets

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

    def row(self) -> str:
        return (
            f"| {self.kind} | {self.clients:,} | {self.live_p50_ms:,.0f} / "
            f"{self.live_p99_ms:,.0f} ms | {self.bytes_per_client / 1000:,.1f} kB | "
            f"{self.redis_out_mb:,.2f} MB | {self.resumed:,} |"
        )


HEADER = (
    "| reconnect | clients | live again (p50 / p99) | downloaded per client | Redis out "
    "| resumed |\n| --- | ---: | ---: | ---: | ---: | ---: |"
)


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"


async def subscribe(
    port: int, held: Held, since: bool, start: asyncio.Event, follow: float
) -> tuple[float, int, bool]:
    """Connect, wait for ``start``, subscribe; (ms to the ack, bytes to the ack,
    resumed). Then follow updates for ``follow`` seconds, keeping ``held`` current."""
    async with websockets.connect(url(port), open_timeout=60, ping_interval=None) as ws:
        await ws.recv()  # Engine.IO open
        await ws.send("40")
        await ws.recv()
        await start.wait()
        request: dict[str, Any] = {"symbol": held.symbol, "updates": "delta"}
        if since and held.seq:
            request["since"] = {"seq": held.seq, "epoch": held.epoch}
        sent = time.perf_counter()
        await ws.send("421" + orjson.dumps(["subscribe", request]).decode())
        received, ack = 0, None
        while ack is None:
            frame = await asyncio.wait_for(ws.recv(), timeout=120)
            received += len(frame)
            ack = _take(frame, held)
        took = (time.perf_counter() - sent) * 1000
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
    port: int, held: list[Held], since: bool, follow: float
) -> tuple[list[tuple[float, int, bool]], float]:
    start = asyncio.Event()
    tasks = [asyncio.create_task(subscribe(port, h, since, start, follow)) for h in held]
    await asyncio.sleep(min(30.0, 0.5 + len(held) / 500))  # every client connected
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    return results, time.perf_counter() - began


def redis_out(client: "redis.Redis") -> int:
    return int(client.info("stats")["total_net_output_bytes"])


def measure(kind: str, results: list[tuple[float, int, bool]], out: int) -> Storm:
    took = sorted(r[0] for r in results)
    return Storm(
        kind,
        len(results),
        percentile(took, 0.50),
        percentile(took, 0.99),
        sum(r[1] for r in results) / len(results),
        out / 1e6,
        sum(r[2] for r in results),
    )


def run(clients: int, away: float, window_minutes: int) -> list[Storm]:
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
            running = asyncio.ensure_future(storm(port_a, held, since=False, follow=away + 120))
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
            results, _ = asyncio.run(storm(port_b, held, since=since, follow=0))
            storms.append(measure(kind, results, redis_out(client) - before))
        client.close()
        return storms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--away", type=float, default=10.0, help="seconds between the kill and the storm"
    )
    parser.add_argument("--window-minutes", type=int, default=7 * 24 * 60)
    args = parser.parse_args()
    storms = run(args.clients, args.away, args.window_minutes)
    print(HEADER)
    for result in storms:
        print(result.row())


if __name__ == "__main__":
    main()
