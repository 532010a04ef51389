"""One fetch tick: decide what to ask the source for, ask once, store what changed.

Kept apart from Celery so tests can run a tick against a real Redis directly.
"""

import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field

import redis

from common.bars import Bar
from common.keys import Keys
from common.settings import Settings
from fetcher import metrics
from fetcher.cleaning import clean
from fetcher.sources.base import Source, SourceError
from fetcher.store import BarStore, Head
from fetcher.tracking import tracked_symbols

log = logging.getLogger("rtplot.fetcher")

MAX_BACKOFF = 300.0  # seconds; a source failing for hours is retried every 5 minutes


@dataclass
class TickReport:
    symbols: list[str] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)  # symbol -> new version
    fresh: set[str] = field(default_factory=set)  # symbols whose bars changed
    bars_stored: int = 0
    rejected: int = 0  # bars that failed the sanity check
    errors: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None  # why the source was not asked, if it was not


def run_tick(
    settings: Settings, client: "redis.Redis", source: Source, now: float | None = None
) -> TickReport:
    now = time.time() if now is None else now
    keys = Keys(settings.key_prefix)
    store = BarStore(client, keys, settings.window_minutes)
    tracked = tracked_symbols(
        client, keys, settings.symbols, settings.max_symbols, settings.watch_ttl, now
    )
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
    until, kind = client.hmget(keys.source_backoff, ["until", "kind"])
    if until is not None and now < float(until):
        reason = kind.decode() if isinstance(kind, bytes) else str(kind)
        report.skipped = f"backing off after {reason}"
        metrics.TICKS.labels("skipped").inc()
        _record_staleness(heads, report, now)
        return report

    started = time.perf_counter()
    try:
        result = source.fetch(_since(store, heads, now), now)
    except SourceError as exc:
        _back_off(client, keys, settings.fetch_interval, exc.kind, now)
        metrics.SOURCE_ERRORS.labels(exc.kind).inc()
        metrics.TICKS.labels("error").inc()
        log.warning("source failed, backing off", extra={"kind": exc.kind, "error": str(exc)})
        report.skipped = f"{exc.kind}: {exc}"
        _record_staleness(heads, report, now)
        return report
    finally:
        metrics.SOURCE_LATENCY.observe(time.perf_counter() - started)
    client.delete(keys.source_failures)

    report.errors = dict(result.errors)
    for symbol, bars in result.bars.items():
        good = _sane(bars, symbol, report)
        outcome = store.upsert(symbol, good, as_of=now, now=now)
        if outcome.changed or outcome.trimmed:
            report.changed[symbol] = outcome.version
            report.bars_stored += outcome.changed
        if outcome.changed:
            report.fresh.add(symbol)
    metrics.BARS_STORED.inc(report.bars_stored)
    metrics.BARS_REJECTED.inc(report.rejected)
    metrics.TICKS.labels("ok").inc()
    _record_staleness(heads, report, now)
    return report


def _since(store: BarStore, heads: dict[str, Head], now: float) -> dict[str, int]:
    """Ask for the newest stored minute again (it may still be changing) and all after
    it; a symbol with nothing stored, or a gap wider than the window, is backfilled."""
    start = store.window_start(now)
    return {
        s: start if head.newest is None else max(head.newest, start) for s, head in heads.items()
    }


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
    pipe.hset(keys.source_backoff, mapping={"until": now + delay, "kind": kind})
    pipe.expire(keys.source_backoff, int(delay) + 60)
    pipe.execute()


def _publish_tracked(client: "redis.Redis", keys: Keys, symbols: list[str]) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.tracked)
    if symbols:
        pipe.sadd(keys.tracked, *symbols)
    pipe.execute()
