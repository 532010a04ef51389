"""The gateway's plain HTTP endpoints, as (status, headers, body) triples, so the ASGI and
WSGI servers serve the same bytes. Static files and the page are compressed and cached
as gateway.assets says; /healthz and /metrics are never cached."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.settings import Settings
from gateway import assets

Headers = list[tuple[str, str]]
Response = tuple[int, Headers, bytes]
NO_STORE = ("Cache-Control", "no-store")
# A content-addressed name whose hash is not this release's (a page from another
# gateway version, mid-deploy): the current file, to be revalidated, not kept.
_OTHER_VERSION = re.compile(r"^/static/(?P<stem>.+)\.[0-9a-f]{12}(?P<ext>\.[a-z]+)$")


@dataclass(frozen=True)
class Health:
    redis: bool  # a PING answered just now
    listener: bool  # the message-queue listener task is running
    clients: int
    fast_path: bool = True  # the fenced library internals are in use (gateway.internals)
    draining: bool = False  # told to stop: closing its clients, taking no new ones

    @property
    def ok(self) -> bool:
        return self.redis and self.listener and not self.draining


def healthz(health: Health) -> Response:
    body = orjson.dumps(
        {
            "status": "ok" if health.ok else "draining" if health.draining else "unavailable",
            "redis": health.redis,
            "listener": health.listener,
            "clients": health.clients,
            "fast_path": health.fast_path,
        }
    )
    return (200 if health.ok else 503), _plain("application/json"), body


def _plain(content_type: str) -> Headers:
    return [("Content-Type", content_type), NO_STORE]


def streaming(symbols: list[str]) -> Response:
    """/streaming: the symbols the live stream feeds now, for the page's marks."""
    return 200, _plain("application/json"), orjson.dumps({"symbols": symbols})


def metrics() -> Response:
    return 200, _plain(CONTENT_TYPE_LATEST), generate_latest()


def page(settings: Settings) -> assets.Body:
    """The page: its config filled in, its files linked by content."""
    html = resources.files("gateway").joinpath("static/index.html").read_text()
    config = orjson.dumps(
        {
            "symbols": list(settings.symbols),
            "source": str(settings.source.kind),
            "source_name": settings.source.target if settings.source.kind == "plugin" else None,
            "interval": settings.fetch_interval,
            "stream": settings.stream,
        }
    ).decode()
    return _page_body(assets.versioned(html.replace("__RTPLOT_CONFIG__", config)))


@cache  # one page per process (its settings do not change): hashed and gzipped once
def _page_body(html: str) -> assets.Body:
    return assets.Body.of(assets.TYPES[".html"], html.encode())


def static(path: str, request: Mapping[str, str]) -> Response | None:
    found = assets.by_url().get(path)
    if found is None and (other := _OTHER_VERSION.match(path)):
        current = assets.assets().get(other["stem"] + other["ext"])
        found = (current, assets.REVALIDATE) if current else None
    if found is None:
        return None
    asset, cache_control = found
    return asset.body.reply(cache_control, request)


def not_found() -> Response:
    return 404, _plain("text/plain"), b"Not Found"


def route(path: str, settings: Settings, request: Mapping[str, str] | None = None) -> Response:
    """Every response but /healthz and /streaming, which need I/O and are served by the
    caller.
    ``request``: the request's headers, lower-case names (Accept-Encoding,
    If-None-Match)."""
    request = request or {}
    if path == "/":
        return page(settings).reply(assets.REVALIDATE, request)
    if path == "/metrics":
        return metrics()
    return static(path, request) or not_found()
