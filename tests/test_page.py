"""The page in a real browser (Debian's chromium, driven by Playwright) on a real pipeline."""

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import orjson
import pytest
from playwright.sync_api import Browser, Page

from support import ARTIFACTS, Pipeline, record_reliability, running, wait_until

pytestmark = pytest.mark.e2e

SCREENSHOTS = ARTIFACTS / "screenshots"
FOUR = "AAPL,TSLA,BRK-B,MSFT"


@pytest.fixture(scope="module")
def stack() -> Iterator[Pipeline]:
    """worker, beat, renderer and one gateway (restarted on its own port by a test)."""
    services = ("worker", "beat", "renderer", "gateway")
    with running(*services, symbols="AAPL,MSFT,TSLA,BRK-B") as pipeline:
        yield pipeline


def page_url(stack: Pipeline) -> str:
    return stack.url("gateway") + "/"


class Tab:
    """A page that records every request it makes and every script error."""

    def __init__(self, browser: Browser, url: str, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(url)

    def state(self, symbol: str) -> dict[str, Any]:
        return dict(
            self.page.evaluate(
                """symbol => {
                const chart = window.rtplot.charts.get(symbol);
                if (!chart || !chart.drawn) return {seq: null};
                const trace = chart.data[0];
                return {seq: chart.seq, x: [...trace.x], y: [...trace.y],
                        updated: chart.card.querySelector('.updated').textContent,
                        status: chart.card.dataset.status,
                        range: chart.plot.layout.xaxis.range,
                        autorange: chart.plot.layout.xaxis.autorange};
            }""",
                symbol,
            )
        )

    def wait_drawn(self, symbol: str, timeout: float = 20) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (s := self.state(symbol))["seq"] is not None and s,
                timeout=timeout,
                message=f"{symbol} drawn",
            )
        )

    def wait_seq_after(self, symbol: str, seq: int, timeout: float = 15) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (s := self.state(symbol))["seq"] is not None and s["seq"] > seq and s,
                timeout=timeout,
                message=f"{symbol} past seq {seq}",
            )
        )

    def stats(self) -> dict[str, int]:
        return dict(self.page.evaluate("() => window.rtplot.stats"))

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(stack: Pipeline, browser: Browser) -> Iterator[Tab]:
    opened = Tab(
        browser, f"{page_url(stack)}?symbols={FOUR}", viewport={"width": 1280, "height": 900}
    )
    yield opened
    assert opened.errors == []
    opened.close()


def test_four_live_charts_draw_and_update(stack: Pipeline, tab: Tab) -> None:
    for symbol in FOUR.split(","):
        state = tab.wait_drawn(symbol)
        assert len(state["x"]) == 390 and len(state["y"]) == 390
    first = tab.state("TSLA")
    # A tick may move only the volume; within a few the price moves too.
    later = wait_until(
        lambda: (
            (s := tab.state("TSLA"))["y"] != first["y"] and s["updated"] != first["updated"] and s
        ),
        timeout=20,
        message="TSLA's points and update time to change",
    )
    assert later["seq"] > first["seq"] and later["x"][-1] >= first["x"][-1]
    assert later["status"] == "live"
    price = tab.page.locator('[data-symbol="TSLA"] .price').text_content()
    assert price == f"{later['y'][-1]:.2f}" or tab.state("TSLA")["seq"] > later["seq"]
    assert "synthetic" in (tab.page.locator("#source").text_content() or "")
    assert tab.stats()["deltasApplied"] >= 1
    tab.screenshot("four-charts.png")


def test_adding_and_removing_symbols(stack: Pipeline, tab: Tab) -> None:
    tab.wait_drawn("AAPL")
    tab.page.fill("#symbol-input", "nvda")
    tab.page.press("#symbol-input", "Enter")
    state = tab.wait_drawn("NVDA")
    assert len(state["y"]) == 390  # an unconfigured symbol, tracked and backfilled
    assert "NVDA" in tab.page.url
    tab.page.fill("#symbol-input", "not a symbol!")
    tab.page.click("#add-form button")
    error = tab.page.locator("#add-error")
    wait_until(
        lambda: "is not a valid symbol" in (error.text_content() or ""),
        timeout=5,
        message="the gateway's error shown inline",
    )
    assert tab.page.locator('[data-symbol="NOT A SYMBOL!"]').count() == 0
    tab.page.click('[data-symbol="NVDA"] .remove')
    assert tab.page.locator('[data-symbol="NVDA"]').count() == 0
    assert "NVDA" not in tab.page.url
    tab.screenshot("add-and-remove.png")


