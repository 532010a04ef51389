"""rtplot stream's work: hold the stream (one active process, any others standby), keep
it subscribed to the tracked symbols, fold its trades into minutes and write them.

Writes go through the same idempotent, versioned upsert as the poll's
(common.contract.store, as ``writer="stream"``), each symbol at most once every
RTPLOT_STREAM_WRITE_EVERY seconds, many symbols in one pipeline: the renderer, the
deltas and the page work as they do for the poll. The poll keeps running beside the
stream and is authoritative for closed minutes (the store's docstring says how the two
share a minute).

Only one process consumes the stream: it holds ``Keys.stream_lock`` (a redis-py
``Lock`` it renews); another started beside it waits as a standby and takes over when
the lock expires, as the beat does.
"""

import asyncio
import logging
import time
from contextlib import suppress
from typing import Any

import redis
from redis.exceptions import LockError

from common.contract.fields import MetaField
from common.contract.keys import Keys
from common.contract.store import Upsert
from common.contract.watching import read_watched_now
from common.markets import Market
from common.settings import Settings
from fetcher.store import BarStore, new_epoch
from stream import metrics
from stream.connection import IDLE_SECONDS, Connection
from stream.frames import Bad, read_frame
from stream.minutes import SymbolMinutes

log = logging.getLogger("rtplot.stream")

LOCK_TTL = 10.0  # seconds a silent active process keeps the stream from a standby
FOLLOW_EVERY = 2.0  # seconds between looks at the tracked symbols (and lock renewals)
STREAMING_WITHIN = 60.0  # a symbol with a trade this recent is "streaming"
LOOP_SILENCE = 15.0  # seconds without a look at the lock and symbols: the loop is stuck


