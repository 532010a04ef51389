"""A deterministic synthetic market, so everything runs offline.

Each symbol's price is a geometric random walk that is the same in every process and on
every run. It is drawn coarse to fine, each bar first and then the bars inside it: a
walk of day opens on the symbol's exchange clock (common.markets); each day's high, low
and volume; then the day cut at its session's open and close, those pieces cut on the
hour, the quarter hour, five minutes, the minute and the second (all on UTC multiples,
which are the exchange's own for every market in the suffix table). A bar's children
are a Brownian bridge from its open to its close, squeezed into its range, one of them
reaching its high and one its low, its volume shared out whole. So every bar is exactly
the rollup of its children (common.resolutions.rollup), at every level, and a coarse bar
costs one draw, not the seconds under it: history at 1h or 1d is as cheap as the number
of bars asked for. Every draw is a hash of (symbol, level, the bar's start, what for),
so any bar can be drawn alone, in any order, in any process.

The minutes start on 2020-01-01. Before that (``history`` at 1d only) the days are the
same walk's, back to 2000, as whole days: a cheaper model that joins the minutes without
a jump.

By default (``RTPLOT_MARKET_HOURS=always``) the market trades around the clock, so a
demo is always live; its charts still run on each symbol's exchange clock. With
``exchange``, a symbol has bars only while its exchange trades: a stock in its session
on weekdays, FX (``=X``) around the clock on weekdays, crypto (``-USD``) always. The walk
goes on underneath, so a session opens where the price went overnight. Either way the
hour the exchange's clocks go back to repeat has no bars, so that no chart on that clock
draws two bars at one time. The minute in progress changes every second, so a 1 s fetch
interval brings a changed bar on every tick.
"""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import time
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from common.bars import MINUTE, Bar, floor_minute
from common.markets import DAY, Market, market_for
from common.resolutions import Columns, Resolution, bar_starts, rollup_columns
from fetcher.sources.base import FetchResult

HOUR = 3_600
DAILY_VOL = 0.02  # log-return standard deviation per day
FIRST_DAY = 18_262  # 2020-01-01: the first day with minutes (days on the exchange's clock)
DEEP_FIRST_DAY = 10_957  # 2000-01-01: the first day of daily history
# Below the day and its session's pieces, bars are cut at multiples of these (seconds).
PIECES = (HOUR, 1_800, 900, 300, MINUTE, 1)
MINUTE_LEVEL = 2 + PIECES.index(MINUTE)
SECOND_LEVEL = MINUTE_LEVEL + 1

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _base_price(symbol: str) -> float:
    return 20.0 + (_seed(symbol, "base") % 48_000) / 100.0  # 20.00 .. 500.00


def _base_volume(symbol: str) -> float:
    return float(500 + _seed(symbol, "volume") % 20_000)  # shares per minute, on average


# -- draws: a hash of what they are for, so any one can be made alone ----------------

_GOLDEN, _MIX1, _MIX2 = (
    np.uint64(k) for k in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
)
Seeds = npt.NDArray[np.uint64]


