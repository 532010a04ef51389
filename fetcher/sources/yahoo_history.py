"""Yahoo Finance history at a resolution (5m, 1h, 1d; 1m within Yahoo's week) through
yfinance, batched as the minute fetch is: one ``download`` for many symbols, at most two
per call (``plan_history``).

What is adjusted. Yahoo's chart API sends every bar's open, high, low, close and volume
adjusted for the splits since (its pages' "Close"), and beside them an ``adjclose``
adjusted for dividends too. yfinance's ``download`` then, with ``auto_adjust=True``,
scales the OHLC by adjclose / close (dividend-adjusted prices, which never traded);
with ``back_adjust=True`` scales the open, high and low but keeps the close; with
``actions=True`` adds the Dividends and Stock Splits columns; none of them adjusts for
splits, which Yahoo has done. So this asks with ``auto_adjust=False`` and
``back_adjust=False``: splits adjusted, dividends not, as a trader's daily chart shows.
And ``actions=True``, for the one thing Yahoo gets wrong: in the days after a split its
older bars are sometimes not adjusted yet (yfinance's price repair looks for the same).
A bar on a split's day that opens about the split's ratio away from the close before it
has the bars before divided by the ratio (their volume multiplied), as Yahoo would have
sent them. Bars stored before a split are not this module's to change: the bar of the
newest split in what came back is said (``FetchResult.restated``), and fetcher.history
stores the symbol again if the split came after its bars were stored.
"""

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from common.resolutions import Resolution
from fetcher.sources.base import FetchResult, SourceError
from fetcher.sources.yahoo import (
    _PRICES,
    MAX_LOOKBACK,
    Parsed,
    _epoch_seconds,
    _split_by_symbol,
    _Tally,
    bars_from_frame,
)

if TYPE_CHECKING:
    from fetcher.sources.yahoo import YahooSource

DAY = 86_400
INTERVALS = {Resolution.M1: "1m", Resolution.M5: "5m", Resolution.H1: "1h", Resolution.D1: "1d"}
# How far back Yahoo serves each interval (yfinance's own "max": 8 days of 1m, 60 of 5m,
# 730 of 1h, decades of 1d), less a day's margin for a skewed clock or a slow request.
DEPTH: dict[Resolution, int | None] = {
    Resolution.M1: MAX_LOOKBACK,
    Resolution.M5: 59 * DAY,
    Resolution.H1: 729 * DAY,
    Resolution.D1: None,
}
# A symbol that wants bars from further back than this many bars is "behind" (new, or a
# deep backfill) and asked in a call of its own, so it does not widen everyone's range.
RECENT_BARS = 100


class HistoryDownload(NamedTuple):
    symbols: tuple[str, ...]
    start: int  # epoch seconds
    end: int | None  # epoch seconds, exclusive; None: up to now


def plan_history(
    resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
) -> tuple[list[HistoryDownload], dict[str, str]]:
    """The downloads that serve ``spans`` (at most two: the symbols close to now, and the
    rest), and the symbols Yahoo has nothing for, with why."""
    current, depth = int(now), DEPTH[resolution]
    oldest = current - depth if depth is not None else None
    wanted: dict[str, tuple[int, int]] = {}
    refused: dict[str, str] = {}
    for symbol, (start, end) in spans.items():
        start, end = max(start, oldest) if oldest is not None else start, min(end, current + 1)
        if end > start:
            wanted[symbol] = (start, end)
        else:
            days = (depth or 0) // DAY
            refused[symbol] = f"Yahoo keeps {resolution} bars for the last {days} days only"
    cut = current - RECENT_BARS * resolution.seconds
    groups = (
        sorted(s for s, (start, _) in wanted.items() if start >= cut),
        sorted(s for s, (start, _) in wanted.items() if start < cut),
    )
    return [_download_of(group, wanted, resolution, current) for group in groups if group], refused


def _download_of(
    symbols: list[str], wanted: Mapping[str, tuple[int, int]], resolution: Resolution, now: int
) -> HistoryDownload:
    start = min(wanted[s][0] for s in symbols)
    end = max(wanted[s][1] for s in symbols)
    if end > now - resolution.seconds:
        return HistoryDownload(tuple(symbols), start, None)
    # Yahoo stamps a daily bar with its session's open, hours after the day's start:
    # the range asked runs a bar past the last start wanted.
    return HistoryDownload(tuple(symbols), start, end + resolution.seconds)