def test_the_chosen_set_survives_a_reload(stack: Pipeline, browser: Browser) -> None:
    tab = Tab(browser, page_url(stack) + "?symbols=MSFT")
    try:
        tab.wait_drawn("MSFT")
        tab.page.fill("#symbol-input", "TSLA")
        tab.page.press("#symbol-input", "Enter")
        tab.wait_drawn("TSLA")
        tab.page.goto(page_url(stack))  # no ?symbols: local storage remembers
        tab.wait_drawn("TSLA")
        tab.wait_drawn("MSFT")
        assert tab.page.locator(".card").count() == 2
    finally:
        tab.close()


def test_zoom_survives_updates(stack: Pipeline, tab: Tab) -> None:
    tab.wait_drawn("TSLA")
    card = tab.page.locator('[data-symbol="TSLA"]')
    card.locator(".rangeselector .button", has_text="15m").click()
    zoomed = wait_until(
        lambda: (s := tab.state("TSLA"))["autorange"] is False and s,
        timeout=5,
        message="the 15m zoom",
    )
    span = _ms(zoomed["range"][1]) - _ms(zoomed["range"][0])
    assert abs(span - 15 * 60_000) < 2_000
    later = tab.wait_seq_after("TSLA", zoomed["seq"] + 2)
    assert later["range"] == zoomed["range"]
    assert later["autorange"] is False
    tab.screenshot("zoom-15m.png")


def test_deltas_keep_the_page_equal_to_the_full_snapshot(stack: Pipeline, tab: Tab) -> None:
    tab.wait_drawn("BRK-B")
    start = tab.stats()["deltasApplied"]
    wait_until(
        lambda: tab.stats()["deltasApplied"] >= start + 3 * 4, timeout=20, message="a dozen deltas"
    )
    # A whole figure is stored every few seconds (RTPLOT_SNAPSHOT_EVERY), the page moves
    # every second: they share a seq for about a second after each store.
    for _ in range(120):
        page = tab.state("BRK-B")
        stored = stack.snapshot("BRK-B")
        if stored["seq"] == page["seq"]:
            trace = stored["figure"]["data"][0]
            assert (page["x"], page["y"]) == (trace["x"], trace["y"])
            break
        time.sleep(0.1)
    else:
        pytest.fail("never caught the page and the snapshot at the same seq")
    assert tab.stats()["gaps"] == 0


def test_no_request_leaves_the_machine(stack: Pipeline, tab: Tab) -> None:
    tab.wait_drawn("AAPL")
    tab.wait_seq_after("AAPL", tab.state("AAPL")["seq"])
    hosts = {urlparse(url).hostname for url in tab.requests}
    assert hosts == {"127.0.0.1"}, tab.requests
    # Each by its content-addressed name (gateway/assets.py), Plotly.js as its finance bundle.
    for name in (r"plotly-finance\.min\.[0-9a-f]{12}\.js", r"socket\.io\.min\.[0-9a-f]{12}\.js"):
        assert any(re.search(f"/static/{name}$", url) for url in tab.requests), name


