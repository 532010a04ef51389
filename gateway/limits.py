"""Per-connection limits and the python-socketio options that enforce the settings:
an event rate (a token bucket), flood detection, a subscriptions cap, allowed origins
and the largest frame. Decided without I/O; clocks are injectable for tests."""

import time
from collections.abc import Callable
from typing import Any

from common.messages import OrjsonCodec
from common.settings import Settings

RATE_LIMITED = "rate limited: slow down"
# A client still sending after this many refusals in a row is hostile or broken.
DISCONNECT_AFTER_REFUSALS = 100


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


def server_options(settings: Settings, manager: Any) -> dict[str, Any]:
    """python-socketio server options: the client manager, orjson, and the settings'
    limits."""
    return {
        "client_manager": manager,
        "json": OrjsonCodec,
        "cors_allowed_origins": origin_policy(settings.allowed_origins),
        "max_http_buffer_size": settings.max_message_bytes,
        # A client silent for ping_interval + ping_timeout (20 s) is dropped.
        "ping_interval": settings.ping_interval,
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
