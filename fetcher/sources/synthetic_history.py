"""The synthetic market's history: its bars at 5m, 1h and 1d as far back as the store
keeps them, deterministically, from the same walk as its minutes (fetcher.sources.synthetic).

A week of minutes costs ~65 ms a symbol to draw; twenty years of them would cost hours.
So the past is drawn in steps that grow with its distance from the day it is asked for
(``today``), each step a bar that opens where the one before closed:

- the last ``EXACT_DAYS`` UTC days: the minutes themselves, rolled up to 5-minute steps.
  Coarse bars there agree with the minute bars the store holds, to the cent;
- up to ``FINE_DAYS`` back: 5-minute steps, on bridges between hour opens that are
  themselves a bridge between the walk's day opens;
- up to ``HOURLY_DAYS`` back: a step an hour, between the same hour opens;
- before that: a step a day, between the walk's day opens (before 2020, where the walk
  starts, it runs backwards from its first price).

Day opens are the walk's own, so every region passes through the prices the minutes
do; within a step only the highs, lows and volumes are sketched. The random numbers of
the coarser regions are a hash of (symbol, step) (``_uniform``), so any stretch of the
past is drawn without what lies before it, in numpy, a symbol's twenty years in a few
tens of milliseconds. Each step is a bar of the exchange's clock's bar holding its
first moment in session (a stock's steps outside its session are left out), so a
resolution's bars are the rollup of the steps: 1h bars agree with 5m bars and 1d bars
with 1h bars wherever both exist. The same day asks the same bars in every process; a
bar is drawn in a finer region while it is recent, and the store keeps what it was
given (fetcher.history asks only for what is new).
"""

from functools import lru_cache

import numpy as np

from common.bars import MINUTE
from common.markets import DAY, Market
from common.resolutions import Columns, Resolution, rollup_columns
from fetcher.sources import synthetic as walk

EXACT_DAYS = 8
FINE_DAYS = 60
HOURLY_DAYS = 730
EARLY_DAYS = 40 * 366  # the walk backwards from 2020: forty years of days
STEP = 300  # a fine step: five minutes
HOUR = walk.HOUR
HOURS = DAY // HOUR
_EMPTY = Columns.of([])


