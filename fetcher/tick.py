"""One fetch tick: decide what to ask the source for, ask once, store what changed.

Kept apart from Celery so tests can run a tick against a real Redis directly.

Whatever the source (built in, or your own: docs/sources.md), what it does is checked
here the same way: any exception is a failed fetch with doubling back-off (a
``SourceError``'s ``kind`` labels it, anything else is an ``error``), a result that is
not a ``FetchResult`` is one too, and each bar must be a ``Bar`` for a symbol asked
about, at most a minute ahead of the tick, and pass the cleaning (fetcher.cleaning).
"""

import logging
import math
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import redis

from common.bars import MINUTE, Bar, floor_minute
from common.contract.fields import BackoffField
from common.contract.keys import Keys
from common.contract.store import Head
from common.markets import Market
from common.settings import Settings
from fetcher import metrics
from fetcher.cleaning import clean
from fetcher.history import HistoryFiller, HistoryReport
from fetcher.sources.base import FetchResult, Source, SourceError
from fetcher.store import BarStore
from fetcher.tracking import tracked_symbols

log = logging.getLogger("rtplot.fetcher")

MAX_BACKOFF = 300.0  # seconds; a source failing for hours is retried every 5 minutes
HISTORY_SHARE = 0.7  # of the interval a tick may spend on history after its minutes


@dataclass
class TickReport:
    symbols: list[str] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)  # symbol -> new version
    fresh: set[str] = field(default_factory=set)  # symbols whose bars changed
    bars_stored: int = 0
    rejected: int = 0  # bars that failed the sanity check
    errors: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None  # why the source was not asked, if it was not
    history: HistoryReport | None = None  # what history it filled after the minutes


def run_tick(
    settings: Settings,
    client: "redis.Redis",
    source: Source,
    now: float | None = None,
    history: HistoryFiller | None = None,
) -> TickReport:
    """One tick; with ``history``, then the symbols' history that is due, for what is
    left of ``HISTORY_SHARE`` of the interval (fetcher.history)."""
    started_at = time.perf_counter()
    now = time.time() if now is None else now
    keys = Keys(settings.key_prefix)
    store = BarStore(client, keys, settings.window_minutes)
    tracked = tracked_symbols(client, keys, settings.symbols, settings.watch_ttl, now)
    for symbol in tracked.dropped:
        store.drop(symbol)
        with suppress(KeyError):  # it may never have had a reading
            metrics.STALENESS.remove(symbol)
        log.info("dropped unwatched symbol", extra={"symbol": symbol})
    if renewed := store.follow_lineage(tracked.symbols):
        log.warning(
            "Redis' history changed (a restart or a failover): new epochs",
            extra={"symbols": renewed},
        )
    report = TickReport(symbols=tracked.symbols)
    _publish_tracked(client, keys, tracked.symbols)
    metrics.TRACKED.set(len(tracked.symbols))
    metrics.INTERVAL.set(settings.fetch_interval)
    metrics.LAST_TICK.set(now)

    heads = store.heads(tracked.symbols)
    until, kind = client.hmget(keys.source_backoff, [BackoffField.UNTIL, BackoffField.KIND])
    if until is not None and now < float(until):
        reason = kind.decode() if isinstance(kind, bytes) else str(kind)
        report.skipped = f"backing off after {reason}"
        metrics.TICKS.labels("skipped").inc()
        _record_staleness(heads, report, now)
        return report

    started = time.perf_counter()
    since = _since(store, heads, now)
    try:
        result = _fetched(source, since, now)
    except Exception as exc:  # a source of any kind failing in any way: the same back-off
        kind = exc.kind if isinstance(exc, SourceError) else "error"
        _back_off(client, keys, settings.fetch_interval, kind, now)
        metrics.SOURCE_ERRORS.labels(kind).inc()
        metrics.TICKS.labels("error").inc()
        shown = str(exc) if isinstance(exc, SourceError) else repr(exc)
        log.warning("source failed, backing off", extra={"kind": kind, "error": shown})
        report.skipped = f"{kind}: {shown}"
        _record_staleness(heads, report, now)
        return report
    finally:
        metrics.SOURCE_LATENCY.observe(time.perf_counter() - started)
    client.delete(keys.source_failures)

    report.errors = _errors(result, since)
    markets = _markets(result, since)
    for symbol, bars in _bars(result, since, report).items():
        good = _sane(_bars_only(bars, symbol, now, report), symbol, report)
        outcome = store.upsert(symbol, good, as_of=now, now=now, market=markets.get(symbol))
        if outcome.changed or outcome.trimmed:
            report.changed[symbol] = outcome.version
            report.bars_stored += outcome.changed
        if outcome.changed:
            report.fresh.add(symbol)
    metrics.BARS_STORED.inc(report.bars_stored)
    metrics.BARS_REJECTED.inc(report.rejected)
    metrics.TICKS.labels("ok").inc()
    _record_staleness(heads, report, now)
    if history is not None:
        stored = [s for s in tracked.symbols if heads[s].newest is not None or s in report.changed]
        left = settings.fetch_interval * HISTORY_SHARE - (time.perf_counter() - started_at)
        report.history = history.fill(stored, now, left)
    return report


def _fetched(source: Source, since: dict[str, int], now: float) -> FetchResult:
    result = source.fetch(since, now)
    if not isinstance(result, FetchResult):
        raise SourceError(f"{source!r}.fetch returned {type(result).__name__}, not a FetchResult")
    if not isinstance(result.bars, Mapping):
        raise SourceError(f"{source!r}.fetch returned bars as {type(result.bars).__name__}")
    return result


