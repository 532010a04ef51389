"""The default gateway: python-socketio ``AsyncServer`` under uvicorn.

Updates arrive through the ``AsyncRedisManager`` message queue, published by the
renderers; this process only relays them to the rooms its clients joined, so any
number of gateways can run side by side behind a load balancer.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio
import socketio

from common.connection import REDIS_OPTIONS, connect_async
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
from gateway import metrics, routes, socket_poll
from gateway.clients import ClientBook
from gateway.managers import CountingAsyncRedisManager
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

Scope = dict[str, Any]
Sender = Callable[[str, bytes], Awaitable[None]]


class AsyncGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.manager = CountingAsyncRedisManager(
            settings.redis_url,
            channel=self.keys.socketio_channel,
            redis_options=dict(REDIS_OPTIONS),
        )
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=self.manager,
            json=OrjsonCodec,
            **server_options(settings),
        )
        self.redis: redis.asyncio.Redis = connect_async(settings.redis_url)
        self.watch_script = self.redis.register_script(WATCH_SCRIPT)
        self.clients = ClientBook(settings)
        self._refresher: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._register_handlers()
        self.app = socketio.ASGIApp(
            self.sio,
            other_asgi_app=self.http,
            on_startup=self.startup,
            on_shutdown=self.shutdown,
        )

    # -- lifecycle -------------------------------------------------------------------

    async def startup(self) -> None:
        # python-socketio starts its queue listener at the first connection; start it
        # now so the gateway relays (and /healthz tells the truth) from the beginning.
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.manager.initialize()
        self._refresher = asyncio.create_task(self._refresh_watched())
        self._sweeper = asyncio.create_task(self._drop_slow_consumers())
        log.info("gateway started", extra={"mode": "asyncio"})

    async def shutdown(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.redis.aclose()

    async def _refresh_watched(self) -> None:
        while True:
            await asyncio.sleep(refresh_every(self.settings))
            for symbol in self.clients.subscriptions.symbols():
                try:
                    await self._watch(symbol)
                except redis.RedisError as exc:
                    log.warning(
                        "cannot re-stamp watched symbol",
                        extra={"symbol": symbol, "error": str(exc)},
                    )
                    break

    async def _drop_slow_consumers(self) -> None:
        while True:
            await asyncio.sleep(SLOW_CONSUMER_CHECK)
            for sock in overfull(self.sio.eio.sockets, self.settings.max_queued):
                log.warning(
                    "dropping a client that stopped reading", extra={"queued": sock.queue.qsize()}
                )
                metrics.REFUSED.labels("delivery", "slow_consumer").inc()
                await sock.close(wait=False, abort=True)
                drain(sock.queue)
                await sock.queue.put(None)  # lets its writer end once the socket gives

    # -- Socket.IO protocol ----------------------------------------------------------

    def _register_handlers(self) -> None:
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on(SUBSCRIBE, self.on_subscribe)
        self.sio.on(UNSUBSCRIBE, self.on_unsubscribe)
        self.sio.on(SNAPSHOT, self.on_snapshot)
        self.sio.on(PING_GRAPH, self.on_ping_graph)
        self.sio.on("*", self.on_unknown)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not self.clients.admit(sid, environ, auth):
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.clients.forget(sid)

    async def on_unknown(self, event: str, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := await self._over_limit(sid, "unknown"):
            return refused
        return self.clients.refuse("unknown", "unknown_event", "unknown event")

    async def _over_limit(self, sid: str, event: str) -> dict[str, Any] | None:
        """Count the event against the connection's rate; the refusal if it is over."""
        refused = self.clients.over_limit(sid, event)
        if refused is not None and self.clients.flooding(sid):
            log.warning("disconnecting a flooding client", extra={"sid": sid})
            await self.sio.disconnect(sid)
        return refused

    async def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := await self._over_limit(sid, SUBSCRIBE):
            return refused
        try:
            symbol = requested_symbol(data)
            room = UPDATE_MODES[requested_updates(data)](symbol)
        except BadRequest as exc:
            return self.clients.refuse(SUBSCRIBE, "invalid", str(exc))
        return await self._join(sid, SUBSCRIBE, symbol, room, self._send_figure)

    async def on_ping_graph(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := await self._over_limit(sid, PING_GRAPH):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return self.clients.refuse(PING_GRAPH, "invalid", str(exc))
        return await self._join(sid, PING_GRAPH, symbol, legacy_room(symbol), self._send_graph_plot)

    async def on_unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := await self._over_limit(sid, UNSUBSCRIBE):
            return refused
        try:
            symbol = requested_symbol(data)
        except BadRequest as exc:
            return self.clients.refuse(UNSUBSCRIBE, "invalid", str(exc))
        for room in rooms_to_leave(symbol):
            await self.sio.leave_room(sid, room)
        self.clients.left(sid, symbol)
        return ok_ack(symbol)

    async def on_snapshot(self, sid: str, data: Any = None) -> dict[str, Any]:
        if refused := await self._over_limit(sid, SNAPSHOT):
            return refused
        try:
            symbol = requested_symbol(data)
            snapshot = await self._snapshot(symbol)
        except BadRequest as exc:
            return self.clients.refuse(SNAPSHOT, "invalid", str(exc))
        except redis.RedisError:
            return self.clients.refuse(SNAPSHOT, "unavailable", UNAVAILABLE)
        if snapshot is None:
            return self.clients.refuse(SNAPSHOT, "no_snapshot", f"no snapshot of {symbol} yet")
        await self._send_figure(sid, snapshot)
        return ok_ack(symbol)

    async def _join(
        self, sid: str, event: str, symbol: str, room: str, send: Sender
    ) -> dict[str, Any]:
        if refused := self.clients.subscription_refusal(sid, event, symbol):
            return refused
        try:
            if not await self._watch(symbol):
                return self.clients.refuse(event, "too_many_symbols", too_many(self.settings))
            snapshot = await self._snapshot(symbol)
        except redis.RedisError as exc:
            log.warning("redis error on subscribe", extra={"symbol": symbol, "error": str(exc)})
            return self.clients.refuse(event, "unavailable", UNAVAILABLE)
        # From here to the snapshot being queued nothing yields to the message-queue
        # listener, so the snapshot is queued before any update to the room: the client
        # gets the snapshot first, then every update after it. (An update published
        # between the read and the join shows up as a seq gap, which clients repair
        # with a `snapshot` request.)
        for other in rooms_to_leave(symbol, keep=room):
            await self.sio.leave_room(sid, other)
        await self.sio.enter_room(sid, room)
        self.clients.joined(sid, symbol)
        if snapshot is not None:
            await send(sid, snapshot)
        return ok_ack(symbol)

    async def _snapshot(self, symbol: str) -> bytes | None:
        payload = await self.redis.hget(self.keys.snapshot(symbol), "payload")
        return payload if isinstance(payload, bytes) else None

    async def _watch(self, symbol: str) -> bool:
        if symbol in self.settings.symbols:
            return True
        keys, args = watch_args(self.settings, symbol)
        return bool(await self.watch_script(keys=keys, args=args))

    async def _send_figure(self, sid: str, snapshot: bytes) -> None:
        await self._send_event(sid, FIGURE, snapshot)

    async def _send_graph_plot(self, sid: str, snapshot: bytes) -> None:
        await self._send_event(sid, GRAPH_PLOT, orjson.dumps(figure_string(snapshot)))

    async def _send_event(self, sid: str, event: str, payload_json: bytes) -> None:
        # Straight to this client's Engine.IO socket: a snapshot is for this one client,
        # on this gateway only, and its JSON is sent as stored.
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            await self.sio.eio.send_packet(eio_sid, event_packet(event, payload_json))
            metrics.SNAPSHOTS_OUT.inc()

    # -- plain HTTP ------------------------------------------------------------------

    def listener_alive(self) -> bool:
        thread = getattr(self.manager, "thread", None)
        return thread is not None and not thread.done()

    async def health(self) -> routes.Health:
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), timeout=2))
        except (redis.RedisError, TimeoutError, OSError):
            redis_ok = False
        listener = self.listener_alive()
        clients = len(self.sio.manager.rooms.get("/", {}).get(None, {}))
        return routes.Health(redis=redis_ok, listener=listener, clients=clients)

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            response = routes.healthz(await self.health())
        elif path == "/metrics":
            metrics.LISTENER_UP.set(self.listener_alive())
            response = routes.metrics()
        else:
            response = routes.route(path, self.settings) or routes.NOT_FOUND
        status, content_type, body = response
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def serve(settings: Settings) -> None:
    import uvicorn

    socket_poll.install()
    gateway = AsyncGateway(settings)
    uvicorn.run(
        gateway.app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        # Engine.IO pings every client itself; a second, WebSocket-level ping per
        # connection only costs a timer and a frame each.
        ws_ping_interval=None,
        # Compression is per connection: it would make each update cost CPU once per
        # viewer, where rtplot's work is meant to grow with symbols, not viewers.
        ws_per_message_deflate=False,
        # On SIGTERM, thousands of open WebSockets would each be closed politely; after
        # this many seconds the rest are dropped, within compose's 10 s stop grace.
        timeout_graceful_shutdown=5,
    )
