"""History's first fill, as `rtplot up` runs it: the worker, the beat and the renderer
of a private Redis, ``--symbols`` symbols of the synthetic market, the default depths
(RTPLOT_HISTORY_DAYS); how long until every symbol has every resolution, how the
minutes' ticks kept up meanwhile, and what the history costs in Redis, per symbol and
resolution.

    python -m bench.history_fill --symbols 200 [--hours exchange]
"""

import argparse
import time
from statistics import mean

import redis

from common.contract.fields import MetaField
from common.contract.history import read_filled, read_history
from common.contract.keys import Keys
from common.resolutions import COARSE
from common.settings import DEFAULT_HISTORY_DAYS
from rtplot.processes import Stack

KEYS = Keys()


def symbols_named(count: int) -> list[str]:
    return [f"S{i:03d}" for i in range(count)]


def version(client: "redis.Redis", symbol: str) -> int:
    return int(client.hget(KEYS.meta(symbol), MetaField.VERSION) or 0)


def filled(client: "redis.Redis", symbols: list[str]) -> int:
    """How many (symbol, resolution) pairs have been filled once."""
    wanted = {r.value for r, _days in DEFAULT_HISTORY_DAYS}
    return sum(len(wanted & set(got)) for got in read_filled(client, KEYS, symbols).values())


def memory(client: "redis.Redis", symbols: list[str]) -> dict[str, float]:
    """Mean bytes of each kind of key per symbol (Redis' MEMORY USAGE, all samples)."""
    kinds = {"1m window": KEYS.bars}
    kinds.update({r.value: (lambda s, r=r: KEYS.history(s, r.value)) for r in COARSE})
    out = {}
    for name, key_of in kinds.items():
        sizes = [client.memory_usage(key_of(s), samples=0) or 0 for s in symbols]
        out[name] = mean(sizes)
    return out


def bars_held(client: "redis.Redis", symbols: list[str]) -> dict[str, float]:
    """Mean bars per symbol of each resolution."""
    out = {r.value: mean(len(read_history(client, KEYS, s, r).t) for s in symbols) for r in COARSE}
    out["1m window"] = mean(client.zcard(KEYS.bars(s)) for s in symbols)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history_fill", description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--hours", choices=("always", "exchange"), default="always")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    symbols = symbols_named(args.symbols)
    wanted = len(symbols) * len(DEFAULT_HISTORY_DAYS)
    with Stack(
        symbols=",".join(symbols), max_symbols=max(200, args.symbols), market_hours=args.hours,
    ) as stack:  # fmt: skip
        started = time.monotonic()
        for service in ("worker", "beat", "renderer"):
            stack.start(service)
        client = redis.Redis.from_url(stack.redis.url)
        minutes_at, first_version = None, 0
        progress = []
        done = 0
        while time.monotonic() - started < args.timeout:
            at = time.monotonic() - started
            if minutes_at is None and all(client.exists(KEYS.bars(s)) for s in symbols):
                minutes_at, first_version = at, version(client, symbols[-1])
            done = filled(client, symbols)
            progress.append((at, done))
            if done == wanted:
                break
            time.sleep(1.0)
        took = time.monotonic() - started
        used = memory(client, symbols)
        held = bars_held(client, symbols)
        # The last symbol's version moves once a tick that changed its minute in progress
        # (every tick, in the synthetic market), and once a resolution of history.
        ticks = version(client, symbols[-1]) - first_version - len(DEFAULT_HISTORY_DAYS)
        since_minutes = took - (minutes_at or took)
    print(
        f"{args.symbols} symbols ({args.hours}), depths "
        f"{', '.join(f'{r.value} {d} days' for r, d in DEFAULT_HISTORY_DAYS)}: "
        f"minutes of every symbol stored after {minutes_at or float('nan'):.1f} s, "
        f"every resolution of every symbol after {took:.1f} s ({done}/{wanted} filled); "
        f"meanwhile the minutes moved {ticks} times in {since_minutes:.0f} s "
        f"(a tick a second: {since_minutes:.0f})\n"
    )
    step = max(1, len(progress) // 10)
    print("progress (s: pairs filled):", ", ".join(f"{a:.0f}: {d}" for a, d in progress[::step]))
    print("\n| per symbol | bars | Redis bytes | bytes a bar |\n| --- | ---: | ---: | ---: |")
    for name in used:
        per_bar = used[name] / held[name] if held[name] else float("nan")
        print(f"| {name} | {held[name]:,.0f} | {used[name]:,.0f} | {per_bar:.0f} |")


if __name__ == "__main__":
    main()
