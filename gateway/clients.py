"""The gateway's per-client bookkeeping: who is connected, what each watches, and the
limits on what they may do, with the metrics that follow. Decided without I/O."""

import heapq
import logging
import math
from typing import Any

from common.contract.rooms import Room
from common.messages import error_ack
from common.settings import Settings, SettingsError
from gateway import metrics
from gateway.auth import Grant, JwtPolicy, Refused, offered_token, token_matches
from gateway.limits import RATE_LIMITED, Guard

log = logging.getLogger("rtplot.gateway")


class Subscriptions:
    """Which symbols, and views of them, each client of this gateway watches (rooms do
    the delivery; this is for the caps, re-stamping watched symbols and views, and
    metrics)."""

    def __init__(self) -> None:
        self.by_client: dict[str, dict[str, Room]] = {}  # sid -> symbol -> its room
        self.viewers: dict[str, int] = {}  # symbol -> clients watching it here
        self.view_viewers: dict[tuple[str, str], int] = {}  # (symbol, view key) -> clients

    def add(self, sid: str, symbol: str, room: Room) -> None:
        held = self.by_client.setdefault(sid, {})
        if symbol not in held:
            self.viewers[symbol] = self.viewers.get(symbol, 0) + 1
        else:
            self._count_view(symbol, held[symbol], -1)
        held[symbol] = room
        self._count_view(symbol, room, +1)

    def remove(self, sid: str, symbol: str) -> None:
        held = self.by_client.get(sid)
        if held is None or symbol not in held:
            return
        self._count_view(symbol, held.pop(symbol), -1)
        if not held:
            del self.by_client[sid]
        self.viewers[symbol] -= 1
        if not self.viewers[symbol]:
            del self.viewers[symbol]

    def _count_view(self, symbol: str, room: Room, by: int) -> None:
        key = room.view
        if not key:
            return  # the default view is always rendered: nothing to stamp
        count = self.view_viewers.get((symbol, key), 0) + by
        if count:
            self.view_viewers[(symbol, key)] = count
        else:
            del self.view_viewers[(symbol, key)]

    def views(self) -> list[tuple[str, str]]:
        """(symbol, view key) of every view other than the default one watched here."""
        return list(self.view_viewers)

    def remove_client(self, sid: str) -> list[str]:
        symbols = list(self.by_client.get(sid, ()))
        for symbol in symbols:
            self.remove(sid, symbol)
        return symbols

    def holds(self, sid: str, symbol: str) -> bool:
        return symbol in self.by_client.get(sid, ())

    def room_of(self, sid: str, symbol: str) -> Room | None:
        return self.by_client.get(sid, {}).get(symbol)

    def held_by(self, sid: str) -> int:
        return len(self.by_client.get(sid, ()))

    def symbols(self) -> list[str]:
        return list(self.viewers)

    def counts(self) -> dict[str, int]:
        return dict(self.viewers)


