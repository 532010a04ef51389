"""The default gateway: python-socketio's ``AsyncServer`` under uvicorn.

It drives the protocol core (gateway.core) with ``await``; everything particular to
asyncio is here: building the server, starting and stopping, the HTTP adapter.
Updates arrive on the room channels the relay manager subscribes to, so any number of
gateways can run side by side behind a load balancer.
"""

import asyncio
import importlib.util
import logging
import math
import signal
import threading
from collections.abc import Callable
from typing import Any

import redis.asyncio
import socketio

from common.connection import connect_async
from common.contract.keys import Keys
from common.settings import Settings
from gateway import internals, metrics, routes
from gateway.core import GatewayCore, Handler
from gateway.internals import poll, startup, websocket
from gateway.limits import server_options
from gateway.relay import AsyncRelayManager
from gateway.runner import Runner, drive_async, forever_async, register
from gateway.streaming import StreamingList

log = logging.getLogger("rtplot.gateway")

Scope = dict[str, Any]


class AsyncGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.manager = AsyncRelayManager(settings)
        self.sio = socketio.AsyncServer(async_mode="asgi", **server_options(settings, self.manager))
        self.redis: redis.asyncio.Redis = connect_async(settings.redis_url)
        self.core = GatewayCore(settings, self.manager.membership)
        self.keys = Keys(settings.key_prefix)
        self.streaming_list = StreamingList(settings)
        self.runner = Runner(self.sio, self.redis, settings)
        register(self.sio, self.core, self._driven)
        self._loops: list[asyncio.Task[None]] = []
        self._draining: asyncio.Task[None] | None = None
        self.app = socketio.ASGIApp(
            self.sio,
            other_asgi_app=self.http,
            on_startup=self.startup,
            on_shutdown=self.shutdown,
        )

    def _driven(self, handler: Handler) -> Any:
        async def event(*args: Any) -> Any:
            return await drive_async(handler(*args), self.runner.perform)

        return event

    async def startup(self) -> None:
        if internals.enabled():
            websocket.install(self.sio.eio)
        startup.start_manager(self.sio)
        for loop in self.core.background():
            self._loops.append(asyncio.create_task(forever_async(loop, self.runner)))
        self._drain_on_sigterm()
        log.info(
            "gateway started",
            extra={"mode": "asyncio", "fast_path": internals.enabled(), **runs_with()},
        )

    def _drain_on_sigterm(self) -> None:
        """SIGTERM drains this gateway's clients first (``drain``), then stops it as
        uvicorn does: the handler uvicorn installed, found here and called after the
        drain, so nothing of uvicorn's own is touched. A second SIGTERM stops at once."""
        if (
            self.settings.drain_seconds <= 0
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return
        stop: Callable[[int, Any], Any] = previous
        loop = asyncio.get_running_loop()

        def then_stop(task: "asyncio.Task[None]") -> None:
            stop(signal.SIGTERM, None)

        def start() -> None:
            if self._draining is None:
                self._draining = asyncio.create_task(self.drain(self.settings.drain_seconds))
                self._draining.add_done_callback(then_stop)
            else:
                stop(signal.SIGTERM, None)

        signal.signal(signal.SIGTERM, lambda signum, frame: loop.call_soon_threadsafe(start))

    async def drain(self, seconds: float) -> None:
        """Close the clients over ``seconds``, a batch every tenth of one, so that they
        reconnect to the other gateways spread out, not all in the same instant; new
        connections are refused meanwhile and /healthz says 503 (draining)."""
        self.core.draining = True
        sids = list(self.core.sessions.grants)
        log.info("draining", extra={"clients": len(sids), "seconds": seconds})
        batches = max(1, int(seconds * 10))
        size = max(1, math.ceil(len(sids) / batches))
        for start in range(0, len(sids), size):
            batch = sids[start : start + size]
            await asyncio.gather(*(self._close_transport(sid) for sid in batch))
            metrics.DRAINED.inc(len(batch))
            await asyncio.sleep(seconds / batches)
        log.info("drained", extra={"clients": len(sids)})

    async def _close_transport(self, sid: str) -> None:
        """Close the client's Engine.IO connection, not its Socket.IO session: a client
        told "disconnect" by the server stays disconnected (Socket.IO's rule), one whose
        connection closed reconnects by itself, which is the point."""
        try:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        except KeyError:
            return  # gone meanwhile
        if eio_sid is None:
            return
        if not (internals.enabled() and websocket.drop(self.sio.eio, eio_sid)):
            # Long-polling, or the library's path: Engine.IO's close. A page reconnects
            # after it (engine.io's client waits for the connection to end).
            await self.sio.eio.disconnect(eio_sid)

    async def shutdown(self) -> None:
        for task in self._loops:
            task.cancel()
        await self.redis.aclose()

    async def health(self) -> routes.Health:
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), timeout=2))
        except (redis.RedisError, TimeoutError, OSError):
            redis_ok = False
        listener = self.manager.listener_ok()
        clients = len(self.core.sessions)
        return routes.Health(
            redis_ok, listener, clients, internals.enabled(), draining=self.core.draining
        )

    async def streaming(self) -> list[str]:
        since = self.streaming_list.due()
        if since is None:
            return self.streaming_list.symbols
        try:
            raw = await self.redis.zrangebyscore(self.keys.streaming, since, "+inf")
        except (redis.RedisError, OSError):
            raw = None
        return self.streaming_list.read(raw)

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            response = routes.healthz(await self.health())
        elif path == "/streaming":
            response = routes.streaming(await self.streaming())
        else:
            metrics.LISTENER_UP.set(self.manager.listener_ok())
            request = {
                name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
            }
            response = routes.route(path, self.settings, request)
        status, headers, body = response
        raw = [(name.lower().encode(), value.encode()) for name, value in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def runs_with() -> dict[str, str]:
    """What uvicorn picked for "auto": its event loop and HTTP parser (uvloop and
    httptools, which uvicorn[standard] installs, in the image too)."""
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return {"loop": "uvloop" if loop == "uvloop" else "asyncio", "http": http}


def serve(settings: Settings) -> None:
    import uvicorn

    if internals.check(settings.fast_path):
        poll.install()
    gateway = AsyncGateway(settings)
    uvicorn.run(
        gateway.app,
        host=settings.host,
        port=settings.port,
        # uvicorn's own lines (startup banners, every connection opened and closed) only
        # at DEBUG; its warnings and errors always.
        log_level="debug" if settings.log_level == "DEBUG" else "warning",
        lifespan="on",
        # Engine.IO pings every client itself; a second, WebSocket-level ping per
        # connection only costs a timer and a frame each.
        ws_ping_interval=None,
        # Compression is per connection: it would make each update cost CPU once per
        # viewer, where rtplot's work is meant to grow with symbols, not viewers.
        ws_per_message_deflate=False,
        # Its access log would print every query string: the page's ?token= too.
        access_log=False,
        # On SIGTERM the gateway first drains its clients (RTPLOT_DRAIN_SECONDS, 4 s);
        # what is still open after it is closed by uvicorn, and dropped after this many
        # seconds more: both within compose's 10 s stop grace.
        timeout_graceful_shutdown=5,
    )