def _uniforms(seed: Seeds, level: int, start: Ints, kind: int) -> tuple[Floats, Floats]:
    """Two uniforms in (0, 1) for each bar (its symbol's seed, its start): the halves of
    splitmix64's finaliser of a key no other draw has."""
    key = (start.astype(np.uint64) << np.uint64(7)) | np.uint64(level << 3 | kind)
    z = (key ^ seed) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    high = ((z >> np.uint64(32)).astype(np.float64) + 0.5) / 2.0**32
    low = ((z & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) / 2.0**32
    return high, low


def _normal(seed: Seeds, level: int, start: Ints, kind: int) -> Floats:
    """Standard normal (Box-Muller)."""
    radius, angle = _uniforms(seed, level, start, kind)
    normal: Floats = np.sqrt(-2.0 * np.log(radius)) * np.cos(2.0 * np.pi * angle)
    return normal


def _exponentials(seed: Seeds, level: int, start: Ints, kind: int) -> tuple[Floats, Floats]:
    first, second = _uniforms(seed, level, start, kind)
    return -np.log(first), -np.log(second)


# -- bars of the walk --------------------------------------------------------------


class Blocks(NamedTuple):
    """Bars of the walk before rounding: symbol ``s`` (its place in the Walk), [a, b) in
    epoch seconds, prices unrounded."""

    s: Ints
    a: Ints
    b: Ints
    o: Floats
    h: Floats
    l: Floats  # noqa: E741 - the conventional OHLCV name
    c: Floats
    v: Ints

    def take(self, which: npt.NDArray[np.bool_] | Ints | slice) -> "Blocks":
        return Blocks(
            self.s[which],
            self.a[which],
            self.b[which],
            self.o[which],
            self.h[which],
            self.l[which],
            self.c[which],
            self.v[which],
        )

    def columns(self) -> Columns:
        """As bars: cents, as markets quote (rounding keeps every high the highest)."""
        o, h, lo, c = (np.round(p, 2) for p in (self.o, self.h, self.l, self.c))
        return Columns(self.a, o, h, lo, c, self.v)


def _join(parts: list[Blocks]) -> Blocks:
    def joined(name: str) -> npt.NDArray[Any]:
        return np.concatenate([getattr(part, name) for part in parts])

    blocks = Blocks(*(joined(name) for name in Blocks._fields))
    return blocks.take(np.lexsort((blocks.a, blocks.s)))


class Walk:
    """Symbols on one exchange clock, drawn together: a batch costs its bars, not its
    symbols times the levels."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        self.market = market_for(self.symbols[0])  # the clock and cuts, whatever the hours
        self.seeds = np.array([_seed(s) for s in self.symbols], dtype=np.uint64)
        self.volumes = np.array([_base_volume(s) for s in self.symbols])

    def opens(self, last_day: int) -> Floats:
        """Day opens, a row per symbol, from DEEP_FIRST_DAY to past ``last_day + 1``."""
        block = (last_day + 1) // 1024
        return np.stack([_day_opens(symbol, block) for symbol in self.symbols])


@lru_cache(maxsize=1024)
def _day_opens(symbol: str, block: int) -> Floats:
    """Open of each day from DEEP_FIRST_DAY to (block + 1) * 1024, a walk through the
    symbol's base price on FIRST_DAY. A longer block repeats a shorter one's opens."""
    days = np.arange(DEEP_FIRST_DAY, (block + 1) * 1024, dtype=np.int64)
    seeds = np.full(days.size, _seed(symbol), dtype=np.uint64)
    returns = _normal(seeds, 0, days, 0) * DAILY_VOL
    logs = np.concatenate(([0.0], np.cumsum(returns)))
    opens: Floats = _base_price(symbol) * np.exp(logs - logs[FIRST_DAY - DEEP_FIRST_DAY])
    return opens


def _utc(market: Market, local: Ints) -> Ints:
    """The instant each wall-clock time on the exchange's clock names (the offset in
    force then, found from the offset at the wall-clock time read as UTC)."""
    guess = local - market.utc_offsets(local)
    return local - market.utc_offsets(guess)


def _local_days(market: Market, t: npt.ArrayLike) -> Ints:
    return market.local_seconds(t) // DAY


def _days(walk: Walk, first: int, last: int) -> Blocks:
    """Days ``first`` to ``last`` (day numbers on the exchange's clock) of every symbol."""
    count = max(last + 1 - first, 0)
    s = np.repeat(np.arange(len(walk.symbols), dtype=np.int64), count)
    days = np.tile(np.arange(first, first + count, dtype=np.int64), len(walk.symbols))
    opens = walk.opens(max(last, first))
    o, c = opens[s, days - DEEP_FIRST_DAY], opens[s, days + 1 - DEEP_FIRST_DAY]
    seed = walk.seeds[s]
    edges = _utc(walk.market, np.arange(first, first + count + 1, dtype=np.int64) * DAY)
    a, b = np.tile(edges[:-1], len(walk.symbols)), np.tile(edges[1:], len(walk.symbols))
    up, down = _exponentials(seed, 0, days, 1)
    h = np.maximum(o, c) * np.exp(up * DAILY_VOL * 0.5)
    lo = np.minimum(o, c) * np.exp(-down * DAILY_VOL * 0.5)
    v = walk.volumes[s] * (b - a) / MINUTE * np.exp(0.25 * _normal(seed, 0, days, 2))
    return Blocks(s, a, b, o, h, lo, c, v.astype(np.int64))


def _session_cuts(market: Market, days: Blocks) -> tuple[Ints, Ints, Ints]:
    """The pieces of each day cut at its session's open and close: (parent, a, b)."""
    if market.opens is None or market.closes is None:
        index = np.arange(days.a.size, dtype=np.int64)
        return index, days.a, days.b
    midnight = _local_days(market, days.a) * DAY
    cuts = [
        _utc(market, midnight + _clock(market.opens)),
        _utc(market, midnight + _clock(market.closes)),
    ]
    inside = [np.where((cut > days.a) & (cut < days.b), cut, days.a) for cut in cuts]
    edges = np.sort(np.stack([days.a, *inside, days.b], axis=1), axis=1)
    starts, ends = edges[:, :-1].ravel(), edges[:, 1:].ravel()
    parent = np.repeat(np.arange(days.a.size, dtype=np.int64), edges.shape[1] - 1)
    real = ends > starts
    return parent[real], starts[real], ends[real]


def _clock(at: time) -> int:
    return at.hour * HOUR + at.minute * MINUTE


def _pieces(blocks: Blocks, size: int) -> tuple[Ints, Ints, Ints]:
    """The pieces of each block cut at multiples of ``size``: (parent, a, b)."""
    first_cut = (blocks.a // size + 1) * size
    count = 1 + np.maximum(0, (blocks.b - 1 - first_cut) // size + 1)
    parent = np.repeat(np.arange(blocks.a.size, dtype=np.int64), count)
    index = np.arange(parent.size, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    cut = first_cut[parent]
    a = np.where(index == 0, blocks.a[parent], cut + (index - 1) * size)
    b = np.where(index == count[parent] - 1, blocks.b[parent], cut + index * size)
    return parent, a, b


def _children(walk: Walk, level: int, parents: Blocks, cut: tuple[Ints, Ints, Ints]) -> Blocks:
    """Each parent's children, which roll up exactly into it: a bridge from its open to its
    close through the children's ends, inside its range; the child the path comes nearest
    its high reaches it, likewise its low; its volume shared out whole by length."""
    parent, a, b = cut
    s = parents.s[parent]
    seed = walk.seeds[s]
    count = np.bincount(parent, minlength=parents.a.size)
    first = np.cumsum(count) - count
    last = first + count - 1
    log_o, log_h, log_l, log_c = (np.log(p)[parent] for p in parents[3:7])
    sigma = DAILY_VOL * np.sqrt((b - a) / DAY)
    walked = _segment_cumsum(_normal(seed, level, a, 0) * sigma, first, parent)
    done = (b - parents.a[parent]) / (parents.b - parents.a)[parent]  # at each child's end
    line = log_o + done * (log_c - log_o)
    away = walked - done * walked[last][parent]
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(away > 0, (log_h - line) / away, (log_l - line) / away)
    room = np.where(away == 0, np.inf, room)
    squeeze = np.clip(np.minimum.reduceat(room, first), 0.0, 1.0)[parent]
    h, lo = parents.h[parent], parents.l[parent]
    close = np.clip(np.exp(line + squeeze * away), lo, h)
    close[last] = parents.c  # exactly: the next bar opens where this one closed
    open_ = np.empty_like(close)
    open_[1:] = close[:-1]
    open_[first] = parents.o
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    up, down = _exponentials(seed, level, a, 1)
    high = np.minimum(h, top * np.exp(up * sigma * 0.5))
    low = np.maximum(lo, bottom * np.exp(-down * sigma * 0.5))
    high[_first_best(top, first, parent, np.maximum)] = parents.h
    low[_first_best(bottom, first, parent, np.minimum)] = parents.l
    weight = _segment_cumsum((b - a) * (0.5 + _uniforms(seed, level, a, 2)[0]), first, parent)
    shared = np.floor(parents.v[parent] * (weight / weight[last][parent])).astype(np.int64)
    shared[last] = parents.v
    volume = np.diff(shared, prepend=0)
    volume[first] = shared[first]
    return Blocks(s, a, b, open_, high, low, close, volume)


def _segment_cumsum(values: Floats, first: Ints, parent: Ints) -> Floats:
    total = np.cumsum(values)
    summed: Floats = total - (total[first] - values[first])[parent]
    return summed


def _first_best(values: Floats, first: Ints, parent: Ints, best: np.ufunc) -> Ints:
    """Index of each parent's first child with the best (max or min) of ``values``."""
    target = best.reduceat(values, first)[parent]
    found = np.flatnonzero(values == target)
    _, where = np.unique(parent[found], return_index=True)
    chosen: Ints = found[where]
    return chosen


def _split(walk: Walk, level: int, blocks: Blocks) -> Blocks:
    if level == 1:
        return _children(walk, level, blocks, _session_cuts(walk.market, blocks))
    return _children(walk, level, blocks, _pieces(blocks, PIECES[level - 2]))


Final = Callable[[int, Blocks], Bools]


def _descend(walk: Walk, lo: Ints, hi: Ints, final: Final, deepest: int = MINUTE_LEVEL) -> Blocks:
    """Bars of the walk tiling [lo, hi) of each symbol (arrays in the walk's order), each
    as coarse as ``final(level, blocks)`` lets it be and no finer than ``deepest``: a bar
    is split only if it is not final. Sorted by symbol, then time."""
    first = max(int(_local_days(walk.market, lo).min()), FIRST_DAY)
    last = int(_local_days(walk.market, hi - 1).max())
    blocks, level, done = _days(walk, first, last), 0, []
    while True:
        blocks = blocks.take((blocks.b > lo[blocks.s]) & (blocks.a < hi[blocks.s]))
        stop = final(level, blocks) if level < deepest else np.ones(blocks.a.size, dtype=bool)
        done.append(blocks.take(stop))
        if level == deepest or stop.all():
            return _join(done)
        level += 1
        blocks = _split(walk, level, blocks.take(~stop))


def _whole_minutes(level: int, blocks: Blocks) -> Bools:
    return np.zeros(blocks.a.size, dtype=bool)  # split down to the minute


def _one(symbol: str, lo: int, hi: int, deepest: int = MINUTE_LEVEL) -> Blocks:
    """One symbol's bars of [lo, hi) at ``deepest``."""
    bounds = np.array([lo], dtype=np.int64), np.array([hi], dtype=np.int64)
    return _descend(Walk([symbol]), *bounds, _whole_minutes, deepest)


@lru_cache(maxsize=4096)
def _finished_minutes(symbol: str, hour: int) -> list[Bar]:
    """The 60 bars of an hour (epoch // HOUR), every minute finished."""
    return _one(symbol, hour * HOUR, (hour + 1) * HOUR).columns().bars()


FIVE_MINUTES = 300


@lru_cache(maxsize=4096)
def _seconds(symbol: str, five: int) -> Blocks:
    """The one-second bars of five minutes (epoch // FIVE_MINUTES): drawn five minutes at
    a time, so a 1 s tick draws once in 300."""
    start = five * FIVE_MINUTES
    return _one(symbol, start, start + FIVE_MINUTES, SECOND_LEVEL)


def _minute_bar(symbol: str, minute: int, last_second: int) -> Bar:
    """The bar of ``minute`` as it stood at second ``last_second`` (0..59) of it."""
    five, offset = divmod(minute, FIVE_MINUTES)
    seconds = _seconds(symbol, five)
    so_far = slice(offset, offset + last_second + 1)
    prices = [seconds.o[offset], seconds.h[so_far].max(), seconds.l[so_far].min()]
    # np.round, as every other bar is rounded: the last second's bar is the finished one.
    o, h, lo, c = np.round(np.array([*prices, seconds.c[so_far.stop - 1]]), 2).tolist()
    return Bar(minute, o, h, lo, c, int(seconds.v[so_far].sum()))


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
            market = result.markets[symbol] = self.market(symbol)
            first = floor_minute(start + MINUTE - 1)
            minutes = _minutes(symbol, first, current)
            if first <= current and _has_minutes(market, current):
                minutes.append(_minute_bar(symbol, current, elapsed))
            times = np.array([bar.t for bar in minutes], dtype=np.int64)
            shown = _shown(market, times).tolist()
            result.bars[symbol] = [bar for bar, keep in zip(minutes, shown, strict=True) if keep]
        return result

    def history(
        self, resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
    ) -> FetchResult:
        result = FetchResult(bars={})
        clocks: dict[Market, list[str]] = {}
        for symbol in spans:
            clocks.setdefault(market_for(symbol), []).append(symbol)
        for symbols in clocks.values():
            market = self.market(symbols[0])
            found = _history(Walk(symbols), market, resolution, [spans[s] for s in symbols], now)
            result.bars.update(zip(symbols, found, strict=True))
            result.markets.update(dict.fromkeys(symbols, market))
        return result


def _has_minutes(market: Market, minute: int) -> bool:
    """Whether the walk has minutes on that minute's day (clocks are at most 14 h off UTC)."""
    return minute >= (FIRST_DAY + 1) * DAY or bool(_local_days(market, [minute])[0] >= FIRST_DAY)


def _minutes(symbol: str, first: int, stop: int) -> list[Bar]:
    """The finished minutes from ``first`` up to (not including) ``stop``."""
    if stop - first <= 2 * HOUR:  # a tick: the hours are cached
        hours = range(first // HOUR, (stop - 1) // HOUR + 1) if stop > first else range(0)
        return [b for hour in hours for b in _finished_minutes(symbol, hour) if first <= b.t < stop]
    return _one(symbol, first, stop).columns().bars()


def _shown(market: Market, t: Ints) -> Bools:
    """The minutes that have bars: the market is open, and the clocks are not repeating."""
    shown: Bools = market.open_mask(t) & ~market.repeated(t)
    return shown


def _history(
    walk: Walk,
    market: Market,
    resolution: Resolution,
    spans: list[tuple[int, int]],
    now: float,
) -> list[list[Bar]]:
    """Each symbol's bars of ``resolution`` on ``market`` starting in its span."""
    current = floor_minute(now)
    start, end = (np.array(bound, dtype=np.int64) for bound in zip(*spans, strict=True))
    lo = (start + MINUTE - 1) // MINUTE * MINUTE
    # The last bar wanted may go on after ``end``: its minutes count too (a long day's).
    stop = np.minimum(end + resolution.seconds + HOUR, current + MINUTE)
    blocks = _descend(walk, lo, stop, _coarsest(market, resolution, int(now)))
    blocks = blocks.take(_shown(market, blocks.a))
    if resolution is Resolution.D1:
        blocks = _join([_deep_days(walk, market, lo, stop), blocks])
    bounds = np.searchsorted(blocks.s, np.arange(len(walk.symbols) + 1))
    found = []
    for index, symbol in enumerate(walk.symbols):
        columns = blocks.take(slice(bounds[index], bounds[index + 1])).columns()
        if columns.t.size and columns.t[-1] == current:  # the minute in progress, so far
            live = _minute_bar(symbol, current, min(int(now) - current, MINUTE - 1))
            columns = Columns.join([columns.take(slice(0, -1)), Columns.of([live])])
        bars = rollup_columns(columns, resolution, market)
        found.append(bars.take((bars.t >= start[index]) & (bars.t < end[index])).bars())
    return found


def _coarsest(market: Market, resolution: Resolution, now: int) -> Final:
    """Which bars need no splitting for ``resolution`` on ``market``: finished ones whose
    minutes either all have bars, in one coarse bar, or none has."""

    def final(level: int, blocks: Blocks) -> Bools:
        end = blocks.b - MINUTE
        same_bar = bar_starts(blocks.a, resolution, market) == bar_starts(end, resolution, market)
        steady = market.utc_offsets(blocks.a) == market.utc_offsets(blocks.b - 1)
        if level == 0 and market.opens is not None:  # the session's bounds are inside
            steady &= market.weekdays & ((_local_days(market, blocks.a) + 3) % 7 >= 5)
        finished = blocks.b - 1 <= now
        # A closed stretch is dropped whole, whatever bars it would have crossed.
        result: Bools = steady & finished & (same_bar | ~_shown(market, blocks.a))
        return result

    return final


def _deep_days(walk: Walk, market: Market, lo: Ints, stop: Ints) -> Blocks:
    """Whole days before the minutes begin, as daily bars (on weekdays only if the
    market keeps them)."""
    first = max(int(_local_days(walk.market, lo).min()), DEEP_FIRST_DAY)
    last = min(int(_local_days(walk.market, stop - 1).max()), FIRST_DAY - 1)
    days = _days(walk, first, last)
    wanted = (days.b > lo[days.s]) & (days.a < stop[days.s])
    if market.weekdays:
        wanted &= (_local_days(walk.market, days.a) + 3) % 7 < 5
    return days.take(wanted)
