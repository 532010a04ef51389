"""Soak of the live stream: ``rtplot stream`` for M minutes against the stand-in streamer,
watching its memory, then every stored bar checked against the trades sent.

    .venv/bin/python -m bench.stream_soak --symbols 200 --rate 5 --minutes 10

A private Redis, ``rtplot stream`` and a renderer (so the store is read as in service);
the stand-in (tests/streamer.py) sends ``--symbols`` symbols trading ``--rate`` times a
second. Every ``--every`` seconds: the stream's RSS and open files, Redis' used memory.
At the end, each symbol's stored minutes must be exactly the trades sent, folded: open,
high, low and close of their prices, volume the rise of day_volume (the first trade of a
symbol adds none). A trade lost shows as a close or volume off, one doubled as volume
too high. Bounded by --minutes; it stops everything it started.
"""

import argparse
import time
from collections import defaultdict

import redis

from bench.soak import Series, open_files
from bench.stream import BASE, symbols_named
from common.bars import MINUTE, Bar
from common.contract.keys import Keys
from common.contract.store import read_bars
from rtplot.processes import Stack, rss_kb
from tests.streamer import StandInStreamer

WARM_UP = 3  # samples left out of the trends


def expected_bars(sent: list[tuple[str, int, float]]) -> dict[str, dict[int, Bar]]:
    """The trades folded as rtplot stream must fold them."""
    bars: dict[str, dict[int, Bar]] = defaultdict(dict)
    first: set[str] = set()
    for symbol, k, at in sent:
        t = int(int(at * 1000) / 1000 // MINUTE) * MINUTE
        price = round(BASE + (k % 10_000) / 100, 2)
        volume = 100 if symbol in first else 0
        first.add(symbol)
        old = bars[symbol].get(t)
        bars[symbol][t] = (
            Bar(t, price, price, price, price, volume)
            if old is None
            else Bar(t, old.o, max(old.h, price), min(old.l, price), price, old.v + volume)
        )
    return bars


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_soak", description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    symbols = symbols_named(args.symbols)
    series = {k: Series() for k in ("stream RSS (MB)", "stream open files", "redis used (MB)")}
    with StandInStreamer() as streamer, Stack(
        symbols=",".join(symbols), max_symbols=max(200, args.symbols), source="yfinance",
        stream="yahoo", stream_url=streamer.url, fetch_interval=60, window_minutes=390,
    ) as stack:  # fmt: skip
        stream = stack.start("stream")
        stack.start("renderer")
        while streamer.subscribed != set(symbols):
            time.sleep(0.1)
        client = redis.Redis.from_url(stack.redis.url)
        started = time.monotonic()
        trades = streamer.trade_steadily(symbols, args.rate, args.minutes * 60, BASE)
        while not trades.done():
            at = time.monotonic() - started
            series["stream RSS (MB)"].add(at, rss_kb(stream.pid) / 1024)
            series["stream open files"].add(at, open_files(stream.pid))
            series["redis used (MB)"].add(at, int(client.info("memory")["used_memory"]) / 2**20)
            time.sleep(args.every)
        sent = trades.result()
        time.sleep(2)  # the last writes
        expected = expected_bars(sent)
        wrong = 0
        minutes = 0
        for symbol in symbols:
            stored = {b.t: b for b in read_bars(client, Keys(), symbol)}
            for t, bar in expected[symbol].items():
                minutes += 1
                if stored.get(t) != bar:
                    wrong += 1
                    if wrong <= 5:
                        print(f"{symbol} {t}: stored {stored.get(t)}, sent {bar}")
            extra = set(stored) - set(expected[symbol])
            wrong += len(extra)
        stream.check_alive()
    print(
        f"{len(sent):,} trades of {args.symbols} symbols over {args.minutes:g} min "
        f"({args.rate:g} a second each); {minutes:,} stored minutes checked, {wrong} wrong\n"
    )
    print("| series | first | last | trend per minute |\n| --- | ---: | ---: | ---: |")
    for name, s in series.items():
        trend = s.trend_per_minute(WARM_UP)
        print(f"| {name} | {s.values[0]:.1f} | {s.values[-1]:.1f} | {trend:+.2f} |")
    rss = series["stream RSS (MB)"]
    per_minute = max(1, round(60 / args.every))
    each_minute = " ".join(f"{v:.1f}" for v in rss.values[::per_minute])
    print(f"\nstream RSS (MB) each minute: {each_minute}")


if __name__ == "__main__":
    main()
