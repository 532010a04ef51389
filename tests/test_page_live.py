"""The page under a fast stream of live updates, in a real browser: no view warns or
fails, every view ends up holding what a fresh page holds, and a chart nobody can see
takes its updates without drawing them.

A renderer and a gateway on a private Redis; the test writes the bars itself, as the
fetcher would, on a clock that runs 15 s a write, so the minute in progress changes on
every write, a new bar starts every four and the window moves on: every kind of delta
(the last bar, new bars, a `head` for the window's first bars) arrives several times a
second.
"""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage
from test_page import Tab

from common.bars import MINUTE, floor_minute
from common.contract.keys import Keys
from common.views import View
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from renderer.views import frame_of, view_figure, view_style
from renderer.window import Window, rows_of
from support import Pipeline, running, wait_until

pytestmark = pytest.mark.e2e

WINDOW = 390  # minutes, as the other page tests
SIMULATED_STEP = 15  # seconds of the market's clock per write
WRITES_PER_SECOND = 8
# Every chart type, timeframe, indicator and volume setting, each at least once.
VIEWS = {
    "AAPL": "",  # the article's: mountain, 1m, no volume
    "TSLA": "candles,5m,sma20",  # volume by default
    "MSFT": "ohlc,15m,sma50,ema20",
    "BRK-B": "candles,1h,vwap,novolume",
    "NVDA": "mountain,1d,sma20,volume",
}
KEYS = {
    "AAPL": "",
    "TSLA": "candles.5m.sma20.vol",
    "MSFT": "ohlc.15m.sma50.ema20.vol",
    "BRK-B": "candles.1h.vwap",
    "NVDA": "mountain.1d.sma20.vol",
}
UP, DOWN = "#26a69a", "#ef5350"  # the volume bars' colours (renderer/views.py)


def views_url(base: str, symbols: list[str] | None = None) -> str:
    symbols = symbols or list(VIEWS)
    views = "".join(f"&{s}={VIEWS[s]}" for s in symbols if VIEWS[s])
    return f"{base}/?symbols={','.join(symbols)}{views}"


class Writer(threading.Thread):
    """Bars of every symbol written as the fetcher would, on a fast clock, until stopped."""

    def __init__(self, pipeline: Pipeline, symbols: list[str]) -> None:
        super().__init__(daemon=True)
        self.store = BarStore(pipeline.client, Keys(), WINDOW)
        self.source = SyntheticSource()
        self.symbols = symbols
        self.now = time.time()
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.write(since={s: self.store.window_start(self.now) for s in symbols})

    def write(self, since: dict[str, int]) -> None:
        fetched = self.source.fetch(since, self.now)
        for symbol in self.symbols:
            self.store.upsert(
                symbol,
                fetched.bars[symbol],
                as_of=self.now,
                now=self.now,
                market=fetched.markets[symbol],
            )

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.running.wait(0.1):
                self.now += SIMULATED_STEP
                self.write({s: floor_minute(self.now) - MINUTE for s in self.symbols})
                time.sleep(1 / WRITES_PER_SECOND)

    def pause(self) -> None:
        self.running.clear()
        time.sleep(2 / WRITES_PER_SECOND)  # a write under way finishes


@pytest.fixture(scope="module")
def stack() -> Iterator[Pipeline]:
    with running("renderer", "gateway", symbols=",".join(VIEWS)) as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def writer(stack: Pipeline) -> Iterator[Writer]:
    thread = Writer(stack, list(VIEWS))
    thread.start()
    yield thread
    thread.stopping.set()
    thread.join(5)


