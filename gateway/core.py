"""The gateway's Socket.IO protocol, written once for both servers and free of I/O.

Each handler is a generator, in the manner of h11 and wsproto: it yields the I/O it
needs as steps (``gateway.steps``), is sent each step's result (or has its exception
thrown in), and returns the ack. The asyncio and the eventlet servers drive the same
generators (``gateway.runner``); tests drive them with a script (tests/test_core.py).

The order of a subscription is decided here, once (``_join``): hold the room's updates
for the client, make sure this gateway receives the room, read the snapshot, queue it,
then queue whatever was held, and only then let updates flow straight to the client.
So a subscriber gets its snapshot first and every update after it, whatever happens
in between.

A subscription is to one view of a symbol (common.views; the default is the article's
chart), and each view has rooms of its own. A client holds one room per symbol: joining
another view's room leaves the one it was in, and of two subscribes to a symbol that
overlap, the later wins. A view other than the default one is stamped as watched once
its room is heard (so a renderer asked to render it finds someone to render it for),
and stamped again while any client here holds it.
"""

import logging
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import redis
from engineio import packet as eio_packet

from common.contract.packets import event_packet, figure_of
from common.contract.rooms import Mode, Room, symbol_rooms
from common.contract.snapshots import Snapshot
from common.messages import (
    BARS,
    FIGURE,
    GRAPH_PLOT,
    PING_GRAPH,
    SNAPSHOT,
    SUBSCRIBE,
    UNSUBSCRIBE,
    graph_plot_payload,
    ok_ack,
)
from common.settings import Settings
from gateway import metrics
from gateway.clients import ClientBook
from gateway.requests import (
    BadRequest,
    requested_symbol,
    requested_updates,
    requested_view,
    subscription_room,
)
from gateway.steps import (
    Disconnect,
    DropSlowConsumers,
    Enter,
    Forget,
    Hold,
    Leave,
    Listen,
    ReadSnapshot,
    Release,
    Send,
    Sleep,
    Step,
    TakeHeld,
    Watch,
    WatchView,
)
from gateway.watching import refresh_every, too_many

log = logging.getLogger("rtplot.gateway")

T = TypeVar("T")
Steps = Generator[Step, Any, T]
Ack = dict[str, Any]
Handler = Callable[..., Steps[Any]]

UNAVAILABLE = "temporarily unavailable, try again"
SLOW_CONSUMER_CHECK = 0.5  # seconds between looks at the clients' send queues
SESSION_CHECK = 1.0  # seconds between looks for sessions whose token expired


def message(event: str, payload_json: bytes) -> eio_packet.Packet:
    """An event whose payload is JSON already, as the Engine.IO packet that carries it:
    a stored snapshot goes out as stored, not parsed and encoded again per client."""
    return eio_packet.Packet(eio_packet.MESSAGE, event_packet(event, payload_json).decode())


def snapshot_packets(room: Room, stored: Snapshot) -> tuple[eio_packet.Packet, ...]:
    """What a client subscribing to ``room`` is sent first: the stored figure as the
    room's clients expect it, then, to a page, the deltas since it."""
    assert stored.payload is not None
    if room.mode is Mode.ARTICLE:
        return (message(GRAPH_PLOT, graph_plot_payload(figure_of(stored.payload))),)
    if room.mode is Mode.DELTA and stored.catchup is not None:
        return message(FIGURE, stored.payload), message(BARS, stored.catchup)
    return (message(FIGURE, stored.payload),)


