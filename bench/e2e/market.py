"""What the benchmark writes, as the fetcher would: the bars of 20 symbols."""

import time
from collections.abc import Sequence

import redis

from common.bars import MINUTE, floor_minute
from common.contract.keys import Keys
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore

SYMBOLS = [f"SYM{i:02d}" for i in range(20)]
WINDOW_MINUTES = 390  # "a day": the benchmarks' 1-day window

Write = tuple[str, int, float]  # (symbol, version written, time.time() just before)


def write_tick(store: BarStore, source: SyntheticSource, symbols: Sequence[str]) -> list[Write]:
    """What a fetch tick does to the store: the minute in progress (and the one before,
    which changes at a minute's turn) upserted symbol by symbol."""
    now = time.time()
    fetched = source.fetch({s: floor_minute(now) - MINUTE for s in symbols}, now)
    writes: list[Write] = []
    for symbol in symbols:
        written = time.time()
        outcome = store.upsert(symbol, fetched.bars[symbol], as_of=now, now=now)
        if outcome.changed or outcome.trimmed:  # only then is there a new version
            writes.append((symbol, outcome.version, written))
    return writes


def backfill(client: "redis.Redis") -> None:
    """A day of bars per symbol, written before the renderer starts, so it renders each
    symbol once and every later write reaches clients as a delta."""
    now = time.time()
    store = BarStore(client, Keys(), WINDOW_MINUTES)
    fetched = SyntheticSource().fetch({s: store.window_start(now) for s in SYMBOLS}, now)
    for symbol in SYMBOLS:
        store.upsert(symbol, fetched.bars[symbol], as_of=now, now=now)
