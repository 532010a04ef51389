"""Filling each symbol's history: its bars at 5m, 1h and 1d, as deep as
``RTPLOT_HISTORY_DAYS`` says, from the source, once per symbol and then every
``RTPLOT_HISTORY_REFRESH``.

The worker does it after each tick's minutes, within a budget of the tick's interval,
so the minutes never wait for it: a new symbol's views draw from its minutes at once
and gain their past as it arrives (200 symbols of the synthetic market in 84 s,
docs/benchmarks.md). Symbols never filled go first, the rest by how long ago they were;
each resolution is asked for up to ``BATCH`` symbols at once (yfinance batches them
into one request as it does the minutes), as many as the budget holds at the last
batch's pace, the first batch one symbol.

A source with ``history`` (fetcher.sources.base.HistorySource) is asked for the span
not yet stored: the whole depth the first time, then from the last bar it gave. Any
other source's coarse bars are rolled up from the minutes stored (common.resolutions),
so a plug-in that knows only 1-minute bars still gives its views a past that grows as
they run. What comes back is checked as the minutes are (fetcher.cleaning); a failed
source is asked again after ``RETRY`` seconds, and the minutes go on meanwhile.

A split after a symbol's bars were stored makes every stored price before it wrong by
the ratio (Yahoo's bars are split-adjusted; they came before the split). The newest
split a symbol's stored bars reflect is kept beside its fills (a first fill's bars are
as of now, splits and all). A refresh whose source says its past changed at a newer
split (``FetchResult.restated``) has the symbol forgotten, its list of watched views
kept: the next tick fetches its minutes again, in a new epoch, which replaces every
chart of it, and its history is filled again from scratch, which marks that split.
A dividend changes nothing: prices are not adjusted for them.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from common.bars import Bar
from common.contract.history import SPLIT, mark_split, read_filled, write_history
from common.contract.keys import Keys
from common.contract.store import drop_symbol
from common.markets import DAY
from common.resolutions import Columns, Resolution, bar_starts, rollup
from common.settings import Settings
from fetcher import metrics
from fetcher.cleaning import clean, clean_columns
from fetcher.sources.base import FetchResult, Source, serves_history
from fetcher.store import BarStore

log = logging.getLogger("rtplot.fetcher")

BATCH = 20  # symbols asked for at once, per resolution, at most
RETRY = 60.0  # seconds before a resolution the source failed is asked again


@dataclass
class HistoryReport:
    stored: dict[tuple[str, Resolution], int] = field(default_factory=dict)  # bars given
    pending: int = 0  # (symbol, resolution) pairs still due when the budget ran out
    failed: list[str] = field(default_factory=list)
    restated: list[str] = field(default_factory=list)  # forgotten, to be stored again


@dataclass
class HistoryFiller:
    """What the worker keeps between ticks: when a failed resolution may be asked again."""

    settings: Settings
    client: "redis.Redis"
    source: Source
    retry_at: dict[Resolution, float] = field(default_factory=dict)
    per_symbol: float = 0.0  # seconds the last batch took a symbol (0: none yet)

    def fill(self, symbols: Sequence[str], now: float, budget: float) -> HistoryReport:
        """Fill what is due of ``symbols`` (those with minutes stored) within ``budget``
        seconds."""
        report = HistoryReport()
        depths = dict(self.settings.history_days)
        if not depths or not symbols:
            return report
        keys = Keys(self.settings.key_prefix)
        started = time.perf_counter()
        filled = read_filled(self.client, keys, symbols)
        due = self._due(filled, depths, now)
        asked = False
        while due:
            left = budget - (time.perf_counter() - started)
            if asked and left <= 0:
                break  # (one batch a tick at least, however long the tick took)
            asked = True
            resolution = due[0][1]
            # As many symbols as the budget left holds, at the pace of the last batch; the
            # first batch one symbol, whose pace sizes the next (20 new symbols of the
            # synthetic market at once held the minutes' tick up for 3 s).
            size = max(1, min(BATCH, int(left / self.per_symbol))) if self.per_symbol else 1
            batch = [item for item in due if item[1] is resolution][:size]
            due = [item for item in due if item not in batch]
            spans = {symbol: (since, int(now) + 1) for symbol, _r, since in batch}
            batch_started = time.perf_counter()
            result = self._ask(keys, resolution, spans, now)
            if result is None:
                report.failed.append(resolution.value)
                due = [item for item in due if item[1] is not resolution]
                continue
            keep_from = int(now) - depths[resolution] * DAY
            for symbol, (since, end) in spans.items():
                held = filled[symbol]  # (every symbol due is one read there)
                split = _newer_split(result, held.get(SPLIT, 0.0), symbol)
                if split is not None and resolution.value in held:  # a refresh
                    self._restate(keys, symbol, report)
                    due = [item for item in due if item[0] != symbol]
                    continue
                if split is not None:  # a first fill: what came is as of now, split and all
                    mark_split(self.client, keys, symbol, split)
                    held[SPLIT] = split
                bars = _checked(result.columns.get(symbol, result.bars.get(symbol)), symbol)
                if not bars:  # nothing to give: what is stored stays, asked again later
                    since = end
                span = (since, end)
                write_history(self.client, keys, symbol, resolution, span, bars, keep_from, now)
                report.stored[(symbol, resolution)] = len(bars)
                metrics.HISTORY_BARS.labels(resolution.value).inc(len(bars))
            self.per_symbol = (time.perf_counter() - batch_started) / len(batch)
        report.pending = len(due)
        metrics.HISTORY_PENDING.set(report.pending)
        return report

    def _restate(self, keys: Keys, symbol: str, report: HistoryReport) -> None:
        drop_symbol(self.client, keys, symbol, views_too=False)
        report.restated.append(symbol)
        metrics.RESTATED.inc()
        log.warning(
            "the source's past changed since it was stored (a split): "
            "storing the symbol again, in a new epoch",
            extra={"symbol": symbol},
        )

    def _due(
        self, filled: dict[str, dict[str, float]], depths: dict[Resolution, int], now: float
    ) -> list[tuple[str, Resolution, int]]:
        """(symbol, resolution, from when) of what is due: never filled first (the
        coarsest first, the chart a person opens to see the most), then the longest ago."""
        due: list[tuple[float, str, Resolution, int]] = []
        refresh = self.settings.history_refresh
        for resolution in sorted(depths, key=lambda r: -r.seconds):
            if self.retry_at.get(resolution, 0.0) > now:
                continue
            deepest = int(now) - depths[resolution] * DAY
            for symbol, when in filled.items():
                last = when.get(resolution.value)
                if last is None:
                    due.append((0.0, symbol, resolution, deepest))
                elif now - last >= refresh:
                    # From the bar in progress when it was last asked: it has finished since.
                    since = max(int(last) - 2 * resolution.seconds, deepest)
                    due.append((last, symbol, resolution, since))
        due.sort(key=lambda item: item[0])
        return [(symbol, resolution, since) for _when, symbol, resolution, since in due]

    def _ask(
        self, keys: Keys, resolution: Resolution, spans: dict[str, tuple[int, int]], now: float
    ) -> FetchResult | None:
        started = time.perf_counter()
        try:
            if serves_history(self.source):
                result = self.source.history(resolution, spans, now)
            else:
                result = self._rolled_up(keys, resolution, spans)
            if not isinstance(result, FetchResult):
                raise TypeError(f"history returned {type(result).__name__}, not a FetchResult")
        except Exception as exc:  # a source of any kind failing in any way
            self.retry_at[resolution] = now + RETRY
            metrics.HISTORY_ERRORS.inc()
            log.warning(
                "source failed to give history; asking again later",
                extra={"resolution": resolution.value, "error": repr(exc), "retry_in": RETRY},
            )
            return None
        finally:
            metrics.HISTORY_SECONDS.observe(time.perf_counter() - started)
        return result

    def _rolled_up(
        self, keys: Keys, resolution: Resolution, spans: dict[str, tuple[int, int]]
    ) -> FetchResult:
        """A minutes-only source's history: the stored minutes rolled up, less the first
        bar if the minutes begin after its start (it would lack them for good)."""
        store = BarStore(self.client, keys, self.settings.window_minutes)
        result = FetchResult(bars={})
        for symbol, (since, end) in spans.items():
            minutes = [bar for bar in store.bars(symbol) if since <= bar.t < end]
            market = store.market(symbol)
            bars = rollup(minutes, resolution, market)
            if (
                bars
                and minutes
                and bar_starts([minutes[0].t], resolution, market)[0] < minutes[0].t
            ):
                bars = bars[1:]
            result.bars[symbol] = bars
        return result


def _newer_split(result: FetchResult, seen: float, symbol: str) -> int | None:
    """The bar of the newest split the source says is in what came back, if newer than
    the newest the symbol's stored bars reflect (``seen``)."""
    split = result.restated.get(symbol) if isinstance(result.restated, dict) else None
    return split if isinstance(split, int) and split > seen else None


def _checked(bars: object, symbol: str) -> list[Sequence[Any]]:
    """The source's bars that are sane, as rows (the rest counted and logged)."""
    rows: list[Sequence[Any]]
    if isinstance(bars, Columns):
        rows, given = list(clean_columns(bars)), len(bars.t)
    elif isinstance(bars, list | tuple):
        cleaned = clean(bar for bar in bars if isinstance(bar, Bar))
        rows, given = [bar.as_list() for bar in cleaned.bars], len(bars)
    else:
        rows, given = [], 1
    if rejected := given - len(rows):
        metrics.BARS_REJECTED.inc(rejected)
        log.warning("bad history bars rejected", extra={"symbol": symbol, "bars": rejected})
    return rows
