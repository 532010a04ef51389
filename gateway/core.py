"""The gateway's Socket.IO protocol, written once for both servers and free of I/O.

Each handler is a generator, in the manner of h11 and wsproto: it asks for the I/O it
needs as typed steps (``gateway.steps``: ``yield from ask(step)`` gives back the step's
result), has ``StepFailed`` thrown in when one fails, and returns the ack. The asyncio
and the eventlet servers drive the same generators (``gateway.runner``); tests drive
them with a script (tests/test_core.py).

The order of a subscription is decided here, once (``_join``): hold the room's updates
for the client, make sure this gateway receives the room, read the snapshot, queue it,
then queue whatever was held, and only then let updates flow straight to the client.
So a subscriber gets its snapshot first and every update after it, whatever happens
in between. A delta subscriber that says what it holds (``since``: a seq and epoch,
after a reconnect) is sent, instead of the snapshot, the one ``bars`` event from that
seq to the newest render when the view's delta log reaches back to it
(common.contract.resume), and the ack says ``resumed``.

A subscription is to one view of a symbol (common.views; the default is the article's
chart), and each view has rooms of its own. A client holds one room per symbol: joining
another view's room leaves the one it was in, and of two subscribes to a symbol that
overlap, the later wins. A view other than the default one is stamped as watched once
its room is heard (so a renderer asked to render it finds someone to render it for),
and stamped again while any client here holds it.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from common.contract.packets import event_packet, figure_of
from common.contract.resume import Resume
from common.contract.rooms import Mode, Room, symbol_rooms
from common.contract.snapshots import Snapshot
from common.contract.watching import ViewStamp
from common.messages import (
    BARS,
    FIGURE,
    GRAPH_PLOT,
    HISTORY,
    PING_GRAPH,
    SNAPSHOT,
    SUBSCRIBE,
    UNSUBSCRIBE,
    error_ack,
    graph_plot_payload,
    ok_ack,
)
from common.settings import Settings
from gateway import metrics
from gateway.auth import Admission
from gateway.limits import RATE_LIMITED, Guard
from gateway.membership import Membership
from gateway.requests import (
    BadRequest,
    Since,
    requested_past,
    requested_since,
    requested_symbol,
    requested_updates,
    requested_view,
    subscription_room,
)
from gateway.sessions import Sessions
from gateway.steps import (
    Disconnect,
    DropSlowConsumers,
    Listen,
    ReadPast,
    ReadResume,
    ReadSnapshot,
    Send,
    Sleep,
    StepFailed,
    Steps,
    Watch,
    WatchView,
    ask,
)
from gateway.watching import Watching

log = logging.getLogger("rtplot.gateway")

Ack = dict[str, Any]
Handler = Callable[..., Steps[Any]]

UNAVAILABLE = "temporarily unavailable, try again"
SLOW_CONSUMER_CHECK = 0.5  # seconds between looks at the clients' send queues
SESSION_CHECK = 1.0  # seconds between looks for sessions whose token expired


def snapshot_packets(room: Room, stored: Snapshot) -> tuple[bytes, ...]:
    """What a client subscribing to ``room`` is sent first: the stored figure as the
    room's clients expect it, then, to a page, the deltas since it. A stored snapshot
    goes out as stored, not parsed and encoded again per client."""
    assert stored.payload is not None
    if room.mode is Mode.ARTICLE:
        return (event_packet(GRAPH_PLOT, graph_plot_payload(figure_of(stored.payload))),)
    if room.mode is Mode.DELTA and stored.catchup is not None:
        return event_packet(FIGURE, stored.payload), event_packet(BARS, stored.catchup)
    return (event_packet(FIGURE, stored.payload),)


def refuse(event: str, reason: str, message: str) -> Ack:
    metrics.REFUSED.labels(event, reason).inc()
    return error_ack(message)


class GatewayCore:
    def __init__(self, settings: Settings, membership: Membership | None = None) -> None:
        self.settings = settings
        self.membership = membership or Membership()
        self.admission = Admission(settings)
        self.sessions = Sessions()
        self.guard = Guard(settings.rate_limit, settings.rate_burst, settings.max_subscriptions)
        self.watching = Watching(settings, self.membership)
        self.draining = False  # told to stop: new connections go to another gateway

    def handlers(self) -> dict[str, Handler]:
        """Socket.IO event -> handler; "*" takes any other event (event, sid, data)."""
        return {
            SUBSCRIBE: self.subscribe,
            UNSUBSCRIBE: self.unsubscribe,
            SNAPSHOT: self.snapshot,
            PING_GRAPH: self.ping_graph,
            HISTORY: self.history,
            "disconnect": self.disconnect,
            "*": self.unknown,
        }

    # -- connections --------------------------------------------------------------------

    def connect(self, sid: str, eio_sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        """Whether to admit a new connection (no I/O is needed to decide)."""
        if self.draining:
            return False
        grant = self.admission.grant(environ, auth)
        if grant is None:
            return False
        self.sessions.open(sid, grant)
        self.membership.connected(sid, eio_sid)
        return True

    def disconnect(self, sid: str, reason: Any = None) -> Steps[None]:
        self.sessions.close(sid)
        self.guard.forget(sid)
        self.membership.forget(sid)
        yield from ()  # a handler as the others are, with no I/O to ask for

    # -- events -------------------------------------------------------------------------

    def subscribe(self, sid: str, data: Any = None) -> Steps[Ack]:
        if refused := (yield from self._over_limit(sid, SUBSCRIBE)):
            return refused
        try:
            symbol = requested_symbol(data)
            room = subscription_room(symbol, requested_updates(data), requested_view(data))
            since = requested_since(data)
        except BadRequest as exc:
            return refuse(SUBSCRIBE, "invalid", str(exc))
        return (yield from self._join(sid, SUBSCRIBE, room, since))

    def ping_graph(self, sid: str, data: Any = None) -> Steps[Ack]:
        """The article's client: the same subscription, with the figure as a string."""
        if refused := (yield from self._over_limit(sid, PING_GRAPH)):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return refuse(PING_GRAPH, "invalid", str(exc))
        return (yield from self._join(sid, PING_GRAPH, Room(symbol, Mode.ARTICLE)))

    def unsubscribe(self, sid: str, data: Any = None) -> Steps[Ack]:
        if refused := (yield from self._over_limit(sid, UNSUBSCRIBE)):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return refuse(UNSUBSCRIBE, "invalid", str(exc))
        self._leave(sid, self._rooms_held(sid, symbol))
        self.membership.end_join(sid, symbol)
        return ok_ack(symbol)

    def snapshot(self, sid: str, data: Any = None) -> Steps[Ack]:
        """A client's request for the current figure again (after a seq gap)."""
        if refused := (yield from self._over_limit(sid, SNAPSHOT)):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return refuse(SNAPSHOT, "invalid", str(exc))
        # The view the client holds (the default one if none).
        room = self.membership.room_of(sid, symbol) or Room(symbol)
        try:
            stored = yield from ask(ReadSnapshot(symbol, room.view))
        except StepFailed:
            return refuse(SNAPSHOT, "unavailable", UNAVAILABLE)
        if stored.payload is None:
            return refuse(SNAPSHOT, "no_snapshot", f"no snapshot of {symbol} yet")
        yield from ask(Send(sid, snapshot_packets(room, stored)))
        metrics.SNAPSHOTS_OUT.inc()
        return ok_ack(symbol)

    def history(self, sid: str, data: Any = None) -> Steps[Ack]:
        """A view's bars before a time, for a page whose person panned past its oldest:
        answered in the ack, from the store (common.contract.past), a read shared by
        everyone asking the same in the same turn."""
        if refused := (yield from self._over_limit(sid, HISTORY)):
            return refused
        try:
            asked = requested_past(data)
        except BadRequest as exc:
            return refuse(HISTORY, "invalid", str(exc))
        if not self.sessions.allows(sid, asked.symbol):
            return refuse(HISTORY, "forbidden", f"your token does not allow {asked.symbol}")
        step = ReadPast(asked.symbol, asked.view, asked.before, asked.count, asked.after)
        try:
            past = yield from ask(step)
        except StepFailed:
            return refuse(HISTORY, "unavailable", UNAVAILABLE)
        metrics.HISTORY_ROWS.inc(len(past.rows))
        return {
            **ok_ack(asked.symbol),
            "view": asked.view.key,
            "epoch": past.epoch,
            "before": asked.before,
            "first": past.first,
            "oldest": past.oldest,
            "rows": past.rows,
        }

    def unknown(self, event: str, sid: str, data: Any = None) -> Steps[Ack]:
        if refused := (yield from self._over_limit(sid, "unknown")):
            return refused
        return refuse("unknown", "unknown_event", "unknown event")

    # -- the parts ----------------------------------------------------------------------

    def _over_limit(self, sid: str, event: str) -> Steps[Ack | None]:
        """Count the event against the connection's rate: the refusal if it is over,
        and a connection still sending after many refusals in a row is closed."""
        metrics.EVENTS_IN.labels(event).inc()
        if self.guard.admit(sid):
            return None
        if self.guard.should_disconnect(sid):
            log.warning("disconnecting a flooding client", extra={"sid": sid})
            yield from ask(Disconnect(sid))
        return refuse(event, "rate_limited", RATE_LIMITED)

    def _refusal(self, sid: str, event: str, symbol: str) -> Ack | None:
        if not self.sessions.allows(sid, symbol):
            return refuse(event, "forbidden", f"your token does not allow {symbol}")
        if self.membership.holds(sid, symbol):
            return None  # held already: not a new one
        reason = self.guard.too_many_subscriptions(self.membership.held_by(sid))
        return None if reason is None else refuse(event, "too_many_subscriptions", reason)

    def _join(self, sid: str, event: str, room: Room, since: Since | None = None) -> Steps[Ack]:
        """``since``: what the client holds, to resume from (delta rooms only: a
        ``figure`` client gets the figure, as without it)."""
        symbol, view, membership = room.symbol, room.view, self.membership
        resume: Resume | None = None
        if refused := self._refusal(sid, event, symbol):
            return refused
        token = membership.begin_join(sid, room)
        membership.hold(sid, room)
        view_stamp = ViewStamp.WATCHED
        try:
            watched = True
            if self.watching.needs_stamp(symbol):
                watched = yield from ask(Watch(symbol))
            if watched:
                yield from ask(Listen(room))
                if view:  # stamped once heard: a render it asks for finds its room heard
                    view_stamp = yield from ask(WatchView(symbol, view))
            if watched and view_stamp is ViewStamp.WATCHED:
                if since is not None and room.mode is Mode.DELTA:
                    resume = yield from ask(ReadResume(symbol, view, since.epoch, since.seq))
                    metrics.RESUMES.labels(resume.outcome.value).inc()
                stored = Snapshot(None)
                if resume is None or not resume.resumed:
                    stored = yield from ask(ReadSnapshot(symbol, view))
        except StepFailed as exc:
            log.warning("cannot subscribe", extra={"symbol": symbol, "error": str(exc)})
            yield from self._abandon(sid, room, token)
            return refuse(event, "unavailable", UNAVAILABLE)
        if not watched:
            yield from self._abandon(sid, room, token)
            return refuse(event, "too_many_symbols", self.watching.too_many())
        if view_stamp is not ViewStamp.WATCHED:
            yield from self._abandon(sid, room, token)
            return refuse(event, "too_many_views", self.watching.too_many_views(symbol, view_stamp))
        newest = membership.newest_join(sid, symbol)
        if newest is None or newest[0] != token:
            # It unsubscribed, or subscribed again (another view, say) while this waited:
            # the later request wins.
            if newest is None or newest[1] != room:
                self._leave(sid, (room,))
            return ok_ack(symbol, None if since is None else False)
        # One room per symbol and client: a switch of view or update mode leaves the old.
        self._leave(sid, tuple(other for other in self._rooms_held(sid, symbol) if other != room))
        resumed = resume is not None and resume.resumed
        if resume is not None and resume.bars is not None:  # only a resume carries bars
            yield from ask(Send(sid, (event_packet(BARS, resume.bars),)))
        elif stored.payload is not None:
            yield from ask(Send(sid, snapshot_packets(room, stored)))
            metrics.SNAPSHOTS_OUT.inc()
        joined = yield from self._flush(sid, room, membership.take_held)
        membership.end_join(sid, symbol, token)
        if not joined:
            self._leave(sid, (room,))  # it unsubscribed while this join waited
        return ok_ack(symbol, None if since is None else resumed)

    def _abandon(self, sid: str, room: Room, token: int) -> Steps[None]:
        """A join that will not be: the client keeps whatever it held before it."""
        self.membership.end_join(sid, room.symbol, token)
        yield from self._flush(sid, room, self.membership.release)

    def _rooms_held(self, sid: str, symbol: str) -> tuple[Room, ...]:
        """Every room of the symbol the client may be in or joining: the default view's,
        and the one it holds or joins of another view."""
        rooms = dict.fromkeys(symbol_rooms(symbol))
        rooms.update(dict.fromkeys(sorted(self.membership.rooms_of(sid, symbol), key=str)))
        return tuple(rooms)

    def _leave(self, sid: str, rooms: tuple[Room, ...]) -> None:
        for room in rooms:
            self.membership.leave(sid, room)

    def _flush(
        self, sid: str, room: Room, take: Callable[[str, Room], list[bytes] | None]
    ) -> Steps[bool]:
        """Send what was held for the client, in order, until nothing is left and it is
        a member again; False if it had left the room meanwhile."""
        while held := take(sid, room):
            yield from ask(Send(sid, tuple(held)))
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
            yield from ask(Sleep(self.watching.refresh_every))
            for stamp in self.watching.restamps():
                try:
                    yield from ask(stamp)
                except StepFailed as exc:
                    log.warning(
                        "cannot re-stamp watched symbol",
                        extra={"symbol": stamp.symbol, "error": str(exc)},
                    )
                    break

    def end_sessions(self) -> Steps[None]:
        """A connection whose token expired is closed within a second or so of ``exp``;
        the client reconnects with a new token."""
        while True:
            yield from ask(Sleep(SESSION_CHECK))
            for sid in self.sessions.ended(time.time()):
                log.info("session ended: its token expired", extra={"sid": sid})
                metrics.REFUSED.labels("session", "expired").inc()
                yield from ask(Disconnect(sid))

    def drop_slow_consumers(self) -> Steps[None]:
        """A client that stopped reading would pin every update it has not taken."""
        while True:
            yield from ask(Sleep(SLOW_CONSUMER_CHECK))
            for queued in (yield from ask(DropSlowConsumers(self.settings.max_queued))):
                log.warning("dropped a client that stopped reading", extra={"queued": queued})
                metrics.REFUSED.labels("delivery", "slow_consumer").inc()
