"""The connection to Yahoo's streamer: connect, subscribe, read frames, and connect
again whatever happens, for as long as the service is active.

The protocol is yfinance's (``yfinance/live.py``): a WebSocket to the streamer, a text
``{"subscribe": [symbols]}`` that is sent again every 15 s as a heartbeat, ``{"unsubscribe":
[symbols]}``, and JSON text frames back (stream.frames). It is spoken here with
``websockets`` rather than through ``yfinance.AsyncWebSocket``, because that client's
recovery is what a service cannot have: after an error ``listen()`` calls ``_connect()``,
which does nothing while ``_ws`` is still set, so a client whose server went away spins
on the dead socket (92 % of a core for an hour, seen here); its heartbeat task ends at
the first error and is never started again; and it prints to stdout. What is taken from
yfinance is its message (stream.internals), so frames decode as yfinance decodes them.

Reconnecting: at most ``FAST_CAP`` (1 s) between tries for the first ``FAST_FOR`` (60 s)
of an outage, so a streamer back after a short drop is streaming again within a second
or so; then doubling to ``SLOW_MAX``. Every connection subscribes to every symbol
wanted. A connection that brings no frame for ``idle_seconds`` is replaced: Yahoo is
reported to stop sending on sockets idle for 20-25 minutes without closing them.
"""

import asyncio
import logging
import random
import time
from collections.abc import Callable
from contextlib import suppress

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

log = logging.getLogger("rtplot.stream")

HEARTBEAT = 15.0  # seconds between subscribe messages, as yfinance sends them
IDLE_SECONDS = 90.0  # no frame for this long: a new connection
OPEN_TIMEOUT = 10.0
FIRST_WAIT = 0.1
FAST_FOR = 60.0
FAST_CAP = 1.0
SLOW_MAX = 30.0


class Backoff:
    """The wait before the next try: from FIRST_WAIT doubling, capped at FAST_CAP for
    the first FAST_FOR seconds of an outage and at SLOW_MAX after."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.since: float | None = None  # when the outage began
        self.tries = 0

    def next(self) -> float:
        now = self.clock()
        if self.since is None:
            self.since = now
        cap = FAST_CAP if now - self.since < FAST_FOR else SLOW_MAX
        wait = min(FIRST_WAIT * 2.0 ** min(self.tries, 30), cap)
        self.tries += 1
        return wait * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.since, self.tries = None, 0


class Connection:
    """``run`` keeps a connection to ``url`` subscribed to ``wanted`` and hands every
    text frame to ``on_frame``; ``want`` changes the symbols while it runs."""

    def __init__(
        self,
        url: str,
        on_frame: Callable[[str | bytes], None],
        on_state: Callable[[str], None] = lambda state: None,
        idle_seconds: float = IDLE_SECONDS,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self.url = url
        self.on_frame = on_frame
        self.on_state = on_state  # "connected", "disconnected", "reconnecting"
        self.idle_seconds = idle_seconds
        self.heartbeat = heartbeat
        self.wanted: set[str] = set()
        self.subscribed: set[str] = set()
        self.connected = False
        self.backoff = Backoff()
        self._changed = asyncio.Event()

    def want(self, symbols: set[str]) -> None:
        if symbols != self.wanted:
            self.wanted = set(symbols)
            self._changed.set()

    async def run(self) -> None:
        first = True
        while True:
            if not first:
                self.on_state("reconnecting")
                await asyncio.sleep(self.backoff.next())
            first = False
            try:
                async with connect(
                    self.url, open_timeout=OPEN_TIMEOUT, max_size=2**20, compression=None
                ) as ws:
                    await self._session(ws)
            except (OSError, WebSocketException, TimeoutError) as exc:
                self._lost(exc)
            finally:
                self.connected = False

    def _lost(self, exc: BaseException) -> None:
        if self.connected or self.backoff.tries == 0:  # once per outage, not per try
            log.warning(
                "stream connection lost; connecting again",
                extra={"url": self.url, "error": repr(exc)},
            )
        self.on_state("disconnected")

    async def _session(self, ws: ClientConnection) -> None:
        self.subscribed = set()
        await self._subscribe(ws)
        self.connected = True
        self.backoff.reset()
        self.on_state("connected")
        log.info("streaming", extra={"url": self.url, "symbols": len(self.wanted)})
        keeper = asyncio.create_task(self._keep_subscribed(ws))
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(ws.recv(), self.idle_seconds)
                except TimeoutError:
                    log.warning(
                        "no frame from the streamer; connecting again",
                        extra={"seconds": self.idle_seconds},
                    )
                    return
                self.on_frame(frame)
        finally:
            keeper.cancel()

    async def _keep_subscribed(self, ws: ClientConnection) -> None:
        """The heartbeat, and the symbols followed as they change. A send that fails
        ends it: the reading loop sees the same connection closed."""
        while True:
            self._changed.clear()
            with suppress(TimeoutError):  # the heartbeat's time
                await asyncio.wait_for(self._changed.wait(), self.heartbeat)
            try:
                await self._subscribe(ws)
            except (OSError, WebSocketException):
                return

    async def _subscribe(self, ws: ClientConnection) -> None:
        gone = self.subscribed - self.wanted
        if gone:
            await ws.send(orjson.dumps({"unsubscribe": sorted(gone)}).decode())
        if self.wanted:
            await ws.send(orjson.dumps({"subscribe": sorted(self.wanted)}).decode())
        self.subscribed = set(self.wanted)
