"""The eventlet gateway (``rtplot gateway --mode eventlet``), for the original deployment.

The same protocol as ``asgi_server``, on python-socketio's ``Server`` with eventlet's own
WSGI server (gunicorn 26 dropped its eventlet worker). ``rtplot.cli`` monkey-patches
before anything imports socket or redis, so the blocking calls here yield to other
clients. Eventlet is in maintenance mode: prefer the asyncio gateway for new set-ups.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

import eventlet
import eventlet.wsgi
import orjson
import redis
import socketio

from common.connection import REDIS_OPTIONS, connect
from common.keys import Keys
from common.messages import (
    FIGURE,
    GRAPH_PLOT,
    PING_GRAPH,
    SNAPSHOT,
    SUBSCRIBE,
    UNSUBSCRIBE,
    UPDATE_MODES,
    OrjsonCodec,
    legacy_room,
    ok_ack,
)
from common.settings import Settings
from gateway import metrics, routes
from gateway.clients import ClientBook
from gateway.managers import CountingRedisManager
from gateway.protocol import (
    SLOW_CONSUMER_CHECK,
    UNAVAILABLE,
    BadRequest,
    drain,
    event_packet,
    figure_string,
    overfull,
    requested_symbol,
    requested_updates,
    rooms_to_leave,
    server_options,
)
from gateway.watching import WATCH_SCRIPT, refresh_every, too_many, watch_args

log = logging.getLogger("rtplot.gateway")

MAX_CLIENTS = 100_000  # connections served at once (greenthreads are cheap)
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class EventletGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.manager = CountingRedisManager(
            settings.redis_url,
            channel=self.keys.socketio_channel,
            redis_options=dict(REDIS_OPTIONS),
        )
        self.sio = socketio.Server(
            async_mode="eventlet",
            client_manager=self.manager,
            json=OrjsonCodec,
            **server_options(settings),
        )
        self.redis = connect(settings.redis_url)
        self.watch_script = self.redis.register_script(WATCH_SCRIPT)
        self.clients = ClientBook(settings)
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on(SUBSCRIBE, self.on_subscribe)
        self.sio.on(UNSUBSCRIBE, self.on_unsubscribe)
        self.sio.on(SNAPSHOT, self.on_snapshot)
        self.sio.on(PING_GRAPH, self.on_ping_graph)
        self.sio.on("*", self.on_unknown)
        self.app = socketio.WSGIApp(self.sio, self.http)

    def start(self) -> None:
        # As in the asyncio gateway: listen to the queue before the first client.
        self.sio.manager_initialized = True
        self.manager.initialize()
        self.sio.start_background_task(self._refresh_watched)
        self.sio.start_background_task(self._drop_slow_consumers)

    def _refresh_watched(self) -> None:
        while True:
            self.sio.sleep(refresh_every(self.settings))
            for symbol in self.clients.subscriptions.symbols():
                try:
                    self._watch(symbol)
                except redis.RedisError as exc:
                    log.warning(
                        "cannot re-stamp watched symbol",
                        extra={"symbol": symbol, "error": str(exc)},
                    )
                    break

    def _drop_slow_consumers(self) -> None:
        while True:
            self.sio.sleep(SLOW_CONSUMER_CHECK)
            for sock in overfull(self.sio.eio.sockets, self.settings.max_queued):
                log.warning(
                    "dropping a client that stopped reading", extra={"queued": sock.queue.qsize()}
                )
                metrics.REFUSED.labels("delivery", "slow_consumer").inc()
                sock.close(wait=False, abort=True)
                drain(sock.queue)
                sock.queue.put(None)

    def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not self.clients.admit(sid, environ, auth):
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")

    def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.clients.forget(sid)

    def on_unknown(self, event: str, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := self._over_limit(sid, "unknown"):
            return refused
        return self.clients.refuse("unknown", "unknown_event", "unknown event")

    def _over_limit(self, sid: str, event: str) -> dict[str, Any] | None:
        """Count the event against the connection's rate; the refusal if it is over."""
        refused = self.clients.over_limit(sid, event)
        if refused is not None and self.clients.flooding(sid):
            log.warning("disconnecting a flooding client", extra={"sid": sid})
            self.sio.disconnect(sid)
        return refused

    def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := self._over_limit(sid, SUBSCRIBE):
            return refused
        try:
            symbol = requested_symbol(data)
            room = UPDATE_MODES[requested_updates(data)](symbol)
        except BadRequest as exc:
            return self.clients.refuse(SUBSCRIBE, "invalid", str(exc))
        return self._join(sid, SUBSCRIBE, symbol, room, self._send_figure)

    def on_ping_graph(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := self._over_limit(sid, PING_GRAPH):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return self.clients.refuse(PING_GRAPH, "invalid", str(exc))
        return self._join(sid, PING_GRAPH, symbol, legacy_room(symbol), self._send_graph_plot)

    def on_unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := self._over_limit(sid, UNSUBSCRIBE):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return self.clients.refuse(UNSUBSCRIBE, "invalid", str(exc))
        for room in rooms_to_leave(symbol):
            self.sio.leave_room(sid, room)
        self.clients.left(sid, symbol)
        return ok_ack(symbol)

    def on_snapshot(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := self._over_limit(sid, SNAPSHOT):
            return refused
        try:
            symbol = requested_symbol(data)
            snapshot = self._snapshot(symbol)
        except BadRequest as exc:
            return self.clients.refuse(SNAPSHOT, "invalid", str(exc))
        except redis.RedisError:
            return self.clients.refuse(SNAPSHOT, "unavailable", UNAVAILABLE)
        if snapshot is None:
            return self.clients.refuse(SNAPSHOT, "no_snapshot", f"no snapshot of {symbol} yet")
        self._send_figure(sid, snapshot)
        return ok_ack(symbol)

    def _join(
        self, sid: str, event: str, symbol: str, room: str, send: Callable[[str, bytes], None]
    ) -> dict[str, Any]:
        if refused := self.clients.subscription_refusal(sid, event, symbol):
            return refused
        try:
            if not self._watch(symbol):
                return self.clients.refuse(event, "too_many_symbols", too_many(self.settings))
            snapshot = self._snapshot(symbol)
        except redis.RedisError as exc:
            log.warning("redis error on subscribe", extra={"symbol": symbol, "error": str(exc)})
            return self.clients.refuse(event, "unavailable", UNAVAILABLE)
        # From here to the snapshot being queued nothing yields to the message-queue
        # listener, so the snapshot is queued before any update to the room: the client
        # gets the snapshot first, then every update after it. (An update published
        # between the read and the join shows up as a seq gap, which clients repair
        # with a `snapshot` request.)
        for other in rooms_to_leave(symbol, keep=room):
            self.sio.leave_room(sid, other)
        self.sio.enter_room(sid, room)
        self.clients.joined(sid, symbol)
        if snapshot is not None:
            send(sid, snapshot)
        return ok_ack(symbol)

    def _snapshot(self, symbol: str) -> bytes | None:
        payload = self.redis.hget(self.keys.snapshot(symbol), "payload")
        return payload if isinstance(payload, bytes) else None

    def _watch(self, symbol: str) -> bool:
        if symbol in self.settings.symbols:
            return True
        keys, args = watch_args(self.settings, symbol)
        return bool(self.watch_script(keys=keys, args=args))

    def _send_figure(self, sid: str, snapshot: bytes) -> None:
        self._send_event(sid, FIGURE, snapshot)

    def _send_graph_plot(self, sid: str, snapshot: bytes) -> None:
        self._send_event(sid, GRAPH_PLOT, orjson.dumps(figure_string(snapshot)))

    def _send_event(self, sid: str, event: str, payload_json: bytes) -> None:
        # Straight to this client's Engine.IO socket: a snapshot is for this one client,
        # on this gateway only, and its JSON is sent as stored.
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            self.sio.eio.send_packet(eio_sid, event_packet(event, payload_json))
            metrics.SNAPSHOTS_OUT.inc()

    def listener_alive(self) -> bool:
        green = getattr(getattr(self.manager, "thread", None), "g", None)
        return green is not None and not green.dead

    def health(self) -> routes.Health:
        try:
            with eventlet.Timeout(2):
                redis_ok = bool(self.redis.ping())
        except (redis.RedisError, eventlet.Timeout, OSError):
            redis_ok = False
        listener = self.listener_alive()
        clients = len(self.sio.manager.rooms.get("/", {}).get(None, {}))
        return routes.Health(redis=redis_ok, listener=listener, clients=clients)

    def http(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            response = routes.healthz(self.health())
        elif path == "/metrics":
            metrics.LISTENER_UP.set(self.listener_alive())
            response = routes.metrics()
        else:
            response = routes.route(path, self.settings) or routes.NOT_FOUND
        status, content_type, body = response
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        start_response(
            f"{status} {reason}", [("Content-Type", content_type), ("Cache-Control", "no-store")]
        )
        return [body]


def serve(settings: Settings) -> None:
    gateway = EventletGateway(settings)
    gateway.start()
    # eventlet's defaults (a backlog of 50, 1,024 connections at most) would cap a gateway
    # far below what it can serve; the OS's file limit is the real bound.
    listener = eventlet.listen((settings.host, settings.port), backlog=2048)
    log.info("gateway started", extra={"mode": "eventlet", "port": settings.port})
    eventlet.wsgi.server(listener, gateway.app, log=log, log_output=False, max_size=MAX_CLIENTS)
