"""The gateway's per-client bookkeeping, shared by the asyncio and eventlet servers.

Everything here is decided without I/O: who may connect, whether an event is within the
connection's rate, whether a subscription fits the caps, and the metrics that follow.
The servers do the Redis and Socket.IO calls around these decisions.
"""

from typing import Any

from common.messages import error_ack
from common.settings import Settings
from gateway import metrics
from gateway.protocol import RATE_LIMITED, Guard, Subscriptions, token_matches


class ClientBook:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.subscriptions = Subscriptions()
        self.guard = Guard(settings.rate_limit, settings.rate_burst, settings.max_subscriptions)
        self.connected: set[str] = set()

    def admit(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        """A new connection: False (and counted) if its token does not match."""
        if not token_matches(self.settings.auth_token, auth, environ.get("QUERY_STRING", "")):
            metrics.REFUSED.labels("connect", "auth").inc()
            return False
        self.connected.add(sid)
        metrics.CLIENTS.inc()
        return True

    def forget(self, sid: str) -> None:
        if sid in self.connected:
            self.connected.discard(sid)
            metrics.CLIENTS.dec()
        self.guard.forget(sid)
        self.subscriptions.remove_client(sid)
        self._update_gauges()

    def over_limit(self, sid: str, event: str) -> dict[str, Any] | None:
        """Count the event against the connection's rate; the refusal if it is over."""
        metrics.EVENTS_IN.labels(event).inc()
        if self.guard.admit(sid):
            return None
        return self.refuse(event, "rate_limited", RATE_LIMITED)

    def flooding(self, sid: str) -> bool:
        return self.guard.should_disconnect(sid)

    def subscription_refusal(self, sid: str, event: str, symbol: str) -> dict[str, Any] | None:
        if self.subscriptions.holds(sid, symbol):
            return None  # held already: not a new one
        reason = self.guard.too_many_subscriptions(self.subscriptions.held_by(sid))
        return None if reason is None else self.refuse(event, "too_many_subscriptions", reason)

    def joined(self, sid: str, symbol: str) -> None:
        self.subscriptions.add(sid, symbol)
        self._update_gauges()

    def left(self, sid: str, symbol: str) -> None:
        self.subscriptions.remove(sid, symbol)
        self._update_gauges()

    def refuse(self, event: str, reason: str, message: str) -> dict[str, Any]:
        metrics.REFUSED.labels(event, reason).inc()
        return error_ack(message)

    def _update_gauges(self) -> None:
        metrics.SUBSCRIPTIONS.clear()
        for symbol, count in self.subscriptions.counts().items():
            metrics.SUBSCRIPTIONS.labels(symbol).set(count)
