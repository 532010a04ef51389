"""Yahoo Finance 1-minute bars through yfinance.

A tick asks ``yfinance.download`` for every symbol at once (at most two calls, see
``plan_downloads``) and turns its frame into bars.

yfinance 1.7's ``download`` never raises for a symbol that failed: it records the
exception per symbol, returns an all-NaN column block for it and reports the failures
only in its log (``['AAPL', 'MSFT']: YFRateLimitError(...)``). ``yfinance.shared._ERRORS``
is no longer written. So the reasons are read from that log record, and HTTP 429 is
recognised by yfinance's ``YFRateLimitError`` in it. Nothing here sleeps: back-off is
the caller's, on ``RateLimited``.

Each symbol's market (its exchange's time zone and session, common.markets) comes from
yfinance's metadata for it (``Ticker.get_history_metadata()``: Yahoo's
``exchangeTimezoneName``, ``instrumentType`` and regular trading period), asked once per
symbol for the life of the source, after its first bars; the charts show that clock and
hide the hours outside the session. ``download`` itself cannot say: it converts every
symbol of a call to the commonest time zone among them.
"""

import ast
import logging
import re
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import time as clock_time
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance.exceptions import YFRateLimitError

from common.bars import MINUTE, BadBar, Bar, check_bar, floor_minute
from common.markets import Market, clock_name, market_for
from common.resolutions import Resolution
from fetcher.sources.base import FetchResult, RateLimited, SourceError

log = logging.getLogger("rtplot.fetcher.yahoo")

# yfinance 1.7 calls pandas with the deprecated inplace= on every download: pandas' warning
# is about yfinance's code, nothing a user can act on, and would repeat in the worker's
# log (and rtplot up's output) at every tick.
warnings.filterwarnings(
    "ignore", message=r"The inplace keyword in DataFrame\.", module=r"yfinance(\.|$)"
)

# Yahoo refuses a 1-minute request spanning more than 8 days (yfinance's own "max" for
# 1m is 8 days); a day's margin keeps a skewed clock or a slow request inside it.
MAX_LOOKBACK = 7 * 86_400
# A symbol whose newest bar is older than this is "behind" (new, or its market is
# closed) and is fetched in a second call, so it does not widen everyone's range.
RECENT = 3_600
# A symbol whose metadata could not be had is asked again this much later; meanwhile
# its suffix says where it trades.
METADATA_RETRY = 600.0
METADATA_KEYS = ("exchangeTimezoneName", "instrumentType", "currentTradingPeriod")

_PRICES = ["Open", "High", "Low", "Close"]
_EPOCH = pd.Timestamp(0, tz="UTC")
_ONE_SECOND = pd.Timedelta(seconds=1)

# How a failure reads in yfinance's per-symbol report. With exceptions raised (see
# _yfinance_failures) the report is the exception's repr; the plain phrases cover the
# logged-and-swallowed form in case yfinance stops honouring that switch.
_RATE_LIMIT_MARKS = ("YFRateLimitError", "Too Many Requests")
_NO_DATA_MARKS = (
    "YFPricesMissingError",
    "YFTzMissingError",
    "no price data found",
    "no timezone found",
)


class Download(NamedTuple):
    symbols: tuple[str, ...]
    start: int  # epoch seconds, the minute to fetch from


@dataclass
class Parsed:
    """One symbol's frame, read."""

    bars: list[Bar]
    rows: int  # rows that had prices, before the since filter and the sanity check
    rejected: list[str] = field(default_factory=list)  # why each insane bar was dropped