def history(
    symbol: str, market: Market, resolution: Resolution, span: tuple[int, int], now: float
) -> Columns:
    """The bars of ``resolution`` starting in ``span`` (and not after ``now``), on
    ``market``'s clock; fewer than asked where the resolution is finer than the region
    (5m bars go back ``FINE_DAYS``, 1h bars ``HOURLY_DAYS``, 1m bars ``EXACT_DAYS``)."""
    today = int(now // DAY)
    reach = {Resolution.M1: EXACT_DAYS, Resolution.M5: FINE_DAYS, Resolution.H1: HOURLY_DAYS}
    start, end = span
    if resolution in reach:
        start = max(start, (today - reach[resolution] + 1) * DAY)
    start = max(start, (walk.FIRST_DAY - EARLY_DAYS + 1) * DAY)
    last = min(end - 1, int(now))
    if last < start:
        return _EMPTY
    # A day before the span: the first bar wanted may start before its first UTC day.
    steps = _steps(symbol, market, start // DAY - 1, last // DAY, today, now, resolution)
    bars = rollup_columns(steps, resolution, market)
    return bars.take((bars.t >= span[0]) & (bars.t >= start) & (bars.t < end) & (bars.t <= now))


def _steps(
    symbol: str,
    market: Market,
    first_day: int,
    last_day: int,
    today: int,
    now: float,
    resolution: Resolution,
) -> Columns:
    parts = []
    fine_from, exact_from = today - FINE_DAYS + 1, today - EXACT_DAYS + 1
    regions = (
        (first_day, today - HOURLY_DAYS + 1, _day_steps),
        (today - HOURLY_DAYS + 1, fine_from, _hour_steps),
        (fine_from, exact_from, _fine_steps),
    )
    for lo, hi, steps in regions:
        lo, hi = max(lo, first_day), min(hi, last_day + 1)
        if lo < hi:
            parts.append(steps(symbol, market, lo, hi))
    minutes = resolution is Resolution.M1
    for day in range(max(first_day, exact_from), last_day + 1):
        parts.append(_exact_steps(symbol, market, day, int(now), minutes))
    return Columns.join(parts) if parts else _EMPTY


def _exact_steps(symbol: str, market: Market, day: int, now: int, minutes: bool) -> Columns:
    """The day's minutes in session (up to the last finished at ``now``), rolled up to
    5-minute steps unless ``minutes``."""
    if (day + 1) * DAY <= now and not minutes:
        return _exact_day(symbol, market, day)
    return _exact_drawn(symbol, market, day, now, minutes)


def _exact_drawn(symbol: str, market: Market, day: int, now: int, minutes: bool) -> Columns:
    hours = range(day * HOURS, min((day + 1) * HOURS, now // HOUR + 1))
    if not hours:
        return _EMPTY
    cols = Columns.join([walk.minute_columns(symbol, hour) for hour in hours])
    in_session = market.open_mask(cols.t) & ~market.repeated(cols.t)
    cols = cols.take(in_session & (cols.t + MINUTE <= now))
    return cols if minutes else rollup_columns(cols, Resolution.M5)


@lru_cache(maxsize=2048)  # 8 days of 200 symbols: ~25 MB
def _exact_day(symbol: str, market: Market, day: int) -> Columns:
    """A finished day's exact steps (asked again for each resolution: kept)."""
    return _exact_drawn(symbol, market, day, (day + 1) * DAY, minutes=False)


def _in_session(market: Market, t: np.ndarray) -> np.ndarray:
    return market.open_mask(t) & ~market.repeated(t)


def _uniform(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """A number in (0, 1) for each index, the same for the same (seed, index, stream):
    splitmix64 of the index, so any stretch of the past is drawn without drawing what
    lies before it (a generator per hour would cost ~10 us each)."""
    with np.errstate(over="ignore"):
        x = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x += np.uint64((seed + stream * 0xD1B54A32D192ED03) % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def _normal(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """A standard normal for each index (Box-Muller of two ``_uniform``)."""
    u1, u2 = _uniform(seed, index, 2 * stream), _uniform(seed, index, 2 * stream + 1)
    return np.asarray(np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2))


def _bridges(
    seed: int,
    index: np.ndarray,
    steps: int,
    vol: float,
    start: np.ndarray,
    end: np.ndarray,
    stream: int,
) -> np.ndarray:
    """``synthetic._bridge`` for many spans at once (rows: ``index``): the price after
    each of ``steps`` steps of each, from ``start`` to ``end``."""
    cells = index[:, None] * steps + np.arange(steps, dtype=np.int64)[None, :]
    walk_ = np.cumsum(_normal(seed, cells, stream) * vol, axis=1)
    ramp = np.arange(1, steps + 1) / steps
    drift = np.log(end / start)[:, None]
    return np.asarray(start[:, None] * np.exp(walk_ - ramp * walk_[:, -1:] + ramp * drift))


def _sketched(
    seed: int,
    index: np.ndarray,
    opens: np.ndarray,
    closes: np.ndarray,
    vol: float,
    volume: float,
    stream: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Highs and lows drawn about each step's open and close, and its volume; prices
    rounded as the minutes are."""
    up = np.abs(_normal(seed, index, stream)) * vol * 0.6
    down = np.abs(_normal(seed, index, stream + 1)) * vol * 0.6
    o, c = np.round(opens, 2), np.round(closes, 2)
    h = np.round(np.maximum(opens, closes) * np.exp(up), 2)
    lo = np.round(np.minimum(opens, closes) * np.exp(-down), 2)
    h, lo = np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c))
    # A gamma(2) volume: the sum of two exponentials.
    draws = -np.log(_uniform(seed, index, stream + 2)) - np.log(_uniform(seed, index, stream + 3))
    return o, h, lo, c, np.floor(draws * volume / 2.0).astype(np.int64)


def _hour_opens(symbol: str, first_day: int, end_day: int) -> np.ndarray:
    """The open of each hour of the days ``first_day`` to before ``end_day`` and the
    next day's open: a bridge between the walk's day opens (days x 25)."""
    opens = _opens_between(symbol, first_day, end_day)
    days = np.arange(first_day, end_day, dtype=np.int64)
    hour_vol = walk.DAILY_VOL / np.sqrt(HOURS)
    path = _bridges(walk._seed(symbol, "hours"), days, HOURS, hour_vol, opens[:-1], opens[1:], 0)
    return np.concatenate((opens[:-1, None], path), axis=1)


def _fine_steps(symbol: str, market: Market, first_day: int, end_day: int) -> Columns:
    """Twelve 5-minute steps an hour, on bridges between the hour opens."""
    per_hour = HOUR // STEP
    hour_opens = _hour_opens(symbol, first_day, end_day)
    hours = np.arange(first_day * HOURS, end_day * HOURS, dtype=np.int64)
    starts, ends = hour_opens[:, :-1].ravel(), hour_opens[:, 1:].ravel()
    step_vol = walk.DAILY_VOL / np.sqrt(DAY / STEP)
    seed = walk._seed(symbol, "5m")
    path = _bridges(seed, hours, per_hour, step_vol, starts, ends, 0)
    opens = np.concatenate((starts[:, None], path[:, :-1]), axis=1).ravel()
    index = hours[:, None] * per_hour + np.arange(per_hour, dtype=np.int64)[None, :]
    index = index.ravel()
    volume = walk._base_volume(symbol) * STEP / MINUTE
    o, h, lo, c, v = _sketched(seed, index, opens, path.ravel(), step_vol, volume, 1)
    t = index * STEP
    return Columns(t, o, h, lo, c, v).take(_in_session(market, t))


def _hour_steps(symbol: str, market: Market, first_day: int, end_day: int) -> Columns:
    """A step an hour, from the hour opens; a step counts from its first 5 minutes in
    session (a session opening at 09:30 starts within an hour)."""
    hour_opens = _hour_opens(symbol, first_day, end_day)
    hours = np.arange(first_day * HOURS, end_day * HOURS, dtype=np.int64)
    hour_vol = walk.DAILY_VOL / np.sqrt(HOURS)
    seed = walk._seed(symbol, "1h")
    volume = walk._base_volume(symbol) * 60
    opens, closes = hour_opens[:, :-1].ravel(), hour_opens[:, 1:].ravel()
    o, h, lo, c, v = _sketched(seed, hours, opens, closes, hour_vol, volume, 0)
    t = _anchors(market, hours * HOUR, HOUR)
    return Columns(t, o, h, lo, c, v).take(t >= 0)


def _anchors(market: Market, starts: np.ndarray, length: int, every: int = STEP) -> np.ndarray:
    """Each step's first moment in session (sampled ``every`` seconds), or -1 if none."""
    if not market.has_sessions:
        return starts
    samples = starts[:, None] + np.arange(0, length, every, dtype=np.int64)[None, :]
    open_ = _in_session(market, samples.ravel()).reshape(samples.shape)
    first = np.argmax(open_, axis=1)
    rows = np.arange(len(starts))
    return np.where(open_[rows, first], samples[rows, first], -1)


def _day_steps(symbol: str, market: Market, first_day: int, end_day: int) -> Columns:
    """A step a day from ``first_day`` to before ``end_day``, from the walk's day opens."""
    opens = _opens_between(symbol, first_day, end_day)  # and the next day's: its close
    days = np.arange(first_day, end_day, dtype=np.int64)
    volume = walk._base_volume(symbol) * 390
    o, h, lo, c, v = _sketched(
        walk._seed(symbol, "1d"), days, opens[:-1], opens[1:], walk.DAILY_VOL, volume, 0
    )
    t = _anchors(market, days * DAY, DAY, every=1_800)
    return Columns(t, o, h, lo, c, v).take(t >= 0)


@lru_cache(maxsize=64)  # 117 kB each; drawn again in 0.3 ms
def _early_opens(symbol: str) -> np.ndarray:
    """The day opens of the ``EARLY_DAYS`` before 2020, oldest first, ending where the walk
    starts (the first of its opens follows the last of these)."""
    rng = np.random.default_rng(walk._seed(symbol, "days-before"))
    returns = rng.standard_normal(EARLY_DAYS) * walk.DAILY_VOL
    back = walk._base_price(symbol) * np.exp(-np.cumsum(returns))
    return back[::-1].copy()


def _opens_between(symbol: str, first_day: int, last_day: int) -> np.ndarray:
    """The day opens of ``first_day`` to ``last_day``, inclusive."""
    early_first = walk.FIRST_DAY - EARLY_DAYS
    parts = []
    if first_day < walk.FIRST_DAY:
        early = _early_opens(symbol)
        stop = min(last_day + 1, walk.FIRST_DAY)
        parts.append(early[first_day - early_first : stop - early_first])
    if last_day >= walk.FIRST_DAY:
        lo = max(first_day, walk.FIRST_DAY)
        opens = walk._day_opens(symbol, last_day | 0xFF)
        parts.append(opens[lo - walk.FIRST_DAY : last_day + 1 - walk.FIRST_DAY])
    return np.concatenate(parts)
