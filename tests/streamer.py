"""A stand-in for Yahoo's streamer on loopback: a ``websockets`` server speaking its
protocol (stream.connection), for the tests and the benchmarks.

It takes ``{"subscribe": [...]}`` / ``{"unsubscribe": [...]}`` as Yahoo does, and sends
JSON text frames whose ``message`` is a base64 ``PricingData`` built with yfinance's own
message. On cue it sends any text (malformed frames), replays a recorded session, drops
every connection, or goes away and comes back on the same port. It runs its own event
loop in a thread, so a test drives it with plain calls.
"""

import asyncio
import base64
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from yfinance.pricing_pb2 import PricingData

from rtplot.processes import free_port

RECORDED = Path(__file__).parent / "data" / "yahoo" / "stream-session.jsonl"


def pricing_frame(
    symbol: str,
    price: float,
    time_ms: int,
    day_volume: int = 0,
    last_size: int = 0,
    market_hours: int = 1,
    price_hint: int = 2,
) -> str:
    """A frame as Yahoo sends it, for one trade."""
    data = PricingData(
        id=symbol,
        price=price,
        time=time_ms,
        currency="USD",
        exchange="NMS",
        quote_type=8,
        market_hours=market_hours,
        day_volume=day_volume,
        last_size=last_size,
        price_hint=price_hint,
    )
    return envelope(data.SerializeToString())


def envelope(message: bytes) -> str:
    return orjson.dumps({"type": "pricing", "message": base64.b64encode(message).decode()}).decode()


def retimed(frame: str, time_ms: int) -> str:
    """A recorded frame with its trade moved to ``time_ms`` (recordings are old)."""
    data = PricingData()
    data.ParseFromString(base64.b64decode(orjson.loads(frame)["message"]))
    data.time = time_ms
    return envelope(data.SerializeToString())


class StandInStreamer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"ws://127.0.0.1:{self.port}/?version=2"
        self.received: list[dict[str, Any]] = []  # every message a client sent
        self.subscribed: set[str] = set()  # what the newest connection subscribes to
        self.connects = 0
        self._clients: set[ServerConnection] = set()
        self._server: Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._lock = threading.Lock()

    # -- life -------------------------------------------------------------------------

    def start(self) -> "StandInStreamer":
        self._thread.start()
        self.up()
        return self

    def up(self) -> None:
        """Listen (again) on the port."""
        self._call(self._listen())

    def down(self) -> None:
        """Stop listening and drop every connection: the streamer is gone."""
        self._call(self._close_server())

    def drop(self) -> None:
        """Drop every connection, abruptly (no close frame), and keep listening."""
        self._call(self._abort())

    def stop(self) -> None:
        if self._thread.is_alive():
            self.down()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> "StandInStreamer":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- sending ----------------------------------------------------------------------

    def send(self, frames: Iterable[str]) -> int:
        """Every frame to every connection; how many connections there were."""
        return self._call(self._send(list(frames)))

    def trade(self, symbol: str, price: float, day_volume: int = 0, **fields: Any) -> int:
        time_ms = fields.pop("time_ms", int(time.time() * 1000))
        return self.send([pricing_frame(symbol, price, time_ms, day_volume, **fields)])

    def replay(self, path: Path = RECORDED, at: float | None = None) -> list[str]:
        """A recorded session (JSON lines ``{"after": s, "frame": text}``), its trades
        moved to start at ``at`` (now) and keep their spacing; sent at once. The frames
        sent, in order."""
        start = time.time() if at is None else at
        frames = []
        for line in path.read_text().splitlines():
            if line.strip():
                entry = orjson.loads(line)
                frames.append(retimed(entry["frame"], int((start + entry["after"]) * 1000)))
        self.send(frames)
        return frames

    def trade_steadily(
        self, symbols: list[str], per_second: float, seconds: float, base: float = 100.0
    ) -> "Future[list[tuple[str, int, float]]]":
        """In the background: every symbol trades ``per_second`` times a second for
        ``seconds``, trade k of a symbol at ``base + k`` cents (so a price names its trade),
        day_volume rising by 100 a trade. The future's result: every trade as (symbol, k,
        time.time() when it was sent); a trade sent while nobody listens is lost, as with
        Yahoo."""
        return asyncio.run_coroutine_threadsafe(
            self._trade_steadily(symbols, per_second, seconds, base), self._loop
        )

    async def _trade_steadily(
        self, symbols: list[str], per_second: float, seconds: float, base: float
    ) -> list[tuple[str, int, float]]:
        sent: list[tuple[str, int, float]] = []
        counts = dict.fromkeys(symbols, 0)
        step = 0.02  # a round of sends every 20 ms, the symbols spread over the rounds
        rounds_per_trade = max(1, round(1 / (per_second * step)))
        started = time.monotonic()
        for n in range(int(seconds / step)):
            due = [s for i, s in enumerate(symbols) if (i + n) % rounds_per_trade == 0]
            now = time.time()
            frames = []
            for symbol in due:
                k = counts[symbol] = counts[symbol] + 1
                price = round(base + (k % 10_000) / 100, 2)
                frames.append(pricing_frame(symbol, price, int(now * 1000), 100 * k))
                sent.append((symbol, k, now))
            await self._send(frames)
            await asyncio.sleep(max(0.0, started + (n + 1) * step - time.monotonic()))
        return sent

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- the loop's side ----------------------------------------------------------------

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await serve(self._handle, "127.0.0.1", self.port, compression=None)

    async def _close_server(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=False)
            await self._abort()
            await self._server.wait_closed()
            self._server = None

    async def _abort(self) -> None:
        for ws in list(self._clients):
            ws.transport.abort()
        self._clients.clear()

    async def _send(self, frames: list[str]) -> int:
        clients = list(self._clients)
        for ws in clients:
            for frame in frames:
                try:
                    await ws.send(frame)
                except ConnectionClosed:
                    break
        return len(clients)

    async def _handle(self, ws: ServerConnection) -> None:
        self._clients.add(ws)
        self.connects += 1
        subscribed: set[str] = set()
        try:
            async for text in ws:
                message = orjson.loads(text)
                with self._lock:
                    self.received.append(message)
                subscribed |= set(message.get("subscribe", []))
                subscribed -= set(message.get("unsubscribe", []))
                self.subscribed = set(subscribed)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(ws)
