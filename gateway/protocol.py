"""The gateway's protocol logic, free of I/O, shared by the asyncio and eventlet servers."""

import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from common.messages import UPDATE_MODES, legacy_room
from common.settings import Settings
from common.symbols import InvalidSymbol, normalize_symbol

UNAVAILABLE = "temporarily unavailable, try again"


class BadRequest(ValueError):
    """A request refused with this message in its ack; the connection stays usable."""


def requested_symbol(data: Any) -> str:
    """The symbol a ``subscribe``/``unsubscribe``/``ping_graph`` payload names.

    Takes ``{"symbol": "AAPL"}`` (or, leniently, the bare string ``"AAPL"``).
    """
    if isinstance(data, dict):
        if "symbol" not in data:
            raise BadRequest('payload must be {"symbol": "<SYMBOL>"}')
        raw = data["symbol"]
    elif isinstance(data, str):
        raw = data
    else:
        raise BadRequest('payload must be {"symbol": "<SYMBOL>"}')
    try:
        return normalize_symbol(raw)
    except InvalidSymbol as exc:
        raise BadRequest(str(exc)) from None


def requested_updates(data: Any) -> str:
    """The update stream a ``subscribe`` asks for: "figure" (default) or "delta"."""
    mode = data.get("updates", "figure") if isinstance(data, dict) else "figure"
    if mode not in UPDATE_MODES:
        raise BadRequest('"updates" must be "figure" or "delta"')
    return str(mode)


def rooms_to_leave(symbol: str, keep: str | None = None) -> list[str]:
    """Every room of a symbol but ``keep``: a subscription lives in one room at a time."""
    rooms = [room(symbol) for room in UPDATE_MODES.values()] + [legacy_room(symbol)]
    return [room for room in rooms if room != keep]


def event_packet(event: str, payload_json: bytes) -> eio_packet.Packet:
    """A Socket.IO event on the default namespace whose payload is JSON already, as the
    Engine.IO packet that carries it. A stored snapshot goes out as stored: ``emit``
    would parse it and encode it again, once per subscriber."""
    text = payload_json.decode()
    return eio_packet.Packet(eio_packet.MESSAGE, f'{sio_packet.EVENT}["{event}",{text}]')


def figure_string(snapshot_payload: bytes) -> str:
    """The article's ``graph_plot`` payload: the figure alone, as a JSON string."""
    figure = orjson.loads(snapshot_payload)["figure"]
    return orjson.dumps(figure).decode()


class Subscriptions:
    """Which of this gateway's clients watch which symbol (rooms do the delivery;
    this is for re-stamping watched symbols and for metrics)."""

    def __init__(self) -> None:
        self.by_symbol: dict[str, set[str]] = {}

    def add(self, sid: str, symbol: str) -> None:
        self.by_symbol.setdefault(symbol, set()).add(sid)

    def remove(self, sid: str, symbol: str) -> None:
        sids = self.by_symbol.get(symbol)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self.by_symbol[symbol]

    def remove_client(self, sid: str) -> None:
        for symbol in [s for s, sids in self.by_symbol.items() if sid in sids]:
            self.remove(sid, symbol)

    def holds(self, sid: str, symbol: str) -> bool:
        return sid in self.by_symbol.get(symbol, ())

    def held_by(self, sid: str) -> int:
        return sum(sid in sids for sids in self.by_symbol.values())

    def symbols(self) -> list[str]:
        return list(self.by_symbol)

    def counts(self) -> dict[str, int]:
        return {symbol: len(sids) for symbol, sids in self.by_symbol.items()}


class TokenBucket:
    """``rate`` events a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


RATE_LIMITED = "rate limited: slow down"
# A client still sending after this many refusals in a row is hostile or broken.
DISCONNECT_AFTER_REFUSALS = 100


class Guard:
    """Per-connection limits: an event rate, and subscriptions held at once."""

    def __init__(
        self,
        rate: float,
        burst: float,
        max_subscriptions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.max_subscriptions = max_subscriptions
        self.buckets: dict[str, TokenBucket] = {}
        self.refusals: dict[str, int] = {}

    def admit(self, sid: str) -> bool:
        bucket = self.buckets.get(sid)
        if bucket is None:
            bucket = self.buckets[sid] = TokenBucket(self.rate, self.burst, self.clock)
        if bucket.take():
            self.refusals.pop(sid, None)
            return True
        self.refusals[sid] = self.refusals.get(sid, 0) + 1
        return False

    def should_disconnect(self, sid: str) -> bool:
        return self.refusals.get(sid, 0) >= DISCONNECT_AFTER_REFUSALS

    def forget(self, sid: str) -> None:
        self.buckets.pop(sid, None)
        self.refusals.pop(sid, None)

    def too_many_subscriptions(self, held: int) -> str | None:
        if held >= self.max_subscriptions:
            return f"too many subscriptions on one connection (max {self.max_subscriptions})"
        return None


def token_matches(expected: str | None, auth: Any, query_string: str) -> bool:
    """No token configured admits everyone; otherwise the client's ``auth`` payload
    ``{"token": ...}`` or its ``?token=`` query parameter must match exactly."""
    if not expected:
        return True
    offered = auth.get("token") if isinstance(auth, dict) else None
    if offered is None:
        offered = parse_qs(query_string).get("token", [None])[0]
    return isinstance(offered, str) and hmac.compare_digest(offered.encode(), expected.encode())


def server_options(settings: Settings) -> dict[str, Any]:
    """python-socketio server options that enforce the gateway's settings."""
    return {
        "cors_allowed_origins": origin_policy(settings.allowed_origins),
        "max_http_buffer_size": settings.max_message_bytes,
    }


def origin_policy(allowed: tuple[str, ...]) -> Any:
    """The page's own origin, always (it is served by this gateway, maybe behind a proxy),
    plus the configured ones; "*" admits any. Clients that send no Origin (not browsers)
    are not subject to it."""
    if "*" in allowed:
        return "*"

    def admits(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return True
        origin = origin.rstrip("/")
        return origin in allowed or origin in _own_origins(environ)

    return admits


def _own_origins(environ: dict[str, Any]) -> set[str]:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST", "")
    forwarded_scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
    return {f"{scheme}://{host}", f"{forwarded_scheme}://{forwarded_host}"}


SLOW_CONSUMER_CHECK = 0.5  # seconds between looks at the clients' send queues


def overfull(sockets: dict[str, Any], limit: int) -> list[Any]:
    """Engine.IO sockets whose send queue holds more than ``limit`` packets: clients
    that stopped reading. Left alone, each would pin every update it has not taken."""
    return [
        sock for sock in list(sockets.values()) if not sock.closed and sock.queue.qsize() > limit
    ]


def drain(queue: Any) -> None:
    """Drop what a dropped client never read, so its memory goes now."""
    while not queue.empty():
        queue.get_nowait()
        queue.task_done()