class WatchedTab(Tab):
    """A Tab that also keeps every console message plotly.js or the page writes: plotly.js
    warns with console.trace ("WARN: ..."), and errs with console.error."""

    NOISE = frozenset({"warning", "error", "trace", "assert"})

    def __init__(self, browser: Browser, url: str, **context: Any) -> None:
        self.console: list[str] = []
        super().__init__(browser, "about:blank", **context)
        self.page.on("console", self._console)
        self.page.goto(url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in self.NOISE or message.text.startswith(("WARN", "ERROR")):
            self.console.append(f"{message.type}: {message.text}")

    def charts(self) -> dict[str, dict[str, Any]]:
        """Per symbol: the view, seq, deltas applied, draws, and whether seen and drawn."""
        return dict(
            self.page.evaluate("""() => Object.fromEntries([...window.rtplot.charts].map(
                ([symbol, c]) => [symbol, {key: c.viewKey, seq: c.seq, deltas: c.deltas,
                    draws: c.draws, drawn: c.drawn, seen: c.seen, held: !!c.data,
                    dirty: c.dirty}]))""")
        )

    def held(self, symbol: str) -> dict[str, Any]:
        """What the chart holds: every trace's arrays, its line colour, its y range."""
        return dict(
            self.page.evaluate(
                """symbol => {
                const c = window.rtplot.charts.get(symbol);
                const arrays = c.data.map((t) => {
                    const out = {type: t.type, x: [...t.x]};
                    for (const name of ["y", "open", "high", "low", "close"]) {
                        if (t[name]) out[name] = [...t[name]];
                    }
                    if (t.type === "bar") out["marker.color"] = [...t.marker.color];
                    return out;
                });
                return {seq: c.seq, arrays, color: (c.data[0].line || {}).color,
                        y_range: c.layout.yaxis.range};
            }""",
                symbol,
            )
        )

    def drawn_colours(self, symbol: str) -> dict[str, Any]:
        """The colours Plotly drew: the volume bars' fills (main plot, not the range
        slider) and the price line's stroke."""
        return dict(
            self.page.evaluate(
                """symbol => {
                const plot = window.rtplot.charts.get(symbol).plot;
                const main = plot.querySelector(".cartesianlayer");
                const fills = [...main.querySelectorAll(".barlayer .point path")]
                    .map((p) => getComputedStyle(p).fill);
                const line = main.querySelector(".scatterlayer .js-line");
                return {bars: fills, line: line ? getComputedStyle(line).stroke : null};
            }""",
                symbol,
            )
        )


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def wait_live(tab: WatchedTab, deltas: int, timeout: float) -> dict[str, dict[str, Any]]:
    """Until every chart shows its view and has applied ``deltas`` deltas."""

    def live() -> dict[str, dict[str, Any]] | None:
        charts = tab.charts()
        ready = len(charts) == len(VIEWS) and all(
            c["key"] == KEYS[s] and c["deltas"] >= deltas for s, c in charts.items()
        )
        return charts if ready else None

    return dict(
        wait_until(live, timeout=timeout, interval=0.25, message=f"every view, {deltas} deltas")
    )


def test_no_view_warns_or_fails_while_live(
    stack: Pipeline, writer: Writer, browser: Browser
) -> None:
    writer.running.set()
    tab = WatchedTab(
        browser, views_url(stack.url("gateway")), viewport={"width": 1400, "height": 1700}
    )
    try:
        charts = wait_live(tab, 20, timeout=90)
        assert all(c["seen"] and c["drawn"] for c in charts.values()), charts
        assert tab.console == [] and tab.errors == []
        # The volume bars are drawn in their two colours (not black, as on numbers).
        for symbol in ("TSLA", "MSFT", "NVDA"):
            fills = set(tab.drawn_colours(symbol)["bars"])
            assert fills and fills <= {rgb(UP), rgb(DOWN)}, (symbol, fills)
        # A range slider on the article's chart only (plotly.js would give candles and
        # OHLC one of their own: renderer/figure.py time_axis).
        sliders = tab.page.evaluate("""() => Object.fromEntries([...window.rtplot.charts].map(
            ([s, c]) => [s, c.plot.querySelectorAll(".rangeslider-container").length]))""")
        assert sliders == {symbol: int(not VIEWS[symbol]) for symbol in VIEWS}, sliders
        tab.screenshot("live-views.png")
    finally:
        tab.close()


def test_after_120_deltas_every_view_holds_what_a_fresh_page_holds(
    stack: Pipeline, writer: Writer, browser: Browser
) -> None:
    writer.running.set()
    size = {"viewport": {"width": 1400, "height": 1700}}
    live = WatchedTab(browser, views_url(stack.url("gateway")), **size)
    try:
        wait_live(live, 120, timeout=150)
        writer.pause()
        fresh = WatchedTab(browser, views_url(stack.url("gateway")), **size)
        try:
            for symbol in VIEWS:
                # Both at the last render's seq: the live page by its deltas, the fresh
                # one by the snapshot and its catch-up.
                same = wait_until(
                    lambda s=symbol: (
                        (
                            (a := live.held(s))["seq"] == (b := fresh.held(s))["seq"]
                            and a["seq"]
                            == int(stack.client.hget(Keys().snapshot(s, KEYS[s]), "head"))
                            and (a, b)
                        )
                        if fresh.charts().get(s, {}).get("held")
                        else False
                    ),
                    timeout=30,
                    message=f"{symbol} at the same seq on both pages",
                )
                assert same[0] == same[1], symbol
                wait_until(  # both drawn as they are now (a live redraw may wait its turn)
                    lambda s=symbol: (
                        not live.charts()[s]["dirty"] and not fresh.charts()[s]["dirty"]
                    ),
                    timeout=10,
                    message=f"{symbol} drawn on both pages",
                )
                assert live.drawn_colours(symbol) == fresh.drawn_colours(symbol), symbol
            assert live.console == fresh.console == [] and live.errors == fresh.errors == []
        finally:
            fresh.close()
    finally:
        live.close()


def test_a_chart_nobody_can_see_takes_its_updates_without_drawing(
    stack: Pipeline, writer: Writer, browser: Browser
) -> None:
    writer.running.set()
    symbols = list(VIEWS)
    # Two charts to a row, three rows: in a 600 px high viewport the last row is out of view.
    tab = WatchedTab(
        browser, views_url(stack.url("gateway"), symbols), viewport={"width": 1400, "height": 600}
    )
    try:
        below = symbols[-1]
        wait_until(
            lambda: (c := tab.charts()[below])["held"] and c["deltas"] >= 10,
            timeout=60,
            message=f"{below} taking deltas out of view",
        )
        chart = tab.charts()[below]
        assert not chart["seen"] and chart["draws"] == 0 and not chart["drawn"]
        # Frames draw what changed, once: far fewer draws than deltas on the charts in view.
        first = tab.charts()[symbols[0]]
        assert first["draws"] >= 1 and first["draws"] <= first["deltas"] + 1
        tab.page.locator(f'[data-symbol="{below}"]').scroll_into_view_if_needed()
        drawn = wait_until(
            lambda: (c := tab.charts()[below])["drawn"] and c,
            timeout=5,
            message=f"{below} drawn once it is seen",
        )
        assert drawn["draws"] <= 2  # once, or once more if an update came in between
        # A hidden tab (headless Chromium has none: the page is told as a browser tells it).
        tab.page.evaluate("""() => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
            Object.defineProperty(document, "visibilityState",
                                  {configurable: true, get: () => "hidden"});
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
        hidden = tab.charts()
        time.sleep(3)
        later = tab.charts()
        for symbol in symbols:
            assert later[symbol]["deltas"] > hidden[symbol]["deltas"], symbol
            assert later[symbol]["draws"] == hidden[symbol]["draws"], symbol
        tab.page.evaluate("""() => {
            delete document.hidden;
            delete document.visibilityState;
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
        wait_until(
            lambda: tab.charts()[below]["draws"] > later[below]["draws"],
            timeout=5,
            message="drawn again when the tab is shown",
        )
        assert tab.console == [] and tab.errors == []
    finally:
        tab.close()


def test_the_finance_bundle_draws_every_trace_type_the_renderer_emits(
    stack: Pipeline, browser: Browser
) -> None:
    kinds: set[str] = set()
    window = _window()
    for key in ("candles.1m.sma20.vol", "ohlc.5m.vwap.vol", "mountain.1m.ema20.vol"):
        frame = frame_of(window, View.from_key(key))
        kinds |= {t["type"] for t in view_figure("X", frame, view_style(frame))["data"]}
    page = browser.new_page()
    try:
        page.goto(stack.url("gateway") + "/healthz")
        page.add_script_tag(url="/static/plotly-finance.min.js")
        registered = set(page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces)"))
        assert kinds == {"scatter", "candlestick", "ohlc", "bar"}
        assert kinds <= registered, kinds - registered
    finally:
        page.close()


def _window() -> Window:
    now = time.time()
    bars = SyntheticSource().fetch({"X": int(now) - 3 * 86_400}, now).bars["X"]
    return Window("X", 1, rows_of([b.as_list() for b in bars]))
