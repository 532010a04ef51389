"""The page and its files as a browser keeps them, from both gateway modes: gzipped when
asked, scripts and styles under content-addressed names kept for a year, the page
revalidated, and a repeat visit that downloads no script again."""

import gzip
import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import plotly
import pytest
from playwright.sync_api import sync_playwright

from bench.page import CHROMIUM, CHROMIUM_ARGS
from gateway import assets
from support import Pipeline, running

pytestmark = pytest.mark.e2e

MODES = ["asyncio", "eventlet"]
YEAR = "public, max-age=31536000, immutable"
LINK = re.compile(r'(?:src|href)="(/static/[^"]+)"')


@pytest.fixture(scope="module")
def gateways() -> Iterator[Pipeline]:
    with running(
        ("gateway-asyncio", "gateway"), ("gateway-eventlet", "gateway", "--mode", "eventlet")
    ) as pipeline:
        yield pipeline


def get(url: str, **headers: str) -> tuple[int, Message, bytes]:
    """Status, headers (names in any case) and body; ``Accept_Encoding="gzip"``."""
    request = urllib.request.Request(
        url, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:  # 304 and 404 come as errors
        return error.code, error.headers, error.read()


def page_of(gateways: Pipeline, mode: str) -> tuple[str, str]:
    base = gateways.url(f"gateway-{mode}")
    status, headers, body = get(base + "/", Accept_Encoding="gzip, deflate")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"]
    return base, gzip.decompress(body).decode()


@pytest.mark.parametrize("mode", MODES)
def test_the_page_links_each_file_by_its_content_and_it_is_kept_a_year(
    gateways: Pipeline, mode: str
) -> None:
    base, html = page_of(gateways, mode)
    links = LINK.findall(html)
    names = {re.sub(r"\.[0-9a-f]{12}\.", ".", link.removeprefix("/static/")) for link in links}
    assert names == {
        "plotly-finance.min.js",
        "socket.io.min.js",
        "thin.js",
        "app.js",
        "app.css",
        "favicon.svg",
    }
    for link in links:
        status, headers, body = get(base + link, Accept_Encoding="gzip")
        assert status == 200 and headers["Cache-Control"] == YEAR, link
        assert headers["Content-Encoding"] == "gzip" and headers["Vary"] == "Accept-Encoding"
        plain = gzip.decompress(body)
        assert hashlib.sha256(plain).hexdigest()[:12] in link  # the name is the content's
        name = re.sub(r"\.[0-9a-f]{12}\.", ".", link.removeprefix("/static/"))
        assert plain == assets.FILES[name].read_bytes()
        # A client that does not take gzip gets the same bytes, plain.
        status, headers, body = get(base + link)
        assert status == 200 and "Content-Encoding" not in headers and body == plain


@pytest.mark.parametrize("mode", MODES)
def test_the_page_and_plain_names_are_revalidated(gateways: Pipeline, mode: str) -> None:
    base, _ = page_of(gateways, mode)
    for path in ("/", "/static/app.js", "/static/plotly.min.js"):
        status, headers, _ = get(base + path, Accept_Encoding="gzip")
        assert status == 200 and headers["Cache-Control"] == "no-cache", path
        status, again, body = get(
            base + path, Accept_Encoding="gzip", If_None_Match=headers["ETag"]
        )
        assert (status, body) == (304, b""), path
        assert again["ETag"] == headers["ETag"]
        # The plain form has its own ETag: a cached gzip body is not taken for it.
        status, _, _ = get(base + path, If_None_Match=headers["ETag"])
        assert status == 200, path


@pytest.mark.parametrize("mode", MODES)
def test_what_is_not_a_file_is_never_cached(gateways: Pipeline, mode: str) -> None:
    base = gateways.url(f"gateway-{mode}")
    for path in ("/healthz", "/metrics"):
        status, headers, _ = get(base + path)
        assert status == 200 and headers["Cache-Control"] == "no-store", path
    status, headers, _ = get(base + "/static/nothing.js")
    assert status == 404 and headers["Cache-Control"] == "no-store"
    # Another release's name for a file (a page from a gateway mid-deploy): today's file,
    # but revalidated, not kept for a year under a name that is not its content's.
    status, headers, body = get(base + "/static/app.0123456789ab.js")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    assert body == assets.FILES["app.js"].read_bytes()


def test_a_repeat_visit_downloads_no_script_again(gateways: Pipeline) -> None:
    url = gateways.url("gateway-asyncio") + "/?symbols=AAPL"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            network: dict[str, dict[str, Any]] = {}
            cdp.on(
                "Network.responseReceived",
                lambda e: network.setdefault(e["requestId"], {}).update(
                    type=e["type"], url=e["response"]["url"]
                ),
            )
            cdp.on(
                "Network.requestServedFromCache",
                lambda e: network.setdefault(e["requestId"], {}).update(cached=True),
            )
            cdp.on(
                "Network.loadingFinished",
                lambda e: network.setdefault(e["requestId"], {}).update(
                    bytes=e["encodedDataLength"]
                ),
            )
            page.goto(url, wait_until="load")
            first = downloaded_scripts(network)
            assert len(first) == 4, first  # plotly.js, socket.io, thin.js, app.js
            network.clear()
            page.goto("about:blank")
            page.goto(url, wait_until="load")
            assert page.evaluate("() => typeof Plotly.react") == "function"
            assert downloaded_scripts(network) == []
        finally:
            browser.close()


def downloaded_scripts(network: dict[str, dict[str, Any]]) -> list[str]:
    """The scripts whose bytes came over the network, not from the browser's cache."""
    return [
        r["url"]
        for r in network.values()
        if r.get("type") == "Script" and not r.get("cached") and r.get("bytes", 0) > 0
    ]


def test_the_finance_bundle_is_the_plotly_packages_plotly_js_minor_release() -> None:
    """The vendored bundle (gateway/static) is pinned; the plotly package brings its own
    plotly.js, whose figures the renderer writes. They may differ in the patch release only
    (npm has no finance bundle of every patch)."""

    def version(path: Any) -> tuple[int, ...]:
        head = path.read_bytes()[:200].decode()
        found = re.search(r"plotly\.js .*?v(\d+)\.(\d+)\.(\d+)", head)
        assert found, head
        return tuple(int(part) for part in found.groups())

    finance = version(assets.FILES["plotly-finance.min.js"])
    package = version(assets.PLOTLY_JS)
    assert finance == (4, 1, 0)  # pinned: change with the file, on purpose
    assert finance[:2] == package[:2], (finance, package, plotly.__version__)


@pytest.mark.parametrize(
    ("header", "takes"),
    [
        ("gzip, deflate, br", True),
        ("GZIP", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("*", True),
        ("identity", False),
        ("", False),
    ],
)
def test_gzip_only_when_the_client_takes_it(header: str, takes: bool) -> None:
    assert assets.accepts_gzip(header) is takes