class YahooSource:
    name = "yfinance"

    def __init__(self, *, session: object | None = None, timeout: float = 10.0) -> None:
        """``session`` is handed to yfinance for all its HTTP (a curl_cffi or requests
        Session; tests pass one that serves recorded responses). Without one, a
        curl_cffi session impersonating Chrome is made on first use, as yfinance would."""
        self._session = session
        self._timeout = timeout
        self._markets: dict[str, Market] = {}  # from each symbol's metadata
        self._retry_at: dict[str, float] = {}  # symbols whose metadata could not be had

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        tally = _Tally()
        for download in plan_downloads(since, now):
            if tally.rate_limited and tally.rate_limited == tally.seen:
                # Every symbol asked so far was refused; asking for more only digs deeper.
                tally.refuse(download.symbols, "not asked: Yahoo is rate limiting")
                continue
            frame, reasons = self._download(download.symbols, download.start)
            for symbol, parsed in _read_frame(frame, download.symbols, since).items():
                tally.settle(symbol, parsed, reasons.get(symbol.upper()))
        result = tally.result()
        for symbol, bars in result.bars.items():
            if bars:
                result.markets[symbol] = self.market(symbol)
        return result

    def market(self, symbol: str) -> Market:
        """Where the symbol trades, from its metadata (once), or by its suffix while that
        cannot be had."""
        known = self._markets.get(symbol)
        if known is not None:
            return known
        if time.monotonic() >= self._retry_at.get(symbol, 0.0):
            try:
                ticker = yf.Ticker(symbol, session=self._http_session())
                with _yfinance_failures():
                    metadata = ticker.get_history_metadata()
                    # Only these: another key ("tradingPeriods") would be one more request.
                    wanted = {key: metadata.get(key) for key in METADATA_KEYS}
                found = market_from_metadata(symbol, wanted)
            except Exception as exc:  # rate limited, offline, a change in yfinance
                log.warning("no metadata from Yahoo", extra={"symbol": symbol, "error": repr(exc)})
                found = None
            if found is not None:
                self._markets[symbol] = found
                return found
            self._retry_at[symbol] = time.monotonic() + METADATA_RETRY
        return market_for(symbol)

    def history(
        self, resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
    ) -> FetchResult:
        """Bars at ``resolution`` over each symbol's span (fetcher.sources.yahoo_history:
        imported here, as it builds on this module)."""
        from fetcher.sources.yahoo_history import fetch_history

        return fetch_history(self, resolution, spans, now)

    def _download(
        self,
        symbols: Sequence[str],
        start: int,
        *,
        interval: str = "1m",
        end: int | None = None,
        actions: bool = False,
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        """One ``yf.download`` of ``symbols`` from ``start`` (epoch seconds) to ``end``
        (now if None). Prices as Yahoo sends them: adjusted for splits, not dividends
        (fetcher.sources.yahoo_history says why)."""
        with _yfinance_failures() as reasons:
            try:
                frame = yf.download(
                    list(symbols),
                    start=start,
                    end=end,
                    interval=interval,
                    group_by="ticker",
                    multi_level_index=True,
                    auto_adjust=False,
                    back_adjust=False,
                    actions=actions,
                    prepost=False,
                    # Aware timestamps: ignore_tz=True would give naive exchange-local
                    # times, hours off UTC and indistinguishable from it.
                    ignore_tz=False,
                    progress=False,
                    threads=True,
                    timeout=self._timeout,
                    session=self._http_session(),
                )
            except YFRateLimitError as exc:
                raise RateLimited(f"yfinance: {exc}") from exc
            except Exception as exc:
                raise SourceError(f"yfinance download failed: {exc!r}") from exc
        return (frame if frame is not None else pd.DataFrame()), reasons

    def _http_session(self) -> object:
        if self._session is None:
            # yfinance would make a new session for every download() call; one for the
            # life of the source keeps Yahoo's cookie and the open connections between
            # ticks. Made here, not in __init__, so a forked worker gets its own.
            self._session = curl_requests.Session(impersonate="chrome")
        return self._session


def market_from_metadata(symbol: str, metadata: Mapping[str, Any]) -> Market | None:
    """The market Yahoo's metadata describes: its exchange's time zone, and the regular
    session (the suffix table's, when it agrees on the zone: Yahoo's is today's, which on
    a half day closes early). None when it names no usable time zone."""
    tz = metadata.get("exchangeTimezoneName")
    try:
        zone = ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return None
    name = clock_name(zone.key)
    kind = metadata.get("instrumentType")
    if kind == "CRYPTOCURRENCY":
        return Market(name, zone.key, weekdays=False)
    if kind in ("CURRENCY", "FUTURE"):
        return Market(name, zone.key)  # around the clock on weekdays
    table = market_for(symbol)
    if table.tz == zone.key and table.opens is not None:
        return replace(table, name=name)
    regular = (metadata.get("currentTradingPeriod") or {}).get("regular") or {}
    opens, closes = _local_time(regular.get("start"), zone), _local_time(regular.get("end"), zone)
    if opens is None or closes is None or opens == closes:
        return Market(name, zone.key)
    return Market(name, zone.key, opens, closes)


def _local_time(value: object, zone: ZoneInfo) -> clock_time | None:
    """A trading period's bound (epoch seconds as Yahoo sends it, or the Timestamp
    yfinance makes of it) as the exchange's wall-clock time."""
    if value is None:
        return None
    try:
        moment = (
            pd.Timestamp(value, unit="s", tz="UTC")
            if isinstance(value, int | float)
            else pd.Timestamp(value)  # type: ignore[arg-type]
        )
        if moment.tzinfo is None:
            return None
        return moment.tz_convert(zone.key).time().replace(second=0, microsecond=0)
    except (TypeError, ValueError, OverflowError):
        return None


def plan_downloads(since: Mapping[str, int], now: float) -> list[Download]:
    """Split the symbols into at most two downloads, each from its group's oldest need.

    One ``download`` call asks every symbol for the same range, from the smallest
    ``since``. A single symbol that is far behind (just added, or its exchange closed
    hours ago) would make every up-to-date symbol re-fetch that span on every tick, so
    up-to-date symbols (``since`` within RECENT of now) go in one call and the rest in
    another. No start is older than MAX_LOOKBACK or later than the current minute.
    """
    current = floor_minute(now)
    oldest = current - MAX_LOOKBACK
    recent = sorted(s for s, t in since.items() if t >= current - RECENT)
    behind = sorted(s for s, t in since.items() if t < current - RECENT)
    return [
        Download(tuple(group), min(max(min(since[s] for s in group), oldest), current))
        for group in (recent, behind)
        if group
    ]


def _read_frame(
    frame: pd.DataFrame, symbols: Sequence[str], since: Mapping[str, int]
) -> dict[str, Parsed]:
    try:
        blocks = _split_by_symbol(frame, symbols)
        return {
            s: bars_from_frame(blocks[s], since[s]) if s in blocks else Parsed([], 0)
            for s in symbols
        }
    except (KeyError, TypeError, ValueError) as exc:
        # The frame's shape is yfinance's to change; a surprise is a failed fetch,
        # not a crashed tick.
        raise SourceError(f"cannot read yfinance's frame: {exc!r}") from exc


def _split_by_symbol(frame: pd.DataFrame, symbols: Sequence[str]) -> dict[str, pd.DataFrame]:
    """group_by="ticker" puts the symbol on the first column level, even for one symbol."""
    if frame.empty:
        return {}
    if not isinstance(frame.columns, pd.MultiIndex):
        if len(symbols) == 1:
            return {symbols[0]: frame}
        raise ValueError(f"columns are not per symbol: {list(frame.columns)[:8]}")
    present = set(frame.columns.get_level_values(0))
    return {s: _columns_of(frame, s.upper()) for s in symbols if s.upper() in present}


def _columns_of(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    block = frame.xs(ticker, axis=1, level=0)
    if not isinstance(block, pd.DataFrame):
        raise ValueError(f"{ticker} has a single column, not OHLCV")
    return block


def bars_from_frame(frame: pd.DataFrame, since: int) -> Parsed:
    """Bars from one symbol's yfinance frame (Open, High, Low, Close, Volume columns and
    an aware DatetimeIndex): sorted, one per minute (the latest row of a minute wins),
    none before ``since``. Rows without prices are minutes the symbol did not trade, or
    the padding yfinance adds where another symbol did, and are skipped; bars that fail
    ``check_bar`` are dropped and listed in ``rejected``."""
    rows = frame.dropna(subset=_PRICES, how="any")
    if rows.empty:
        return Parsed([], 0)
    seconds = _epoch_seconds(rows.index)
    table = pd.DataFrame(
        {
            "seconds": seconds,
            "t": seconds // MINUTE * MINUTE,
            "o": rows["Open"].to_numpy(dtype=float),
            "h": rows["High"].to_numpy(dtype=float),
            "l": rows["Low"].to_numpy(dtype=float),
            "c": rows["Close"].to_numpy(dtype=float),
            # FX and indices report no volume; a missing one is no volume, not no bar.
            "v": rows["Volume"].fillna(0).to_numpy(dtype=float),
        }
    )
    table = table.sort_values("seconds", kind="stable").drop_duplicates("t", keep="last")
    table = table[table["t"] >= since]
    bars: list[Bar] = []
    rejected: list[str] = []
    for t, o, hi, lo, c, v in table[["t", "o", "h", "l", "c", "v"]].itertuples(index=False):
        try:
            bars.append(check_bar(Bar(int(t), float(o), float(hi), float(lo), float(c), int(v))))
        except (BadBar, OverflowError, ValueError) as exc:
            rejected.append(str(exc))
    return Parsed(bars, len(rows), rejected)


def _epoch_seconds(index: pd.Index) -> "np.ndarray[tuple[int], np.dtype[np.int64]]":
    stamps = pd.DatetimeIndex(index)
    if stamps.tz is None:
        # Only a change in yfinance gives naive stamps, and those are exchange-local.
        raise ValueError("yfinance returned timestamps without a time zone")
    # Arithmetic, not .asi8: pandas 3 keeps seconds or microseconds, not always ns.
    return np.asarray((stamps - _EPOCH) // _ONE_SECOND, dtype=np.int64)


@dataclass
class _Tally:
    bars: dict[str, list[Bar]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    rate_limited: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # failures other than rate limits

    def settle(self, symbol: str, parsed: Parsed, reason: str | None) -> None:
        self.seen.add(symbol)
        self.bars[symbol] = parsed.bars
        if parsed.rejected:
            log.warning(
                "dropped insane bars from Yahoo",
                extra={
                    "symbol": symbol,
                    "count": len(parsed.rejected),
                    "error": parsed.rejected[0],
                },
            )
        if parsed.rows:
            if not parsed.bars and parsed.rejected:
                self.errors[symbol] = f"all {len(parsed.rejected)} new bar(s) were insane"
            return
        if reason is None:
            self.errors[symbol] = "no data"
        elif any(mark in reason for mark in _RATE_LIMIT_MARKS):
            self.rate_limited.add(symbol)
            self.errors[symbol] = f"rate limited: {reason}"
        elif any(mark in reason for mark in _NO_DATA_MARKS):
            self.errors[symbol] = f"no data: {reason}"
        else:
            self.failed.add(symbol)
            self.errors[symbol] = reason

    def refuse(self, symbols: Sequence[str], why: str) -> None:
        for symbol in symbols:
            self.seen.add(symbol)
            self.bars[symbol] = []
            self.rate_limited.add(symbol)
            self.errors[symbol] = why

    def result(self) -> FetchResult:
        if self.seen and self.rate_limited | self.failed == self.seen:
            summary = "; ".join(f"{s}: {self.errors[s]}" for s in sorted(self.seen)[:5])
            if not self.failed:
                raise RateLimited(f"Yahoo refused every symbol (HTTP 429): {summary}")
            raise SourceError(f"yfinance fetched no symbol: {summary}")
        return FetchResult(bars=self.bars, errors=self.errors)


@contextmanager
def _yfinance_failures() -> Iterator[dict[str, str]]:
    """Collect download()'s per-symbol failure reasons (symbol -> reason) while it runs.

    Two things make those reasons worth having. download() reports them only in its
    log, hence the handler. And it switches ``YfConfig.network.hide_exceptions`` off
    per symbol while the history code reads ``YfConfig.debug.hide_exceptions``, so by
    default a refused connection is logged and reported as "possibly delisted; no price
    data found", the same words as a closed market; switching the one that is read off
    lets the real exception (ConnectionError, YFRateLimitError, ...) reach the report.
    Restored afterwards; nothing else in the fetcher uses yfinance.
    """
    handler = _FailureReport(threading.get_ident())
    logger = logging.getLogger("yfinance")
    debug = yf.config.debug
    hidden = debug.hide_exceptions
    debug.hide_exceptions = False
    logger.addHandler(handler)
    try:
        yield handler.reasons
    finally:
        logger.removeHandler(handler)
        debug.hide_exceptions = hidden


class _FailureReport(logging.Handler):
    """Reads download()'s summary lines, ``['AAPL', 'MSFT']: <reason>``.

    They are logged at ERROR by the thread that called download(), after its worker
    threads finish; records from other threads belong to someone else's call. The
    ``yfinance`` logger must let ERROR through (it does unless configured otherwise).
    """

    _LINE = re.compile(r"(\[[^\]]*\]): (.+)", re.DOTALL)

    def __init__(self, thread: int) -> None:
        super().__init__(logging.ERROR)
        self.thread = thread
        self.reasons: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        match = self._LINE.fullmatch(record.getMessage().strip())
        if match is None:
            return
        try:
            symbols = ast.literal_eval(match[1])
        except (ValueError, SyntaxError):
            return
        for symbol in symbols:
            if isinstance(symbol, str):
                self.reasons[symbol] = match[2]
