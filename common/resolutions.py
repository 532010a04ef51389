"""Resolutions: the intervals bars are kept and served at, and how finer bars roll up.

A bar of any resolution is named by its start ``t``, in epoch seconds (UTC), as a
1-minute bar is. Starts are counted on the exchange's clock (common.markets), as
exchanges and charting sites draw them and as renderer.views buckets the window: 5-minute
and hourly bars from the session's open (09:30, 10:30, ... in New York; from midnight for
a market without sessions) but never across midnight (a 23:30 bar ends at 00:00), daily
bars from the local midnight of the day they trade on. Without a market the clock is
UTC: hourly bars on the hour, daily bars from UTC midnight. A coarse bar is the finer
bars it holds rolled up: the open of the first, the highest high, the lowest low, the
close of the last, the volumes summed.
"""

from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from common.bars import MINUTE, Bar
from common.markets import DAY, UTC, Market

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class Resolution(StrEnum):
    M1 = "1m"
    M5 = "5m"
    H1 = "1h"
    D1 = "1d"

    @property
    def seconds(self) -> int:
        """Its nominal length; a daily bar on a day the clocks change is an hour off."""
        return _SECONDS[self]


_SECONDS = {Resolution.M1: MINUTE, Resolution.M5: 300, Resolution.H1: 3_600, Resolution.D1: DAY}
COARSE = (Resolution.M5, Resolution.H1, Resolution.D1)  # kept as history, beside the minutes
# The history a view's timeframe (common.views.TIMEFRAMES) is drawn from: its own
# resolution, or a finer one whose bars nest in its (15-minute bars of 5-minute ones).
_HISTORY_OF = {"5m": Resolution.M5, "15m": Resolution.M5, "1h": Resolution.H1, "1d": Resolution.D1}


def history_of(timeframe: str) -> Resolution | None:
    """The stored resolution a view of ``timeframe`` draws its past from (None: 1m, which
    has only the window)."""
    return _HISTORY_OF.get(timeframe)


def bar_starts(t: npt.ArrayLike, resolution: Resolution, market: Market | None = None) -> Ints:
    """The start (epoch seconds UTC) of the bar of ``resolution`` holding each moment."""
    moments = np.asarray(t, dtype=np.int64)
    if resolution is Resolution.M1 or not moments.size:
        return moments // MINUTE * MINUTE
    clock = market or UTC
    local = clock.local_seconds(moments)
    if resolution is Resolution.D1:
        key = local // DAY * DAY
    else:
        # Counted from the open, the bar before midnight would end after it: it is cut
        # there, so that every bar lies in one day and hours roll up into days.
        origin, step = clock.session_origin, resolution.seconds
        key = np.maximum((local - origin) // step * step + origin, local // DAY * DAY)
    # The key is a wall-clock time; its instant is the key less the offset in force then,
    # which on a day the clocks change (at 2 a.m.) is not the moment's own: a daily bar's
    # midnight. Where the key does not exist on the clock (skipped when the clocks go
    # forward), the bar joins the one before: together they span the hour they should.
    same_offset = moments - (local - key)
    starts = key - clock.utc_offsets(same_offset)
    starts = np.where(starts > moments, same_offset, starts)
    if resolution is not Resolution.D1:
        # In the hour after the clocks go back, a wall-clock key can name a time before
        # the change: counted from a :30 open, 01:10 on the second pass is keyed 00:30,
        # a bar that ended an hour ago. Such moments join the bar that was in progress
        # when the clocks changed, so that starts only grow and every bar spans its hour
        # of real time (01:30 first pass to 01:30 second pass).
        folded = np.flatnonzero(clock.repeated(moments))
        if folded.size:
            before = clock.last_changes(moments[folded]) - 1  # the old clock's last second
            starts[folded] = np.maximum(starts[folded], bar_starts(before, resolution, market))
    return starts


class Columns(NamedTuple):
    """Bars as columns: what the rollup works on, without a Bar per row."""

    t: Ints
    o: Floats
    h: Floats
    l: Floats  # noqa: E741 - the conventional OHLCV name
    c: Floats
    v: Ints

    @classmethod
    def of(cls, bars: Sequence[Bar]) -> "Columns":
        rows = sorted(bars, key=lambda bar: bar.t)
        return cls(
            np.array([b.t for b in rows], dtype=np.int64),
            np.array([b.o for b in rows], dtype=np.float64),
            np.array([b.h for b in rows], dtype=np.float64),
            np.array([b.l for b in rows], dtype=np.float64),
            np.array([b.c for b in rows], dtype=np.float64),
            np.array([b.v for b in rows], dtype=np.int64),
        )

    @classmethod
    def join(cls, parts: Sequence["Columns"]) -> "Columns":
        """Parts in order, one after the other."""
        return cls(
            np.concatenate([p.t for p in parts]),
            np.concatenate([p.o for p in parts]),
            np.concatenate([p.h for p in parts]),
            np.concatenate([p.l for p in parts]),
            np.concatenate([p.c for p in parts]),
            np.concatenate([p.v for p in parts]),
        )

    def take(self, which: npt.NDArray[np.bool_] | Ints | slice) -> "Columns":
        return Columns(
            self.t[which], self.o[which], self.h[which], self.l[which], self.c[which], self.v[which]
        )

    def bars(self) -> list[Bar]:
        return [Bar(*row) for row in zip(*(column.tolist() for column in self), strict=True)]


def rollup_columns(bars: Columns, resolution: Resolution, market: Market | None = None) -> Columns:
    """``rollup`` of bars sorted by ``t``, as columns."""
    if not bars.t.size:
        return bars
    starts = bar_starts(bars.t, resolution, market)
    first = np.concatenate(([0], np.flatnonzero(np.diff(starts)) + 1))
    last = np.concatenate((first[1:] - 1, [starts.size - 1]))
    return Columns(
        starts[first],
        bars.o[first],
        np.maximum.reduceat(bars.h, first),
        np.minimum.reduceat(bars.l, first),
        bars.c[last],
        np.add.reduceat(bars.v, first),
    )


def rollup(bars: Sequence[Bar], resolution: Resolution, market: Market | None = None) -> list[Bar]:
    """Coarser bars from finer ones (1-minute bars, or any whose spans nest in the
    coarse ones: 5-minute bars into hours), on ``market``'s clock (UTC if None)."""
    return rollup_columns(Columns.of(bars), resolution, market).bars()
