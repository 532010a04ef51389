"""Indicators over a view's bars, each value a function of a bounded stretch of them.

A page keeps the values a delta does not resend, so a value must come out the same, to
the last bit, whichever render computes it and however much of the series it computes:
every value is summed in a fixed order from its own inputs only (no running sums
across the series), and a value needs only a bounded number of bars before it
(``warmup``), so a window moving on changes only its first few values, which a delta
resends (renderer.views). Where the window does not hold the history a value needs, it
is NaN (null in JSON, a gap on the chart).

- ``sma20``, ``sma50``: the mean of the last n closes.
- ``ema20``: the exponential average of the closes (alpha = 2 / (n + 1)), over the last
  4n of them, whose weight beyond is under 0.04 %; from the n-th close on, over those
  the window holds.
- ``vwap``: the session's volume-weighted average of the typical price (high + low +
  close) / 3, from the 1-minute bars, since the exchange's local midnight; not for the
  window's first day, whose start it does not hold.
"""

from collections.abc import Callable
from functools import cache
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from common.markets import DAY

Floats = npt.NDArray[np.float64]
DIGITS: int | None = 4  # values are rounded: prices are quoted at most in ten-thousandths
EMA_SPAN = 4  # an EMA of n closes is summed over the last EMA_SPAN * n


def _rounded(values: Floats) -> Floats:
    return values if DIGITS is None else np.round(values, DIGITS)


def warmup(name: str) -> int:
    """How many of a window's first bars a value may depend on the window's start for."""
    if name.startswith("sma"):
        return int(name[3:])
    if name.startswith("ema"):
        return EMA_SPAN * int(name[3:])
    return 0  # vwap: the window's first day, handled by the caller


def sma(closes: Floats, n: int, first: int = 0) -> Floats:
    """The mean of the last ``n`` closes at each position from ``first`` on."""
    size = len(closes)
    out = np.full(max(size - first, 0), np.nan)
    start = max(first, n - 1)
    if start < size:
        total = np.zeros(size - start)
        for k in range(n):
            total += closes[start - k : size - k]
        out[start - first :] = total / n
    return _rounded(out)


@cache
def _ema_weights(n: int) -> tuple[Floats, Floats]:
    decay = 1 - 2 / (n + 1)
    weights = decay ** np.arange(EMA_SPAN * n, dtype=np.float64)
    return weights, np.cumsum(weights)


def ema(closes: Floats, n: int, first: int = 0) -> Floats:
    """The exponential average of the closes at each position from ``first`` on."""
    size = len(closes)
    weights, totals = _ema_weights(n)
    out = np.full(max(size - first, 0), np.nan)
    start = max(first, n - 1)
    if start < size:
        total = np.zeros(size - start)
        for k in range(len(weights)):
            lo = max(start, k)
            if lo >= size:
                break
            total[lo - start :] += weights[k] * closes[lo - k : size - k]
        positions = np.arange(start, size)
        out[start - first :] = total / totals[np.minimum(positions, len(weights) - 1)]
    return _rounded(out)


def vwap(
    highs: Floats,
    lows: Floats,
    closes: Floats,
    volumes: Floats,
    local: npt.NDArray[np.int64],
    first: int = 0,
) -> Floats:
    """The session VWAP at each 1-minute bar from ``first`` on (``local``: each bar's
    minute on the exchange's clock), NaN on the window's first day and where nothing
    has traded yet. Only the days from ``first``'s are summed."""
    size = len(closes)
    out = np.full(max(size - first, 0), np.nan)
    if first >= size:
        return out
    days = local // DAY
    begin = int(np.searchsorted(days, days[first], side="left"))
    starts = np.flatnonzero(np.diff(days[begin:])) + 1 + begin  # each later day's first bar
    typical = (highs + lows + closes) / 3
    for lo, hi in pairwise([begin, *starts.tolist(), size]):
        if days[lo] == days[0]:
            continue  # the window's first day: its start is not in the window
        traded = np.cumsum(volumes[lo:hi])
        worth = np.cumsum(typical[lo:hi] * volumes[lo:hi])
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(traded > 0, worth / traded, np.nan)
        keep = max(lo, first)
        out[keep - first : hi - first] = values[keep - lo :]
    return _rounded(out)


def of_closes(name: str, closes: Floats, first: int = 0) -> Floats:
    """``sma20``, ``sma50`` or ``ema20`` of each position from ``first`` on."""
    average: Callable[[Floats, int, int], Floats] = sma if name.startswith("sma") else ema
    return average(closes, int(name[3:]), first)