class StreamService:
    def __init__(
        self,
        settings: Settings,
        client: "redis.Redis",
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.key_prefix)
        self.store = BarStore(client, self.keys, settings.window_minutes)
        self.connection = Connection(
            settings.stream_url, self.on_frame, self.on_state, idle_seconds=idle_seconds
        )
        self.lock = client.lock(self.keys.stream_lock, timeout=LOCK_TTL, thread_local=False)
        self.minutes: dict[str, SymbolMinutes] = {}
        self.wanted: set[str] = set()
        self.markets: dict[str, Market] = {}  # where each trades, as the poll stored it
        self.last_write: dict[str, float] = {}
        self.last_tick: dict[str, float] = {}  # symbol -> when its last trade arrived
        self.bad_logged: set[str] = set()
        self.active = False
        self.redis_ok = True
        self.renewed_at = 0.0
        self.looked_at = time.monotonic()
        self.disconnected_since: float | None = time.monotonic()
        self._streaming: asyncio.Task[None] | None = None

    # -- frames in ------------------------------------------------------------------

    def on_frame(self, frame: str | bytes) -> None:
        now = time.time()
        got = read_frame(frame, self.wanted, now)
        if isinstance(got, Bad):
            self._bad(got)
            return
        market = self.markets.get(got.symbol)
        if market is not None and not market.is_open(got.time):
            # Pre- and post-market trades: the poll asks Yahoo for the sessions only, and
            # the charts hide the hours outside them.
            metrics.OUTSIDE_SESSION.inc()
            return
        minutes = self.minutes.setdefault(got.symbol, SymbolMinutes())
        if not minutes.fold(got):
            self._bad(Bad("past", f"{got.symbol} trade older than the minutes held"))
            return
        metrics.TICKS.inc()
        self.last_tick[got.symbol] = now

    def _bad(self, bad: Bad) -> None:
        metrics.BAD_FRAMES.labels(bad.kind).inc()
        if bad.kind not in self.bad_logged:  # once per kind: a broken feed is one story
            self.bad_logged.add(bad.kind)
            log.warning(
                "bad frame from the stream, not stored (this kind is logged once; "
                "rtplot_stream_bad_frames_total counts every one)",
                extra={"kind": bad.kind, "error": bad.detail},
            )

    def on_state(self, state: str) -> None:
        if state == "connected":
            self.disconnected_since = None
            metrics.CONNECTED.set(1)
        else:
            if self.disconnected_since is None:
                self.disconnected_since = time.monotonic()
            metrics.CONNECTED.set(0)
            if state == "reconnecting":
                metrics.RECONNECTS.inc()

    # -- bars out -------------------------------------------------------------------

    def due(self, now: float, every: float | None = None) -> list[Upsert]:
        """A write for each symbol with changed minutes not written for ``every`` s
        (RTPLOT_STREAM_WRITE_EVERY unless given)."""
        every = self.settings.stream_write_every if every is None else every
        cutoff = self.store.window_start(now)
        calls = []
        for symbol, minutes in self.minutes.items():
            if minutes.dirty and now - self.last_write.get(symbol, 0.0) >= every:
                bars = minutes.take()
                calls.append(
                    Upsert(symbol, bars, minutes.newest, cutoff, new_epoch(), writer="stream")
                )
                self.last_write[symbol] = now
        return calls

    def write(self, calls: list[Upsert], now: float) -> None:
        """One round trip for every write due (in a thread: the loop keeps reading)."""
        started = time.perf_counter()
        self.store.scripts.run_many(calls)
        self.client.zadd(self.keys.streaming, {call.symbol: now for call in calls})
        metrics.WRITES.inc(len(calls))
        metrics.WRITE_SECONDS.observe(time.perf_counter() - started)

    def _unwritten(self, calls: list[Upsert]) -> None:
        """Writes that failed are due again: their minutes are still held."""
        for call in calls:
            minutes = self.minutes.get(call.symbol)
            if minutes is not None:
                minutes.dirty.update(b.t for b in call.bars if b.t in minutes.minutes)
            self.last_write.pop(call.symbol, None)

    async def write_forever(self) -> None:
        # Each symbol at most every write_every, and a symbol quiet for that long written
        # within 50 ms of its next trade.
        pause = min(self.settings.stream_write_every / 4, 0.05)
        while True:
            await asyncio.sleep(pause)
            now = time.time()
            calls = self.due(now)
            if not calls:
                continue
            try:
                await asyncio.to_thread(self.write, calls, now)
                self._redis(True)
            except (redis.RedisError, OSError) as exc:
                self._unwritten(calls)
                self._redis(False, exc)

    def _redis(self, ok: bool, exc: BaseException | None = None) -> None:
        if ok and not self.redis_ok:
            log.info("Redis answers again")
        elif not ok and self.redis_ok:
            log.warning("Redis unreachable; trades are held", extra={"error": repr(exc)})
        self.redis_ok = ok

    # -- which symbols, and who streams ---------------------------------------------

    def tracked(self, now: float) -> tuple[set[str], dict[str, Market]]:
        """The symbols to stream, and the markets the poll stored for them."""
        watched = read_watched_now(self.client, self.keys, now - self.settings.watch_ttl)
        symbols = list(dict.fromkeys([*self.settings.symbols, *watched]))
        symbols = symbols[: self.settings.max_symbols]
        pipe = self.client.pipeline(transaction=False)
        for symbol in symbols:
            pipe.hget(self.keys.meta(symbol), MetaField.MARKET)
        stored = zip(symbols, pipe.execute(), strict=True)
        markets = {symbol: Market.decode(raw) for symbol, raw in stored if raw}
        return set(symbols), markets

    def follow(self, symbols: set[str]) -> None:
        self.wanted = symbols
        self.connection.want(symbols)
        for gone in [s for s in self.minutes if s not in symbols]:
            del self.minutes[gone]
        for gone in [s for s in self.last_tick if s not in symbols]:
            del self.last_tick[gone]
            with suppress(KeyError):
                metrics.LAST_TICK_AGE.remove(gone)

    def observe(self, now: float) -> None:
        metrics.SUBSCRIBED.set(len(self.wanted) if self.active else 0)
        ages = {s: now - t for s, t in self.last_tick.items()}
        metrics.STREAMING.set(sum(age < STREAMING_WITHIN for age in ages.values()))
        for symbol, age in ages.items():
            metrics.LAST_TICK_AGE.labels(symbol).set(round(age, 3))

    def _hold(self) -> bool:
        """Whether this process holds the stream now: take the lock, or renew it."""
        if not self.active:
            return bool(self.lock.acquire(blocking=False))
        try:
            self.lock.reacquire()
        except LockError:  # expired and taken by another (a long pause, an outage)
            return False
        return True

    async def run(self) -> None:
        writer = asyncio.create_task(self.write_forever())
        try:
            while True:
                await self._look()
                await asyncio.sleep(FOLLOW_EVERY)
        finally:
            writer.cancel()
            await self._flush()
            await self._step_down()

    async def _flush(self) -> None:
        """On the way out, every minute not yet written, whatever its pace."""
        now = time.time()
        calls = self.due(now, every=0.0)
        if calls:
            with suppress(redis.RedisError, OSError):
                await asyncio.to_thread(self.write, calls, now)

    async def _look(self) -> None:
        now = time.time()
        self.looked_at = time.monotonic()
        try:
            holds = await asyncio.to_thread(self._hold)
            symbols, markets = await asyncio.to_thread(self.tracked, now) if holds else (set(), {})
            self._redis(True)
            self.renewed_at = time.monotonic()
        except (redis.RedisError, OSError) as exc:
            self._redis(False, exc)
            # Unrenewed, the lock expires and a standby may take it: stop before then.
            if self.active and time.monotonic() - self.renewed_at > LOCK_TTL / 2:
                log.warning("cannot renew the stream's lock: standing by")
                await self._step_down()
            return
        if holds and not self.active:
            self.active = True
            metrics.ACTIVE.set(1)
            log.info("holding the stream", extra={"url": self.settings.stream_url})
            self._streaming = asyncio.create_task(self.connection.run())
        elif not holds and self.active:
            log.warning("the stream's lock was taken by another process: standing by")
            await self._step_down(release=False)
        if self.active and self._streaming is not None and self._streaming.done():
            # The connection loop only ends by an error of rtplot's own: logged, started again.
            log.error("the stream's connection loop ended", exc_info=self._streaming.exception())
            self._streaming = asyncio.create_task(self.connection.run())
        if self.active:
            self.markets = markets
            self.follow(symbols)
        self.observe(now)

    async def _step_down(self, release: bool = True) -> None:
        if self._streaming is not None:
            self._streaming.cancel()
            # Ended, cancelled or failing now: whatever it raises, the loop is over.
            await asyncio.gather(self._streaming, return_exceptions=True)
            self._streaming = None
        if self.active and release:
            with suppress(LockError, redis.RedisError, OSError):
                await asyncio.to_thread(self.lock.release)
        self.active = False
        self.minutes.clear()
        self.on_state("disconnected")
        metrics.ACTIVE.set(0)

    def health(self) -> dict[str, Any]:
        """200 while Redis answers and the loop goes round. Whether the active process is
        connected is in the body (and in rtplot_stream_connected, which an alert
        watches), not in the status: a streamer that is away is not cured by
        restarting, and the poll goes on meanwhile."""
        looping = time.monotonic() - self.looked_at < LOOP_SILENCE
        report: dict[str, Any] = {
            "ok": self.redis_ok and looping,
            "redis": self.redis_ok,
            "looping": looping,
            "role": "active" if self.active else "standby",
        }
        if self.active:
            report["connected"] = self.disconnected_since is None
            report["symbols"] = len(self.wanted)
            if self.disconnected_since is not None:
                report["disconnected_for"] = round(time.monotonic() - self.disconnected_since, 1)
        return report