def test_the_page_fits_a_phone(stack: Pipeline, browser: Browser) -> None:
    tab = Tab(
        browser,
        f"{page_url(stack)}?symbols=AAPL,TSLA",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    try:
        tab.wait_drawn("AAPL")
        overflow = tab.page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0
        tab.screenshot("phone.png")
    finally:
        tab.close()


def test_the_page_recovers_by_itself_after_the_gateway_restarts(stack: Pipeline, tab: Tab) -> None:
    """... and resumes every chart from the seq it held: no figure is sent again."""
    before = tab.wait_drawn("MSFT")
    for symbol in FOUR.split(","):
        tab.wait_drawn(symbol)
    stats = "() => ({...window.rtplot.stats})"
    held = tab.page.evaluate(stats)
    received: list[int] = []  # bytes of each WebSocket message from the next connection on
    tab.page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: received.append(len(payload))),
    )
    stack.services["gateway"].kill()
    wait_until(
        lambda: tab.page.evaluate("() => document.body.dataset.connection") == "reconnecting",
        timeout=10,
        message="the page to notice",
    )
    assert tab.page.locator('[data-symbol="MSFT"]').get_attribute("data-status") == "reconnecting"
    tab.screenshot("gateway-down.png")
    stack.restart("gateway")  # on the same port: the page reconnects to it
    restarted_at = time.monotonic()
    wait_until(
        lambda: tab.page.evaluate("() => document.body.dataset.connection") == "live",
        timeout=20,
        message="the page to reconnect",
    )
    after = tab.wait_seq_after("MSFT", before["seq"] + 2, timeout=20)
    assert after["status"] == "live"
    now = tab.page.evaluate(stats)
    assert now["resumes"] - held["resumes"] == len(FOUR.split(","))
    assert now["snapshots"] == held["snapshots"] and now["gaps"] == held["gaps"]
    downloaded = sum(received)  # the handshake, four resumes, a few live updates
    assert downloaded < 10_000, downloaded
    assert tab.page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
    record_reliability(
        "faults",
        {
            "fault": "the only gateway killed (SIGKILL) under an open page, then restarted",
            "outcome": "the page showed 'reconnecting', reconnected by itself, resubscribed and "
            "resumed updates without a reload",
            "recovery_s": round(time.monotonic() - restarted_at, 1),
            "lost": "nothing: each chart resumed from the seq it held (one `bars` event, "
            f"no figure sent again; {downloaded / 1000:.1f} kB over the WebSocket until two "
            "updates later)",
        },
    )


def test_a_chart_says_stale_when_updates_stop(stack: Pipeline, tab: Tab) -> None:
    tab.wait_drawn("AAPL")
    stack.services["worker"].stop()
    try:
        wait_until(
            lambda: tab.state("AAPL")["status"] == "stale",
            timeout=15,
            message="AAPL to be marked stale",
        )
        tab.screenshot("stale.png")
    finally:
        stack.restart("worker")
    tab.wait_seq_after("AAPL", tab.state("AAPL")["seq"], timeout=30)
    assert tab.state("AAPL")["status"] == "live"


def _ms(value: Any) -> float:
    """A plotly date-axis bound (a date string or epoch ms) in epoch ms."""
    if isinstance(value, (int, float)):
        return float(value)
    from datetime import datetime

    text = str(value).replace(" ", "T")
    return datetime.fromisoformat(text + "+00:00").timestamp() * 1000


ARTICLE_CLIENT = """<!doctype html>
<html><head>
<script src="/static/plotly.min.js"></script>
<script src="/static/socket.io.min.js"></script>
</head><body><div id="graph" style="height:400px"></div>
<script>
  // What the article's React client does: emit ping_graph on connect, JSON.parse each
  // graph_plot and hand the figure to Plotly.
  window.received = 0;
  const socket = io();
  socket.on("connect", () => socket.emit("ping_graph", {symbol: "ril.ns"}));
  socket.on("graph_plot", (data) => {
    const figure = JSON.parse(data);
    Plotly.react("graph", figure.data, figure.layout);
    window.received += 1;
  });
</script></body></html>"""


def test_the_articles_client_renders_graph_plot_in_a_browser(
    stack: Pipeline, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Served as if from the gateway's own origin, as the article's app would be.
    page.route(
        page_url(stack) + "article-client.html",
        lambda route: route.fulfill(body=ARTICLE_CLIENT, content_type="text/html"),
    )
    try:
        page.goto(page_url(stack) + "article-client.html")
        wait_until(
            lambda: page.evaluate("() => window.received") >= 2,
            timeout=20,
            message="two graph_plot events",
        )
        drawn = page.evaluate("""() => {
            const gd = document.getElementById('graph');
            return {points: gd.data[0].y.length, fill: gd.data[0].fill,
                    title: gd.layout.title.text};
        }""")
        assert drawn == {"points": 390, "fill": "tozeroy", "title": "RIL.NS"}
        assert page.locator("#graph .scatterlayer .trace").count() == 2  # plot + range slider
        assert errors == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "article-client.png"))
    finally:
        context.close()