class GatewayCore:
    def __init__(self, settings: Settings, clients: ClientBook | None = None) -> None:
        self.settings = settings
        self.clients = clients or ClientBook(settings)

    def handlers(self) -> dict[str, Handler]:
        """Socket.IO event -> handler; "*" takes any other event (event, sid, data)."""
        return {
            SUBSCRIBE: self.subscribe,
            UNSUBSCRIBE: self.unsubscribe,
            SNAPSHOT: self.snapshot,
            PING_GRAPH: self.ping_graph,
            "disconnect": self.disconnect,
            "*": self.unknown,
        }

    # -- connections --------------------------------------------------------------------

    def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        """Whether to admit a new connection (no I/O is needed to decide)."""
        return self.clients.admit(sid, environ, auth)

    def disconnect(self, sid: str, reason: Any = None) -> Steps[None]:
        self.clients.forget(sid)
        yield Forget(sid)

    # -- events -------------------------------------------------------------------------

    def subscribe(self, sid: str, data: Any = None) -> Steps[Ack]:
        if refused := (yield from self._over_limit(sid, SUBSCRIBE)):
            return refused
        try:
            symbol = requested_symbol(data)
            room = subscription_room(symbol, requested_updates(data), requested_view(data))
        except BadRequest as exc:
            return self.clients.refuse(SUBSCRIBE, "invalid", str(exc))
        return (yield from self._join(sid, SUBSCRIBE, symbol, room))

    def ping_graph(self, sid: str, data: Any = None) -> Steps[Ack]:
        """The article's client: the same subscription, with the figure as a string."""
        if refused := (yield from self._over_limit(sid, PING_GRAPH)):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return self.clients.refuse(PING_GRAPH, "invalid", str(exc))
        return (yield from self._join(sid, PING_GRAPH, symbol, Room(symbol, Mode.ARTICLE)))

    def unsubscribe(self, sid: str, data: Any = None) -> Steps[Ack]:
        if refused := (yield from self._over_limit(sid, UNSUBSCRIBE)):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return self.clients.refuse(UNSUBSCRIBE, "invalid", str(exc))
        yield Leave(sid, self._rooms_held(sid, symbol))
        self.clients.end_join(sid, symbol)
        self.clients.left(sid, symbol)
        return ok_ack(symbol)

    def snapshot(self, sid: str, data: Any = None) -> Steps[Ack]:
        """A client's request for the current figure again (after a seq gap)."""
        if refused := (yield from self._over_limit(sid, SNAPSHOT)):
            return refused
        try:
            symbol = requested_symbol(data)
            # The view the client holds (the default one if none).
            room = self.clients.subscriptions.room_of(sid, symbol) or Room(symbol)
            stored = yield ReadSnapshot(symbol, room.view)
        except BadRequest as exc:
            return self.clients.refuse(SNAPSHOT, "invalid", str(exc))
        except redis.RedisError:
            return self.clients.refuse(SNAPSHOT, "unavailable", UNAVAILABLE)
        if stored.payload is None:
            return self.clients.refuse(SNAPSHOT, "no_snapshot", f"no snapshot of {symbol} yet")
        yield Send(sid, snapshot_packets(room, stored))
        metrics.SNAPSHOTS_OUT.inc()
        return ok_ack(symbol)

    def unknown(self, event: str, sid: str, data: Any = None) -> Steps[Ack]:
        if refused := (yield from self._over_limit(sid, "unknown")):
            return refused
        return self.clients.refuse("unknown", "unknown_event", "unknown event")

    # -- the parts ----------------------------------------------------------------------

    def _over_limit(self, sid: str, event: str) -> Steps[Ack | None]:
        """Count the event against the connection's rate: the refusal if it is over,
        and a connection still sending after many refusals in a row is closed."""
        refused = self.clients.over_limit(sid, event)
        if refused is not None and self.clients.flooding(sid):
            log.warning("disconnecting a flooding client", extra={"sid": sid})
            yield Disconnect(sid)
        return refused

    def _join(self, sid: str, event: str, symbol: str, room: Room) -> Steps[Ack]:
        if refused := self.clients.subscription_refusal(sid, event, symbol):
            return refused
        view = room.view
        token = self.clients.begin_join(sid, symbol, room)
        yield Hold(sid, room)
        try:
            watched = yield Watch(symbol)
            if watched:
                yield Listen(room)
                if view:
                    yield WatchView(symbol, view)
                stored = yield ReadSnapshot(symbol, view)
        except (redis.RedisError, TimeoutError) as exc:
            log.warning("cannot subscribe", extra={"symbol": symbol, "error": str(exc)})
            self.clients.end_join(sid, symbol, token)
            yield from self._flush(Release(sid, room))
            return self.clients.refuse(event, "unavailable", UNAVAILABLE)
        if not watched:
            self.clients.end_join(sid, symbol, token)
            yield from self._flush(Release(sid, room))
            return self.clients.refuse(event, "too_many_symbols", too_many(self.settings))
        newest = self.clients.newest_join(sid, symbol)
        if newest is None or newest[0] != token:
            # It unsubscribed, or subscribed again (another view, say) while this waited:
            # the later request wins.
            if newest is None or newest[1] != room:
                yield Leave(sid, (room,))
            return ok_ack(symbol)
        # One room per symbol and client: a switch of view or update mode leaves the old.
        yield Leave(sid, tuple(other for other in self._rooms_held(sid, symbol) if other != room))
        yield Enter(sid, room)
        if stored.payload is not None:
            yield Send(sid, snapshot_packets(room, stored))
            metrics.SNAPSHOTS_OUT.inc()
        if not (yield from self._flush(TakeHeld(sid, room))):
            self.clients.end_join(sid, symbol, token)
            yield Leave(sid, (room,))  # it unsubscribed while this join waited
            return ok_ack(symbol)
        self.clients.end_join(sid, symbol, token)
        self.clients.joined(sid, symbol, room)
        return ok_ack(symbol)

    def _rooms_held(self, sid: str, symbol: str) -> tuple[Room, ...]:
        """Every room of the symbol the client may be in or joining: the default view's,
        and the one it holds or joins of another view."""
        rooms = dict.fromkeys(symbol_rooms(symbol))
        rooms.update(dict.fromkeys(sorted(self.clients.rooms_of(sid, symbol), key=str)))
        return tuple(rooms)

    def _flush(self, take: TakeHeld | Release) -> Steps[bool]:
        """Send what was held for the client, in order, until nothing is left and it is
        a member again; False if it had left the room meanwhile."""
        while held := (yield take):
            yield Send(take.sid, tuple(held))
        return held is not None

    # -- background work ----------------------------------------------------------------

    def background(self) -> tuple[Callable[[], Steps[None]], ...]:
        """The loops a server runs for as long as it serves."""
        return self.refresh_watched, self.drop_slow_consumers, self.end_sessions

    def refresh_watched(self) -> Steps[None]:
        """Keep re-stamping the symbols and views this gateway's clients watch, well
        inside ``RTPLOT_WATCH_TTL``, so the fetcher keeps tracking them and the renderers
        keep listing the views."""
        while True:
            yield Sleep(refresh_every(self.settings))
            stamps: list[Watch | WatchView] = [
                Watch(symbol) for symbol in self.clients.subscriptions.symbols()
            ]
            stamps += [
                WatchView(symbol, view, notify=False)
                for symbol, view in self.clients.subscriptions.views()
            ]
            for stamp in stamps:
                try:
                    yield stamp
                except redis.RedisError as exc:
                    log.warning(
                        "cannot re-stamp watched symbol",
                        extra={"symbol": stamp.symbol, "error": str(exc)},
                    )
                    break

    def end_sessions(self) -> Steps[None]:
        """A connection whose token expired is closed within a second or so of ``exp``;
        the client reconnects with a new token."""
        while True:
            yield Sleep(SESSION_CHECK)
            for sid in self.clients.ended(time.time()):
                log.info("session ended: its token expired", extra={"sid": sid})
                metrics.REFUSED.labels("session", "expired").inc()
                yield Disconnect(sid)

    def drop_slow_consumers(self) -> Steps[None]:
        """A client that stopped reading would pin every update it has not taken."""
        while True:
            yield Sleep(SLOW_CONSUMER_CHECK)
            for queued in (yield DropSlowConsumers(self.settings.max_queued)):
                log.warning("dropped a client that stopped reading", extra={"queued": queued})
                metrics.REFUSED.labels("delivery", "slow_consumer").inc()