def _bars(result: FetchResult, since: dict[str, int], report: TickReport) -> dict[str, Any]:
    """The bars of the symbols asked about; any other symbol's are dropped (its data would
    be stored for nobody, outside the cap on symbols)."""
    unasked = [symbol for symbol in result.bars if symbol not in since]
    if unasked:
        report.rejected += sum(_count(result.bars[symbol]) for symbol in unasked)
        log.warning("bars for symbols not asked about", extra={"symbols": unasked[:10]})
    return {symbol: bars for symbol, bars in result.bars.items() if symbol in since}


def _count(bars: object) -> int:
    return len(bars) if isinstance(bars, list | tuple) else 1


def _bars_only(bars: object, symbol: str, now: float, report: TickReport) -> list[Bar]:
    """The bars that are ``Bar``s of whole numbers where those belong, and not more than
    a minute ahead of this tick's clock; the rest rejected."""
    if not isinstance(bars, list | tuple):
        report.rejected += 1
        log.warning("bars are not a list", extra={"symbol": symbol, "error": type(bars).__name__})
        return []
    latest = floor_minute(now) + MINUTE
    good: list[Bar] = []
    for bar in bars:
        reason = _why_not(bar, latest)
        if reason is None:
            t, o, h, lo, c, v = bar.t, bar.o, bar.h, bar.l, bar.c, bar.v
            good.append(Bar(int(t), float(o), float(h), float(lo), float(c), int(v)))
            continue
        report.rejected += 1
        log.warning("bad bar rejected", extra={"symbol": symbol, "error": reason})
    return good


_PLAIN = frozenset((int, float))  # what a field almost always is: no ABC check needed


def _why_not(bar: object, latest: int) -> str | None:
    if not isinstance(bar, Bar):
        return f"{type(bar).__name__} is not a Bar"
    fields = (bar.t, bar.o, bar.h, bar.l, bar.c, bar.v)
    plain = all(type(value) in _PLAIN for value in fields)
    if not plain and not all(
        isinstance(value, Real) and not isinstance(value, bool) for value in fields
    ):
        return f"bar at {bar.t!r} has a field that is not a number"
    t, volume = float(bar.t), float(bar.v)
    if not (math.isfinite(t) and math.isfinite(volume)):
        return f"bar at {bar.t!r} has a time or volume that is not finite"
    if t != int(t) or volume != int(volume):
        return f"bar at {bar.t!r} has a time or volume that is not a whole number"
    if t > latest:
        return f"bar at {int(t)} is in the future"
    return None


def _errors(result: FetchResult, since: dict[str, int]) -> dict[str, str]:
    errors = result.errors if isinstance(result.errors, Mapping) else {}
    return {str(symbol): str(why) for symbol, why in errors.items() if symbol in since}


def _markets(result: FetchResult, since: dict[str, int]) -> dict[str, Market]:
    markets = result.markets if isinstance(result.markets, Mapping) else {}
    return {s: m for s, m in markets.items() if s in since and isinstance(m, Market)}


def _since(store: BarStore, heads: dict[str, Head], now: float) -> dict[str, int]:
    """Ask for the newest stored minute again (it may still be changing) and all after
    it; a symbol with nothing stored, or a gap wider than the window, is backfilled.
    Where the live stream writes the newest minutes, from the minute the last poll
    caught in progress instead (or the window's start, before any poll): the minutes
    since are the poll's to close, a minute the stream missed while it was down among
    them."""
    start = store.window_start(now)
    since: dict[str, int] = {}
    for symbol, head in heads.items():
        if head.newest is None or head.polled_at is None:  # nothing, or only the stream's
            since[symbol] = start
        else:
            since[symbol] = max(min(head.newest, floor_minute(head.polled_at)), start)
    return since


def _record_staleness(heads: dict[str, Head], report: TickReport, now: float) -> None:
    for symbol, head in heads.items():
        if symbol in report.fresh:
            age = 0.0
        elif head.changed_at is None:
            continue  # nothing stored yet: not stale, just new
        else:
            age = max(now - head.changed_at, 0.0)
        metrics.STALENESS.labels(symbol).set(age)


def _sane(bars: list[Bar], symbol: str, report: TickReport) -> list[Bar]:
    cleaned = clean(bars)
    for bar, reason in cleaned.rejected:
        report.rejected += 1
        log.warning("bad bar rejected", extra={"symbol": symbol, "t": bar.t, "error": reason})
    return cleaned.bars


def _back_off(client: "redis.Redis", keys: Keys, interval: float, kind: str, now: float) -> None:
    failures = int(client.incr(keys.source_failures))
    delay = min(interval * 2 ** (failures - 1), MAX_BACKOFF)
    # The deadline is in the tick's own clock (tests run minutes in milliseconds); the
    # TTL only tidies up after it.
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        keys.source_backoff, mapping={BackoffField.UNTIL: now + delay, BackoffField.KIND: kind}
    )
    pipe.expire(keys.source_backoff, int(delay) + 60)
    pipe.execute()


def _publish_tracked(client: "redis.Redis", keys: Keys, symbols: list[str]) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.tracked)
    if symbols:
        pipe.sadd(keys.tracked, *symbols)
    pipe.execute()
