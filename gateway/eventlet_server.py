"""The eventlet gateway (``rtplot gateway --mode eventlet``), for the original deployment.

The same protocol core as the asyncio gateway (gateway.core), driven without ``await``
on python-socketio's ``Server`` and eventlet's own WSGI server (gunicorn 26 dropped its
eventlet worker). ``rtplot.cli`` monkey-patches before anything imports socket or
redis, so the blocking calls yield to other clients. Eventlet is in maintenance mode:
prefer the asyncio gateway for new set-ups.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

import eventlet
import eventlet.wsgi
import redis
import socketio

from common.connection import connect
from common.contract.keys import Keys
from common.settings import Settings
from gateway import internals, metrics, routes
from gateway.core import GatewayCore, Handler
from gateway.internals import startup
from gateway.limits import server_options
from gateway.relay import RelayManager
from gateway.runner import Runner, drive, forever, register
from gateway.streaming import StreamingList

log = logging.getLogger("rtplot.gateway")

MAX_CLIENTS = 100_000  # connections served at once (greenthreads are cheap)
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found", 503: "Service Unavailable"}


class EventletGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.manager = RelayManager(settings)
        self.sio = socketio.Server(async_mode="eventlet", **server_options(settings, self.manager))
        self.redis = connect(settings.redis_url)
        self.core = GatewayCore(settings, self.manager.membership)
        self.keys = Keys(settings.key_prefix)
        self.streaming_list = StreamingList(settings)
        self.runner = Runner(self.sio, self.redis, settings)
        register(self.sio, self.core, self._driven)
        self.app = socketio.WSGIApp(self.sio, self.http)

    def _driven(self, handler: Handler) -> Any:
        return lambda *args: drive(handler(*args), self.runner.perform)

    def start(self) -> None:
        startup.start_manager(self.sio)
        for loop in self.core.background():
            self.sio.start_background_task(forever, loop, self.runner)

    def health(self) -> routes.Health:
        try:
            with eventlet.Timeout(2):
                redis_ok = bool(self.redis.ping())
        except (redis.RedisError, eventlet.Timeout, OSError):
            redis_ok = False
        listener = self.manager.listener_ok()
        clients = len(self.core.sessions)
        return routes.Health(redis_ok, listener, clients, internals.enabled())

    def streaming(self) -> list[str]:
        since = self.streaming_list.due()
        if since is None:
            return self.streaming_list.symbols
        try:
            raw = self.redis.zrangebyscore(self.keys.streaming, since, "+inf")
        except (redis.RedisError, OSError):
            raw = None
        return self.streaming_list.read(raw)

    def http(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            response = routes.healthz(self.health())
        elif path == "/streaming":
            response = routes.streaming(self.streaming())
        else:
            metrics.LISTENER_UP.set(self.manager.listener_ok())
            request = {
                "accept-encoding": environ.get("HTTP_ACCEPT_ENCODING", ""),
                "if-none-match": environ.get("HTTP_IF_NONE_MATCH", ""),
            }
            response = routes.route(path, self.settings, request)
        status, headers, body = response
        start_response(f"{status} {REASONS[status]}", headers)
        return [body]


def serve(settings: Settings) -> None:
    internals.check(settings.fast_path)
    gateway = EventletGateway(settings)
    gateway.start()
    # eventlet's defaults (a backlog of 50, 1,024 connections at most) would cap a gateway
    # far below what it can serve; the OS's file limit is the real bound.
    listener = eventlet.listen((settings.host, settings.port), backlog=2048)
    log.info(
        "gateway started",
        extra={"mode": "eventlet", "port": settings.port, "fast_path": internals.enabled()},
    )
    eventlet.wsgi.server(listener, gateway.app, log=log, log_output=False, max_size=MAX_CLIENTS)
