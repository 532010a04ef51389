"""A flood of distinct views against an honest viewer: what the caps on views
(``RTPLOT_MAX_VIEWS_PER_SYMBOL``, ``RTPLOT_MAX_VIEWS``) and the renderer's order (the
default views first, then the most watched) keep for everyone else.

`rtplot up`'s pipeline (7-day windows by default), one asyncio gateway, 20 symbols
ticking once a second. An honest page watches AAPL's default view in delta mode. Then
``--connections`` connections each subscribe ``--views`` times, each time to another
view of one of the 20 symbols (a connection holds one view per symbol, so up to
connections x 20 distinct views at once), paced under the rate limit. Reported per
configuration, in the same run: the subscribes accepted and refused, the distinct views
watched, and the honest page's updates a second and longest gap while the flood runs.

    .venv/bin/python -m bench.flood --connections 100 --views 50 --seconds 30
"""

import argparse
import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import websockets

from common.contract.keys import Keys
from common.views import CHARTS, INDICATORS, TIMEFRAMES, View
from rtplot.processes import Stack

SYMBOLS = ("AAPL", *(f"F{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(19)))
NO_CAP = 1_000_000


@dataclass
class Flooded:
    config: str
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    views: int = 0  # distinct views listed at the end
    updates_per_s: float = 0.0
    longest_gap_s: float = 0.0

    def row(self) -> str:
        refused = ", ".join(f"{n:,} {why}" for why, n in sorted(self.refused.items())) or "none"
        return (
            f"| {self.config} | {self.accepted:,} | {refused} | {self.views:,} | "
            f"{self.updates_per_s:.2f} | {self.longest_gap_s:.1f} s |"
        )


HEADER = (
    "| views capped | subscribes accepted | refused | distinct views watched "
    "| honest page: updates/s | longest gap |\n| --- | ---: | --- | ---: | ---: | ---: |"
)


def all_views() -> list[View]:
    """Every view but the default one, in a fixed order."""
    subsets = [
        tuple(c) for n in range(len(INDICATORS) + 1) for c in itertools.combinations(INDICATORS, n)
    ]
    views = [
        View(chart, timeframe, indicators, volume)
        for chart in CHARTS
        for timeframe in TIMEFRAMES
        for indicators in subsets
        for volume in (False, True)
    ]
    return [view for view in views if view.key]


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"


async def flooder(port: int, index: int, count: int, views: list[View], out: Flooded) -> None:
    """One connection's subscribes, 10 a second (the limit is 20), each to a new view."""
    async with websockets.connect(url(port), open_timeout=60, ping_interval=None) as ws:
        await ws.recv()
        await ws.send("40")
        await ws.recv()
        for n in range(count):
            view = views[(index * count + n) % len(views)]
            request = {
                "symbol": SYMBOLS[(index + n) % len(SYMBOLS)],
                "updates": "delta",
                "chart": view.chart,
                "timeframe": view.timeframe,
                "indicators": list(view.indicators),
                "volume": view.volume,
            }
            await ws.send(f"42{n}" + orjson.dumps(["subscribe", request]).decode())
            await asyncio.sleep(0.1)
        acks = 0
        deadline = time.monotonic() + 60
        while acks < count and time.monotonic() < deadline:
            frame = await asyncio.wait_for(ws.recv(), timeout=60)
            if frame == "2":
                await ws.send("3")
            elif isinstance(frame, str) and frame.startswith("43"):
                acks += 1
                ack = orjson.loads(frame[frame.index("[") :])[0]
                if ack.get("ok"):
                    out.accepted += 1
                else:
                    why = str(ack.get("error", "?")).split(" (")[0]
                    out.refused[why] = out.refused.get(why, 0) + 1
        await asyncio.sleep(3600)  # hold the views until cancelled


async def honest(port: int, seconds: float, arrivals: list[float]) -> None:
    async with websockets.connect(url(port), open_timeout=60, ping_interval=None) as ws:
        await ws.recv()
        await ws.send("40")
        await ws.recv()
        request = {"symbol": "AAPL", "updates": "delta"}
        await ws.send("420" + orjson.dumps(["subscribe", request]).decode())
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=left)
            except TimeoutError:
                break
            if frame == "2":
                await ws.send("3")
            elif isinstance(frame, str) and frame.startswith('42["bars"'):
                arrivals.append(time.monotonic())


def run(connections: int, views: int, seconds: float, window_minutes: int, capped: bool) -> Flooded:
    caps: dict[str, Any] = {} if capped else {"max_views_per_symbol": NO_CAP, "max_views": NO_CAP}
    config = "yes (defaults)" if capped else "no"
    with Stack(
        grace=10,
        symbols=",".join(SYMBOLS),
        log_level="WARNING",
        window_minutes=window_minutes,
        max_subscriptions=len(SYMBOLS),
        **caps,
    ) as stack:
        for name in ("worker", "beat", "renderer", "gateway"):
            stack.launch(name)
        stack.wait_healthy()
        stack.wait_snapshots(SYMBOLS, timeout=300)
        port = stack.services["gateway"].port
        out = Flooded(config)
        arrivals: list[float] = []
        every = all_views()

        async def scenario() -> None:
            crowd = [
                asyncio.create_task(flooder(port, i, views, every, out)) for i in range(connections)
            ]
            await honest(port, 5 + views * 0.1 + seconds, arrivals)
            for task in crowd:
                task.cancel()
            await asyncio.gather(*crowd, return_exceptions=True)

        asyncio.run(scenario())
        client = redis.Redis.from_url(stack.redis.url)
        out.views = sum(int(client.zcard(Keys().views(s))) for s in SYMBOLS)
        client.close()
        measured = [t for t in arrivals if t >= arrivals[0] + 5] if arrivals else []
        if len(measured) > 1:
            span = measured[-1] - measured[0]
            out.updates_per_s = (len(measured) - 1) / span if span else 0.0
            out.longest_gap_s = max(b - a for a, b in itertools.pairwise(measured))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--views", type=int, default=50, help="subscribes per connection")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured after the flood")
    parser.add_argument("--window-minutes", type=int, default=7 * 24 * 60)
    args = parser.parse_args()
    rows = [
        run(args.connections, args.views, args.seconds, args.window_minutes, capped)
        for capped in (False, True)
    ]
    print(HEADER)
    for row in rows:
        print(row.row())


if __name__ == "__main__":
    main()
