"""A view's bars on its timeframe, and the rows a client is sent of them: the code the
renderer draws a chart with and the gateway answers a ``history`` request with, so that
a bar and its indicator values come out the same, to the last bit, from either.

Bars are on the exchange's clock (``x``: each bar's start, seconds since 1970-01-01 on
that clock). A row is ``[x, open, high, low, close, volume, <indicator values, in the
view's order>]``, NaN travelling as null: a delta's rows (renderer.views) and a
``history`` answer's (gateway) are the same rows.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from common import indicators
from common.markets import DAY, Market
from common.resolutions import Columns
from common.views import INDICATORS, View

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# The most bars before a value any indicator reads: a stretch of bars computed from
# MAX_WARMUP + a day of bars before its first has every value as the whole series would.
MAX_WARMUP = max(indicators.warmup(name) for name in INDICATORS)


@dataclass
class Bars:
    """Bars on a timeframe: each one's start (exchange clock, seconds) and its open,
    high, low, close and volume."""

    x: Ints
    o: Floats
    h: Floats
    l: Floats  # noqa: E741 - the conventional OHLCV name
    c: Floats
    v: Floats

    def __len__(self) -> int:
        return len(self.x)

    def columns(self, names: Sequence[str], first: int) -> list[Floats]:
        """The values of indicators ``names`` for bars ``first`` on, one array each."""
        out = []
        for name in names:
            if name == "vwap":  # from the view's own bars: 1-minute ones, or coarser
                out.append(indicators.vwap(self.h, self.l, self.c, self.v, self.x, first))
            else:
                out.append(indicators.of_closes(name, self.c, first))
        return out

    def rows(self, names: Sequence[str], lo: int, hi: int) -> list[list[Any]]:
        """Bars ``lo`` to ``hi`` as rows, with the values of indicators ``names``."""
        if hi <= lo:
            return []
        extra = [column[: hi - lo] for column in self.columns(names, lo)]
        prices = [self.o[lo:hi], self.h[lo:hi], self.l[lo:hi], self.c[lo:hi]]
        table = [self.x[lo:hi], *prices, self.v[lo:hi].astype(np.int64), *extra]
        rows = [list(row) for row in zip(*(column.tolist() for column in table), strict=True)]
        for row in rows:  # NaN (no value yet) travels as null
            row[6:] = [None if value != value else value for value in row[6:]]
        return rows


def buckets(local: Ints, view: View, market: Market) -> Ints:
    """The start of the view's bar holding each moment (exchange clock, seconds): a day
    from midnight, shorter bars counted from the session's open."""
    if view.timeframe == "1d":
        return local // DAY * DAY
    origin = market.session_origin
    return (local - origin) // view.seconds * view.seconds + origin


def rolled(x: Ints, columns: list[Floats]) -> tuple[Ints, list[Floats], Ints]:
    """Bars sharing a start rolled into one (open of the first, highest high, lowest
    low, close of the last, volumes summed): (starts, [o, h, l, c, v], each one's first
    bar)."""
    size = len(x)
    if not size:  # (reduceat takes no empty array)
        return x, [np.asarray(column)[:0] for column in columns], np.empty(0, dtype=np.int64)
    first = np.flatnonzero(np.diff(x)) + 1
    bounds = np.concatenate(([0], first)).astype(np.int64)
    last = np.concatenate((first - 1, [size - 1])).astype(np.int64)
    o, h, lo, c, v = columns
    out = [
        o[bounds],
        np.maximum.reduceat(h, bounds),
        np.minimum.reduceat(lo, bounds),
        c[last],
        np.add.reduceat(v, bounds),
    ]
    return x[bounds], out, bounds


class HistoryBars(NamedTuple):
    """Stored bars on a view's timeframe: each bar's start on the exchange's clock, and
    its open, high, low, close and volume (``on_timeframe``)."""

    x: Ints
    columns: list[Floats]


def on_timeframe(stored: Columns, view: View, market: Market) -> HistoryBars:
    """``stored`` (bars of the view's resolution or a finer one, UTC starts) on the
    view's timeframe and the exchange's clock."""
    local = market.local_seconds(stored.t)
    columns = [np.asarray(col, dtype=np.float64) for col in stored[1:]]
    x, out, _bounds = rolled(buckets(local, view, market), columns)
    return HistoryBars(x, out)


def warmup_bars(view: View) -> int:
    """How many bars before the first one sent a computation takes in: the longest
    indicator warm-up and a day (VWAP's)."""
    return MAX_WARMUP + DAY // view.seconds


def past_rows(
    bars: HistoryBars, view: View, before: int, count: int, after: int | None, whole: bool
) -> tuple[list[list[Any]], bool]:
    """The rows of the last ``count`` bars that start before ``before`` (and at or after
    ``after``), with the view's indicator values, as the renderer computes them: from
    ``warmup_bars`` before the first. ``bars`` are the newest stored ones before
    ``before``; ``whole``: they begin at the oldest stored (else their first bar may be
    partial, a bar of the timeframe whose finer bars were not all read, and is only
    warm-up). Also whether no bar stored is older than the rows."""
    x = bars.x
    end = int(np.searchsorted(x, before, side="left"))
    floor = 0 if whole else min(1, end)
    lo = max(end - count, floor)
    if after is not None:
        lo = max(lo, int(np.searchsorted(x, after, side="left")))
    begin = max(lo - warmup_bars(view), 0)
    o, h, low, c, v = (column[begin:end] for column in bars.columns)
    series = Bars(x[begin:end], o, h, low, c, v)
    rows = series.rows(view.indicators, lo - begin, end - begin)
    return rows, whole and lo == 0