def fetch_history(
    source: "YahooSource",
    resolution: Resolution,
    spans: Mapping[str, tuple[int, int]],
    now: float,
) -> FetchResult:
    """``YahooSource.history``."""
    downloads, refused = plan_history(resolution, spans, now)
    tally = _Tally()
    restated: dict[str, int] = {}
    for download in downloads:
        if tally.rate_limited and tally.rate_limited == tally.seen:
            tally.refuse(download.symbols, "not asked: Yahoo is rate limiting")
            continue
        frame, reasons = source._download(
            download.symbols,
            download.start,
            interval=INTERVALS[resolution],
            end=download.end,
            actions=True,
        )
        found, splits = _read(frame, download.symbols, spans)
        for symbol, parsed in found.items():
            tally.settle(symbol, parsed, reasons.get(symbol.upper()))
        restated.update(splits)
    result = tally.result()
    result.restated = restated
    for symbol, why in refused.items():
        result.bars[symbol] = []
        result.errors[symbol] = why
    for symbol, bars in result.bars.items():
        if bars:
            result.markets[symbol] = source.market(symbol)
    return result


def _read(
    frame: pd.DataFrame, symbols: tuple[str, ...], spans: Mapping[str, tuple[int, int]]
) -> tuple[dict[str, Parsed], dict[str, int]]:
    """Each symbol's bars in its span, and the bar of the newest split in it, if any."""
    try:
        blocks = _split_by_symbol(frame, symbols)
        found: dict[str, Parsed] = {}
        splits: dict[str, int] = {}
        for symbol in symbols:
            start, end = spans[symbol]
            if symbol not in blocks:
                found[symbol] = Parsed([], 0)
                continue
            rows = blocks[symbol].dropna(subset=_PRICES, how="any")
            parsed = bars_from_frame(split_adjusted(rows), start)
            parsed.bars = [bar for bar in parsed.bars if bar.t < end]
            found[symbol] = parsed
            split = newest_split(rows)
            if split is not None and start <= split < end:
                splits[symbol] = split
        return found, splits
    except (KeyError, TypeError, ValueError) as exc:
        # The frame's shape is yfinance's to change: a surprise is a failed fetch.
        raise SourceError(f"cannot read yfinance's frame: {exc!r}") from exc


def _splits(rows: pd.DataFrame) -> "tuple[np.ndarray, np.ndarray]":
    """Each row's split ratio (0 for none) and the positions of the rows with a split."""
    if "Stock Splits" not in rows.columns or rows.empty:
        return np.zeros(len(rows)), np.zeros(0, dtype=np.int64)
    ratios = rows["Stock Splits"].fillna(0.0).to_numpy(dtype=float)
    return ratios, np.flatnonzero((ratios > 0) & (ratios != 1))


def newest_split(rows: pd.DataFrame) -> int | None:
    """The start (epoch seconds) of the bar of the newest split in one symbol's rows
    with prices."""
    _ratios, at = _splits(rows)
    if not at.size:
        return None
    return int(_epoch_seconds(rows.index[at[-1:]])[0]) // 60 * 60


def split_adjusted(rows: pd.DataFrame) -> pd.DataFrame:
    """One symbol's rows with prices, each split Yahoo has not applied yet applied."""
    ratios, splits = _splits(rows)
    if not splits.size:
        return rows
    prices = rows[_PRICES].to_numpy(dtype=float).copy()
    volume = rows["Volume"].to_numpy(dtype=float).copy()
    for at in splits:
        if at == 0:
            continue  # nothing before it here to tell by, or to adjust
        ratio = float(ratios[at])
        jump = prices[at - 1, 3] / prices[at, 0]  # the close before over the open
        if jump > 0 and abs(math.log(jump / ratio)) < abs(math.log(jump)):
            prices[:at] /= ratio  # nearer the ratio than no change: not applied yet
            volume[:at] *= ratio
    adjusted = rows.copy()
    adjusted[_PRICES] = prices
    adjusted["Volume"] = volume
    return adjusted
