"""A deterministic synthetic market, so everything runs offline.

Each symbol's price is a geometric random walk, sampled every second, that is the same
in every process and on every run. It is drawn coarse to fine: a walk of day-open
prices; within a day, hour-open prices on a Brownian bridge between the day's open and
the next; within an hour, a price per second on a bridge between the hour's open and
the next, drawn from a generator seeded by (symbol, day, hour). So the line is
continuous across hours and days, and a process holds a symbol's current hour (58 kB),
not its day: hundreds of symbols tick cheaply. The minute in progress changes every
second, so a 1 s fetch interval brings a changed bar on every tick.

By default (``RTPLOT_MARKET_HOURS=always``) the market trades around the clock, so a
demo is always live; its charts still run on each symbol's exchange clock
(common.markets). With ``exchange``, a symbol has bars only while its exchange trades:
a stock in its session on weekdays, FX (``=X``) around the clock on weekdays, crypto
(``-USD``) always. The walk goes on underneath, so a session opens where the price
went overnight. Either way the hour the exchange's clocks go back to repeat has no
bars, so that no chart on that clock draws two bars at one time.
"""

import hashlib
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from common.bars import MINUTE, Bar, floor_minute
from common.markets import Market, market_for
from common.resolutions import Columns, Resolution
from fetcher.sources.base import FetchResult

DAY = 86_400
HOUR = 3_600
DAILY_VOL = 0.02  # log-return standard deviation per day
FIRST_DAY = 18_262  # 2020-01-01; the daily walk starts here

Floats = npt.NDArray[np.float64]


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _base_price(symbol: str) -> float:
    return 20.0 + (_seed(symbol, "base") % 48_000) / 100.0  # 20.00 .. 500.00


@lru_cache(maxsize=1024)
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


def _bridge(
    rng: np.random.Generator, steps: int, step_vol: float, start: float, end: float
) -> Floats:
    """A geometric random walk of ``steps`` steps from ``start``, pinned to end at ``end``:
    the price after each step."""
    walk = np.cumsum(rng.standard_normal(steps) * step_vol)
    ramp = np.arange(1, steps + 1) / steps
    path: Floats = start * np.exp(walk - ramp * walk[-1] + ramp * np.log(end / start))
    return path


@lru_cache(maxsize=1024)
def _hour_opens(symbol: str, day: int) -> Floats:
    """Open price of each hour of a UTC day, and the next day's open (25 prices)."""
    start, end = _open_of(symbol, day)
    rng = np.random.default_rng(_seed(symbol, day, "hours"))
    hours = _bridge(rng, DAY // HOUR, DAILY_VOL / np.sqrt(DAY // HOUR), start, end)
    return np.concatenate(([start], hours))


@lru_cache(maxsize=2048)
def _hour_seconds(symbol: str, hour: int) -> tuple[Floats, Floats]:
    """Price (after each second) and volume of each second of one hour (epoch // HOUR)."""
    day, index = divmod(hour, DAY // HOUR)
    opens = _hour_opens(symbol, day)
    rng = np.random.default_rng(_seed(symbol, day, index))
    prices = _bridge(rng, HOUR, DAILY_VOL / np.sqrt(DAY), opens[index], opens[index + 1])
    volume: Floats = rng.gamma(shape=2.0, scale=_base_volume(symbol) / 120.0, size=HOUR)
    return prices, volume


def _base_volume(symbol: str) -> float:
    return float(500 + _seed(symbol, "volume") % 20_000)  # shares per minute, on average


def _minute_bar(symbol: str, minute: int, last_second: int) -> Bar:
    """The bar of ``minute`` as it stood at second ``last_second`` (0..59) of it."""
    hour, offset = divmod(minute, HOUR)
    prices, volume = _hour_seconds(symbol, hour)
    # The minute opens at the previous second's price, so bars join up; an hour's first
    # minute opens at the hour's open, where the hour before ended.
    window = prices[max(offset - 1, 0) : offset + last_second + 1]
    if offset == 0:
        day, index = divmod(hour, DAY // HOUR)
        window = np.concatenate(([_hour_opens(symbol, day)[index]], window))
    traded = volume[offset : offset + last_second + 1]
    return Bar(
        t=minute,
        o=round(float(window[0]), 2),
        h=round(float(window.max()), 2),
        l=round(float(window.min()), 2),
        c=round(float(window[-1]), 2),
        v=int(traded.sum()),
    )


def minute_columns(symbol: str, hour: int) -> Columns:
    """The 60 minutes of an hour, every one finished, as columns: the same as
    ``_minute_bar`` gives at each minute's last second, a whole hour at once."""
    prices, volume = _hour_seconds(symbol, hour)
    day, index = divmod(hour, DAY // HOUR)
    # Each minute spans its 60 seconds plus the price it opened at: the second before.
    before: Floats = np.concatenate(([_hour_opens(symbol, day)[index]], prices[:-1]))
    seconds = prices.reshape(60, 60)
    opens = before.reshape(60, 60)[:, 0]
    highs = np.maximum(seconds.max(axis=1), opens)
    lows = np.minimum(seconds.min(axis=1), opens)
    traded = volume.reshape(60, 60).sum(axis=1).astype(np.int64)
    return Columns(
        hour * HOUR + np.arange(60, dtype=np.int64) * MINUTE,
        np.round(opens, 2),
        np.round(highs, 2),
        np.round(lows, 2),
        np.round(seconds[:, -1], 2),
        traded,
    )


@lru_cache(maxsize=4096)
def _finished_minutes(symbol: str, hour: int) -> list[Bar]:
    """``minute_columns`` as bars (a week's backfill is 168 hours a symbol)."""
    return minute_columns(symbol, hour).bars()


class SyntheticSource:
    name = "synthetic"

    def __init__(self, market_hours: str = "always") -> None:
        if market_hours not in ("always", "exchange"):
            raise ValueError(f"market_hours must be 'always' or 'exchange', not {market_hours!r}")
        self.market_hours = market_hours

    def market(self, symbol: str) -> Market:
        market = market_for(symbol)
        return market if self.market_hours == "exchange" else market.always_open()

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        current = floor_minute(now)
        elapsed = min(int(now) - current, MINUTE - 1)
        result = FetchResult(bars={})
        for symbol, start in since.items():
            first = max(floor_minute(start + MINUTE - 1), FIRST_DAY * DAY)
            market = result.markets[symbol] = self.market(symbol)
            minutes = np.arange(first, current + 1, MINUTE, dtype=np.int64)
            minutes = minutes[market.open_mask(minutes) & ~market.repeated(minutes)]
            result.bars[symbol] = [
                _minute_bar(symbol, m, elapsed)
                if m == current
                else _finished_minutes(symbol, m // HOUR)[(m % HOUR) // MINUTE]
                for m in minutes.tolist()
            ]
        return result

    def history(
        self, resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
    ) -> FetchResult:
        """Bars of ``resolution`` over each span (fetcher.sources.synthetic_history)."""
        from fetcher.sources.synthetic_history import history  # it draws on this walk

        result = FetchResult(bars={})
        for symbol, span in spans.items():
            market = result.markets[symbol] = self.market(symbol)
            result.columns[symbol] = history(symbol, market, resolution, span, now)
        return result
