"""Live trades to the page: how long a trade takes from the stream to a page-like
client, and how soon every symbol is live again after the streamer drops.

On this machine: a private Redis, ``rtplot stream``, a renderer and an asyncio gateway;
the stand-in streamer (tests/streamer.py) sends ``--symbols`` symbols trading ``--rate``
times a second each, every trade at a price that names it. Page-like clients (the lean
load generator, 40 symbols each, in delta mode as the page) receive the updates. A
trade's latency runs from the moment the stand-in sends it (a loopback hop before the
stream receives it) to the first update a client receives whose close is that trade's
or a later one's: a trade folded into a later write is on screen when that write is.

``--outage S`` then drops the streamer for S seconds (trades keep coming and are lost,
as with Yahoo) and measures, from the moment it answers again, how long until every
symbol has delivered a trade sent after it.

    .venv/bin/python -m bench.stream --symbols 200 --rate 5 --seconds 30 --outage 30
"""

import argparse
import asyncio
import bisect
import time
from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from bench.loadgen import Crowd, event_frame, received_prefix, self_cpu, socketio_url
from bench.stats import percentile
from common.messages import BARS, SUBSCRIBE
from rtplot.processes import Stack
from tests.streamer import StandInStreamer, pricing_frame

PER_CLIENT = 40  # symbols a page-like client subscribes to, at once (RTPLOT_RATE_BURST)
BASE = 100.0  # the price of trade 0, in dollars; trade k is k cents above it


@dataclass
class Seen:
    """Each symbol's updates as received: (receipt time, trade k of the close)."""

    prefix: bytes = received_prefix(BARS)
    by_symbol: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))

    def on_event(self, frame: bytes, received: float) -> None:
        if not frame.startswith(self.prefix):
            return
        delta = orjson.loads(frame[len(self.prefix) : -1])
        if delta["bars"]:
            close = delta["bars"][-1][4]
            self.by_symbol[delta["symbol"]].append((received, round((close - BASE) * 100)))


def symbols_named(count: int) -> list[str]:
    return [f"S{i:03d}" for i in range(count)]


async def connect(port: int, symbols: list[str], seen: Seen) -> list[Crowd]:
    groups = [symbols[i : i + PER_CLIENT] for i in range(0, len(symbols), PER_CLIENT)]

    def frames(i: int) -> list[str]:
        return [
            event_frame(SUBSCRIBE, orjson.dumps({"symbol": s, "updates": "delta"}).decode())
            for s in groups[i]
        ]

    crowd = Crowd(socketio_url(port), len(groups), frames, seen.on_event)
    await crowd.connect()
    return [crowd]


def latencies(sent: list[tuple[str, int, float]], seen: Seen) -> tuple[list[float], int]:
    """Each delivered trade's latency in ms, and how many were never shown."""
    out, missing = [], 0
    receipts = {s: sorted(r) for s, r in seen.by_symbol.items()}
    for symbol, k, at in sent:
        rows = receipts.get(symbol, [])
        i = bisect.bisect_left(rows, (at, -1))
        shown = next((received for received, kk in rows[i:] if kk >= k), None)
        if shown is None:
            missing += 1
        else:
            out.append((shown - at) * 1000)
    return out, missing


def live_again(symbols: list[str], seen: Seen, answered: float) -> float | None:
    """Seconds from ``answered`` until every symbol showed a trade sent after it."""
    firsts = []
    for symbol in symbols:
        after = [received for received, _ in seen.by_symbol.get(symbol, ()) if received > answered]
        if not after:
            return None
        firsts.append(min(after))
    return max(firsts) - answered


async def run(args: argparse.Namespace) -> dict[str, object]:
    symbols = symbols_named(args.symbols)
    report: dict[str, object] = {"symbols": args.symbols, "rate": args.rate}
    with StandInStreamer() as streamer, Stack(
        symbols=",".join(symbols), max_symbols=max(200, args.symbols), source="yfinance",
        stream="yahoo", stream_url=streamer.url, fetch_interval=60, window_minutes=390,
    ) as stack:  # fmt: skip
        for name in ("stream", "renderer", "gateway"):
            stack.start(name)
        while streamer.subscribed != set(symbols):
            await asyncio.sleep(0.1)
        now_ms = int(time.time() * 1000)  # a first bar each, so subscribes get a figure
        streamer.send(pricing_frame(s, BASE, now_ms, 0) for s in symbols)
        await asyncio.sleep(2)
        seen = Seen()
        crowds = await connect(stack.services["gateway"].port or 0, symbols, seen)
        cpu = {n: stack.services[n].cpu_seconds() for n in ("stream", "renderer", "gateway")}
        own = self_cpu()
        started = time.time()
        sent = await asyncio.wrap_future(
            streamer.trade_steadily(symbols, args.rate, args.seconds, BASE)
        )
        await asyncio.sleep(2)  # the last trades' updates
        elapsed = time.time() - started
        ms, missing = latencies(sent, seen)
        report |= {
            "trades": len(sent),
            "missing": missing,
            "p50_ms": round(percentile(ms, 0.5), 1),
            "p99_ms": round(percentile(ms, 0.99), 1),
            "max_ms": round(max(ms), 1),
            "cpu_share": {
                n: round((stack.services[n].cpu_seconds() - c) / elapsed, 3) for n, c in cpu.items()
            }
            | {"load generator and stand-in": round((self_cpu() - own) / elapsed, 3)},
        }
        if args.outage:
            streamer.down()
            dropped_at = time.time()
            seconds = args.outage + args.after
            trades = streamer.trade_steadily(symbols, args.rate, seconds, BASE + 50)
            await asyncio.sleep(args.outage)
            streamer.up()
            answered = time.time()
            await asyncio.wrap_future(trades)
            again = live_again(symbols, seen, answered)
            report["outage"] = {
                "dropped_s": round(answered - dropped_at, 1),
                "every_symbol_live_again_s": None if again is None else round(again, 2),
            }
        for crowd in crowds:
            await crowd.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="trades a second per symbol")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--outage", type=float, default=0.0, help="seconds the streamer is away")
    parser.add_argument(
        "--after", type=float, default=10.0, help="seconds of trades after it answers again"
    )
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