# -- views -----------------------------------------------------------------------------

VIEWS_PAGE = "?symbols=AAPL,TSLA&TSLA=ohlc,sma20,ema20,vwap"


def traces(tab: Tab, symbol: str) -> dict[str, Any]:
    """The chart's view key, seq and every trace's arrays, as the page holds them."""
    return dict(
        tab.page.evaluate(
            """symbol => {
            const chart = window.rtplot.charts.get(symbol);
            if (!chart || !chart.drawn) return {seq: null};
            const arrays = chart.data.map((t) => {
                const out = {x: [...t.x]};
                for (const name of ["y", "open", "high", "low", "close"]) {
                    if (t[name]) out[name] = [...t[name]];
                }
                if (t.type === "bar") out["marker.color"] = [...t.marker.color];
                return out;
            });
            return {seq: chart.seq, key: chart.viewKey, types: chart.data.map(t => t.type),
                    arrays, y_range: chart.layout.yaxis.range};
        }""",
            symbol,
        )
    )


def wait_view(tab: Tab, symbol: str, key: str, timeout: float = 20) -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: (s := traces(tab, symbol))["seq"] is not None and s["key"] == key and s,
            timeout=timeout,
            message=f"{symbol} drawn as {key or 'the default view'}",
        )
    )


def test_every_view_is_offered_on_the_card_and_kept_in_the_address(
    stack: Pipeline, browser: Browser
) -> None:
    tab = Tab(browser, page_url(stack) + VIEWS_PAGE, viewport={"width": 1280, "height": 900})
    try:
        assert wait_view(tab, "TSLA", "ohlc.1m.sma20.ema20.vwap.vol")["types"] == [
            "ohlc", "scatter", "scatter", "scatter", "bar"
        ]  # fmt: skip
        card = tab.page.locator('[data-symbol="AAPL"]')
        wait_view(tab, "AAPL", "")
        card.locator('[data-chart="candles"]').click()
        assert wait_view(tab, "AAPL", "candles.1m.vol")["types"] == ["candlestick", "bar"]
        card.locator('[data-timeframe="5m"]').click()
        card.locator('[data-indicator="sma50"]').click()
        card.locator("[data-volume]").click()
        state = wait_view(tab, "AAPL", "candles.5m.sma50")
        assert state["types"] == ["candlestick", "scatter"]
        assert all(
            b - a == 300_000
            for a, b in zip(state["arrays"][0]["x"], state["arrays"][0]["x"][1:], strict=False)
        )
        pressed = card.locator('[aria-pressed="true"]').all_text_contents()
        assert pressed == ["Candles", "5m", "SMA 50"]
        assert "AAPL=candles,5m,sma50,novolume" in tab.page.url
        assert "TSLA=ohlc,sma20,ema20,vwap" in tab.page.url
        for timeframe in ("15m", "1h", "1d"):
            card.locator(f'[data-timeframe="{timeframe}"]').click()
            wait_view(tab, "AAPL", f"candles.{timeframe}.sma50")
        tab.page.goto(page_url(stack))  # no address: local storage remembers every view
        wait_view(tab, "AAPL", "candles.1d.sma50")
        wait_view(tab, "TSLA", "ohlc.1m.sma20.ema20.vwap.vol")
        tab.page.goto(page_url(stack) + "?symbols=AAPL,MSFT&view=candles,5m")  # one for all
        wait_view(tab, "AAPL", "candles.5m.vol")
        wait_view(tab, "MSFT", "candles.5m.vol")
        assert tab.errors == []
    finally:
        tab.close()


