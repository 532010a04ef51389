"""The page's static files as a browser can keep them, the same bytes in both gateway modes.

Each file is read once, gzipped once (level 9: it is done at start, not per request) and
named by its content: ``/static/app.3f2a9c1b04de.js``. The page links those names, so
they are sent with ``Cache-Control: public, max-age=31536000, immutable`` and a browser
never asks for them again; a new release has new names. The plain names
(``/static/app.js``) still answer, for other clients, with an ETag to revalidate
against (``no-cache``). Plotly.js for the page is the partial "finance" bundle
(scatter, bar, candlestick, ohlc and a few more: every trace type the renderer emits),
vendored in gateway/static like the Socket.IO client; the full bundle of the installed
``plotly`` package stays at ``/static/plotly.min.js`` for clients that want it.
"""

import gzip
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import plotly

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"  # keep it, but ask (If-None-Match) before each use
TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
FILES = {  # the name under /static/: where it comes from
    "plotly-finance.min.js": STATIC / "plotly-finance.min.js",
    "plotly.min.js": PLOTLY_JS,
    "socket.io.min.js": STATIC / "socket.io.min.js",
    "thin.js": STATIC / "thin.js",
    "app.js": STATIC / "app.js",
    "app.css": STATIC / "app.css",
    "favicon.svg": STATIC / "favicon.svg",
}
Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Body:
    """Bytes to send, and their gzipped form: each with its own ETag."""

    content_type: str
    plain: bytes
    gzipped: bytes
    digest: str  # of the plain bytes, hex

    @classmethod
    def of(cls, content_type: str, plain: bytes) -> "Body":
        digest = hashlib.sha256(plain).hexdigest()
        return cls(content_type, plain, gzip.compress(plain, 9, mtime=0), digest)

    def reply(self, cache_control: str, request: Mapping[str, str]) -> tuple[int, Headers, bytes]:
        """200 with the body (gzipped if the client takes it), or 304 if the client holds
        this version already."""
        zipped = accepts_gzip(request.get("accept-encoding", ""))
        etag = f'"{self.digest[:32]}{"-gz" if zipped else ""}"'
        headers = [("Cache-Control", cache_control), ("ETag", etag), ("Vary", "Accept-Encoding")]
        if etag in request.get("if-none-match", "") or request.get("if-none-match") == "*":
            return 304, headers, b""
        headers.append(("Content-Type", self.content_type))
        if zipped:
            headers.append(("Content-Encoding", "gzip"))
        return 200, headers, self.gzipped if zipped else self.plain


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.replace(" ", "").removeprefix("q=")
            try:
                return float(q) > 0 if q else True
            except ValueError:
                return True
    return False


@dataclass(frozen=True)
class Asset:
    name: str  # under /static/
    body: Body

    @property
    def url(self) -> str:
        """Its content-addressed URL: the name with 12 hex digits of its hash."""
        stem, dot, ext = self.name.rpartition(".")
        return f"/static/{stem}.{self.body.digest[:12]}{dot}{ext}"


@cache
def assets() -> dict[str, Asset]:
    """Every static file by name; one missing (plotly's bundle, in an odd install) is
    left out."""
    found = {}
    for name, path in FILES.items():
        if path.is_file():
            body = Body.of(TYPES[path.suffix], path.read_bytes())
            found[name] = Asset(name, body)
    return found


@cache
def by_url() -> dict[str, tuple[Asset, str]]:
    """Each asset under its plain and its content-addressed URL, with the caching each
    gets."""
    table = {}
    for asset in assets().values():
        table[f"/static/{asset.name}"] = (asset, REVALIDATE)
        table[asset.url] = (asset, IMMUTABLE)
    return table


def versioned(html: str) -> str:
    """The page with each ``/static/<name>`` it links replaced by the content-addressed
    URL."""
    for asset in assets().values():
        html = html.replace(f'"/static/{asset.name}"', f'"{asset.url}"')
    return html
