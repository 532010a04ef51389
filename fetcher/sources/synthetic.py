"""A deterministic synthetic market, so everything runs offline.

Each symbol's price is a geometric random walk, sampled every second, that is the same
in every process and on every run: the path of a UTC day is drawn from a generator
seeded by (symbol, day). Days are joined by a Brownian bridge between day-open prices
that follow their own daily walk, so the line is continuous across midnight. The market
trades around the clock, and the minute in progress changes every second, so a 1 s
fetch interval brings a changed bar on every tick.
"""

import hashlib
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from common.bars import MINUTE, Bar, floor_minute
from fetcher.sources.base import FetchResult

DAY = 86_400
DAILY_VOL = 0.02  # log-return standard deviation per day
FIRST_DAY = 18_262  # 2020-01-01; the daily walk starts here

Floats = npt.NDArray[np.float64]


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _base_price(symbol: str) -> float:
    return 20.0 + (_seed(symbol, "base") % 48_000) / 100.0  # 20.00 .. 500.00


@lru_cache(maxsize=64)
def _day_opens(symbol: str, last_day: int) -> Floats:
    """Open price of each day from FIRST_DAY to last_day + 1 (inclusive)."""
    rng = np.random.default_rng(_seed(symbol, "days"))
    returns = rng.standard_normal(last_day + 2 - FIRST_DAY) * DAILY_VOL
    returns[0] = 0.0
    opens: Floats = _base_price(symbol) * np.exp(np.cumsum(returns))
    return opens


def _open_of(symbol: str, day: int) -> tuple[float, float]:
    # Cached per year-ish block so a long-running process does not regrow the walk daily.
    opens = _day_opens(symbol, day | 0xFF)
    return float(opens[day - FIRST_DAY]), float(opens[day + 1 - FIRST_DAY])


@lru_cache(maxsize=32)
def _day_seconds(symbol: str, day: int) -> tuple[Floats, Floats]:
    """Price and volume for each second of one UTC day."""
    start, end = _open_of(symbol, day)
    rng = np.random.default_rng(_seed(symbol, day))
    steps = rng.standard_normal(DAY) * (DAILY_VOL / np.sqrt(DAY))
    walk = np.cumsum(steps)
    # Brownian bridge: pin the day's last second to the next day's open.
    ramp = np.arange(1, DAY + 1) / DAY
    log_path = walk - ramp * walk[-1] + ramp * np.log(end / start)
    prices: Floats = start * np.exp(log_path)
    volume: Floats = rng.gamma(shape=2.0, scale=_base_volume(symbol) / 120.0, size=DAY)
    return prices, volume


def _base_volume(symbol: str) -> float:
    return float(500 + _seed(symbol, "volume") % 20_000)  # shares per minute, on average


def _minute_bar(symbol: str, minute: int, last_second: int) -> Bar:
    """The bar of ``minute`` as it stood at second ``last_second`` (0..59) of it."""
    day, offset = divmod(minute, DAY)
    prices, volume = _day_seconds(symbol, day)
    # The minute opens at the previous second's price, so bars join up.
    first = offset - 1 if offset else 0
    window = prices[first : offset + last_second + 1]
    if offset == 0 and day > FIRST_DAY:
        window = np.concatenate(([_day_seconds(symbol, day - 1)[0][-1]], window))
    traded = volume[offset : offset + last_second + 1]
    return Bar(
        t=minute,
        o=round(float(window[0]), 2),
        h=round(float(window.max()), 2),
        l=round(float(window.min()), 2),
        c=round(float(window[-1]), 2),
        v=int(traded.sum()),
    )


class SyntheticSource:
    name = "synthetic"

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        current = floor_minute(now)
        elapsed = min(int(now) - current, MINUTE - 1)
        bars: dict[str, list[Bar]] = {}
        for symbol, start in since.items():
            minutes = range(
                max(floor_minute(start + MINUTE - 1), FIRST_DAY * DAY), current + 1, MINUTE
            )
            bars[symbol] = [
                _minute_bar(symbol, m, elapsed if m == current else MINUTE - 1) for m in minutes
            ]
        return FetchResult(bars=bars)