def test_each_views_figure_is_valid_for_plotly_js_and_its_deltas_rebuild_it(
    stack: Pipeline, browser: Browser
) -> None:
    from page_model import PageChart

    from common.contract.keys import Keys

    tab = Tab(
        browser,
        page_url(stack) + VIEWS_PAGE + "&AAPL=candles,15m,sma20",
        viewport={"width": 1280, "height": 900},
    )
    try:
        for symbol, key in (
            ("TSLA", "ohlc.1m.sma20.ema20.vwap.vol"),
            ("AAPL", "candles.15m.sma20.vol"),
        ):
            wait_view(tab, symbol, key)
            if symbol == "TSLA":  # a minute passes: the window moves on, the deltas' heads
                wait_until(lambda: tab.stats()["heads"] >= 1, timeout=75, message="a head")
            start = tab.stats()["deltasApplied"]
            wait_until(
                lambda s=start: tab.stats()["deltasApplied"] >= s + 4, timeout=20, message="deltas"
            )
            for _ in range(120):
                page = traces(tab, symbol)
                raw = stack.client.hget(Keys().snapshot(symbol, key), "payload")
                stored = orjson.loads(raw) if raw else {"seq": -1}
                if stored["seq"] == page["seq"]:
                    chart = PageChart(stored)
                    assert page["arrays"] == chart.traces and page["y_range"] == chart.y_range
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"never caught the page and {symbol}'s snapshot at the same seq")
            problems = tab.page.evaluate(
                "f => Plotly.validate(f.data, f.layout) || []", stored["figure"]
            )
            assert problems == []
        assert tab.stats()["gaps"] == 0 and tab.errors == []
    finally:
        tab.close()


def test_hover_shows_the_bars_exchange_time_and_its_ohlc_and_volume(
    stack: Pipeline, browser: Browser
) -> None:
    tab = Tab(
        browser,
        page_url(stack) + "?symbols=AAPL&view=candles,15m",
        viewport={"width": 1280, "height": 900},
    )
    try:
        state = wait_view(tab, "AAPL", "candles.15m.vol")
        box = tab.page.locator('[data-symbol="AAPL"] .plot').bounding_box()
        assert box is not None
        at = iter(range(10_000))

        def hovered() -> str | None:
            """Moving along the price, as a person's mouse does: a chart of 1,500 bars
            draws a candle every 6 pixels (thin.js), and between two there is no label."""
            step = next(at)
            x = box["x"] + box["width"] * (0.6 + (step % 40) * 0.005)
            tab.page.mouse.move(x, box["y"] + box["height"] * 0.3)
            return tab.page.locator('[data-symbol="AAPL"] .hoverlayer').text_content() or None

        label = wait_until(hovered, timeout=10, message="a hover label")
        for word in ("open: ", "high: ", "low: ", "close: ", "Volume"):
            assert word in label
        # The bar's start on New York's clock, as the axis shows it.
        shown = {
            datetime.fromtimestamp(x / 1000, UTC).strftime("%a %d %b %Y, %H:%M")
            for x in state["arrays"][0]["x"]
        }
        assert any(label.startswith(text) for text in shown), label
        tab.screenshot("hover-candles.png")
    finally:
        tab.close()


def test_a_screenshot_of_each_chart_type(stack: Pipeline, browser: Browser) -> None:
    """For the README (docs/images/chart-*.png are copies)."""
    views = "AAPL=candles,5m&TSLA=ohlc,5m,sma20,ema20&MSFT=sma20,volume"
    tab = Tab(
        browser,
        page_url(stack) + f"?symbols=AAPL,TSLA,MSFT&{views}",
        viewport={"width": 1280, "height": 900},
    )
    try:
        for symbol, key, name in (
            ("AAPL", "candles.5m.vol", "candles"),
            ("TSLA", "ohlc.5m.sma20.ema20.vol", "ohlc"),
            ("MSFT", "mountain.1m.sma20.vol", "mountain"),
        ):
            seq = wait_view(tab, symbol, key)["seq"]
            wait_until(
                lambda s=symbol, q=seq: traces(tab, s)["seq"] > q, timeout=20, message="live"
            )
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            card = tab.page.locator(f'[data-symbol="{symbol}"]')
            card.screenshot(path=str(SCREENSHOTS / f"chart-{name}.png"))
        tab.screenshot("views.png")
        assert tab.errors == []
    finally:
        tab.close()