class ClientBook:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.subscriptions = Subscriptions()
        self.guard = Guard(settings.rate_limit, settings.rate_burst, settings.max_subscriptions)
        self.connected: set[str] = set()
        self.grants: dict[str, Grant] = {}
        self.endings: list[tuple[float, str]] = []  # (when a session ends, sid): a heap
        self.jwt = _jwt_policy(settings)
        # sid -> symbol -> (its newest join still under way, the room it joins): a newer
        # subscribe to a symbol (another view) wins over one still joining.
        self.joining: dict[str, dict[str, tuple[int, Room]]] = {}
        self._joins = 0

    def admit(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        """A new connection: False (and counted) if its token is refused."""
        query = environ.get("QUERY_STRING", "")
        try:
            if self.jwt is not None:
                grant = self.jwt.grant(offered_token(auth, query))
            elif token_matches(self.settings.auth_token, auth, query):
                grant = Grant()
            else:
                raise Refused("no token, or not the shared one")
        except Refused as exc:
            metrics.REFUSED.labels("connect", "auth").inc()
            log.info("connection refused", extra={"reason": str(exc)})
            return False
        self.connected.add(sid)
        self.grants[sid] = grant
        if math.isfinite(grant.expires):
            heapq.heappush(self.endings, (grant.expires, sid))
        metrics.CLIENTS.inc()
        return True

    def ended(self, now: float) -> list[str]:
        """Connections whose session has ended (their token expired) by ``now``."""
        gone = []
        while self.endings and self.endings[0][0] <= now:
            _, sid = heapq.heappop(self.endings)
            if sid in self.connected:
                gone.append(sid)
        return gone

    def begin_join(self, sid: str, symbol: str, room: Room) -> int:
        """A join of ``room`` starts; the token ``newest_join`` compares with."""
        self._joins += 1
        self.joining.setdefault(sid, {})[symbol] = (self._joins, room)
        return self._joins

    def newest_join(self, sid: str, symbol: str) -> tuple[int, Room] | None:
        """The newest join of the symbol still under way: (its token, its room)."""
        return self.joining.get(sid, {}).get(symbol)

    def end_join(self, sid: str, symbol: str, token: int | None = None) -> None:
        """The join with ``token`` (None: any) is over."""
        pending = self.joining.get(sid, {})
        if symbol in pending and (token is None or pending[symbol][0] == token):
            del pending[symbol]
            if not pending:
                del self.joining[sid]

    def rooms_of(self, sid: str, symbol: str) -> set[Room]:
        """The rooms the client is in, or joining, for the symbol."""
        rooms = {self.subscriptions.room_of(sid, symbol)}
        if (newest := self.newest_join(sid, symbol)) is not None:
            rooms.add(newest[1])
        return {room for room in rooms if room is not None}

    def forget(self, sid: str) -> None:
        self.joining.pop(sid, None)
        self.grants.pop(sid, None)
        if sid in self.connected:
            self.connected.discard(sid)
            metrics.CLIENTS.dec()
        self.guard.forget(sid)
        for symbol in self.subscriptions.remove_client(sid):
            self._update_gauge(symbol)

    def over_limit(self, sid: str, event: str) -> dict[str, Any] | None:
        """Count the event against the connection's rate; the refusal if it is over."""
        metrics.EVENTS_IN.labels(event).inc()
        if self.guard.admit(sid):
            return None
        return self.refuse(event, "rate_limited", RATE_LIMITED)

    def flooding(self, sid: str) -> bool:
        return self.guard.should_disconnect(sid)

    def subscription_refusal(self, sid: str, event: str, symbol: str) -> dict[str, Any] | None:
        if not self.grants.get(sid, Grant()).allows(symbol):
            return self.refuse(event, "forbidden", f"your token does not allow {symbol}")
        if self.subscriptions.holds(sid, symbol):
            return None  # held already: not a new one
        reason = self.guard.too_many_subscriptions(self.subscriptions.held_by(sid))
        return None if reason is None else self.refuse(event, "too_many_subscriptions", reason)

    def joined(self, sid: str, symbol: str, room: Room) -> None:
        self.subscriptions.add(sid, symbol, room)
        self._update_gauge(symbol)

    def left(self, sid: str, symbol: str) -> None:
        self.subscriptions.remove(sid, symbol)
        self._update_gauge(symbol)

    def refuse(self, event: str, reason: str, message: str) -> dict[str, Any]:
        metrics.REFUSED.labels(event, reason).inc()
        return error_ack(message)

    def _update_gauge(self, symbol: str) -> None:
        count = self.subscriptions.viewers.get(symbol, 0)
        if count:
            metrics.SUBSCRIPTIONS.labels(symbol).set(count)
        else:
            metrics.SUBSCRIPTIONS.remove(symbol)  # a symbol nobody watches has no series


def _jwt_policy(settings: Settings) -> JwtPolicy | None:
    if settings.jwt_key is None:
        return None
    try:
        return JwtPolicy(settings.jwt_key, settings.jwt_audience, settings.jwt_issuer)
    except ValueError as exc:  # said at start, not at the first client
        raise SettingsError(f"RTPLOT_JWT_KEY: {exc}") from None
