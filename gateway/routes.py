"""The gateway's plain HTTP endpoints, as (status, content type, body) triples, so the
ASGI and WSGI servers serve the same bytes."""

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import orjson
import plotly
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.settings import Settings

Response = tuple[int, str, bytes]

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_STATIC_FILES = {
    "/static/plotly.min.js": (PLOTLY_JS, "application/javascript"),
    "/static/socket.io.min.js": (STATIC / "socket.io.min.js", "application/javascript"),
    "/static/app.js": (STATIC / "app.js", "application/javascript"),
    "/static/app.css": (STATIC / "app.css", "text/css"),
    "/static/favicon.svg": (STATIC / "favicon.svg", "image/svg+xml"),
}


@dataclass(frozen=True)
class Health:
    redis: bool  # a PING answered just now
    listener: bool  # the message-queue listener task is running
    clients: int
    fast_path: bool = True  # the fenced library internals are in use (gateway.internals)

    @property
    def ok(self) -> bool:
        return self.redis and self.listener


def healthz(health: Health) -> Response:
    body = orjson.dumps(
        {
            "status": "ok" if health.ok else "unavailable",
            "redis": health.redis,
            "listener": health.listener,
            "clients": health.clients,
            "fast_path": health.fast_path,
        }
    )
    return (200 if health.ok else 503), "application/json", body


def metrics() -> Response:
    return 200, CONTENT_TYPE_LATEST, generate_latest()


def index(settings: Settings) -> Response:
    page = resources.files("gateway").joinpath("static/index.html").read_text()
    config = orjson.dumps(
        {
            "symbols": list(settings.symbols),
            "source": str(settings.source.kind),
            "source_name": settings.source.target if settings.source.kind == "plugin" else None,
            "interval": settings.fetch_interval,
        }
    ).decode()
    html = page.replace("__RTPLOT_CONFIG__", config)
    return 200, "text/html; charset=utf-8", html.encode()


@cache
def static(path: str) -> Response | None:
    entry = _STATIC_FILES.get(path)
    if entry is None or not entry[0].is_file():
        return None
    file, content_type = entry
    return 200, content_type, file.read_bytes()


NOT_FOUND: Response = (404, "text/plain", b"Not Found")


def route(path: str, settings: Settings) -> Response:
    """Every response but /healthz, which needs I/O and is served by the caller."""
    if path == "/":
        return index(settings)
    if path == "/metrics":
        return metrics()
    return static(path) or NOT_FOUND
