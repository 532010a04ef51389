"""Views end to end: the real services as processes, the synthetic market keeping its
exchanges' hours (RTPLOT_MARKET_HOURS=exchange), real Socket.IO clients."""

import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from page_model import PageChart

from support import ARTIFACTS, Listener, Pipeline, running, wait_until

pytestmark = pytest.mark.e2e

GATEWAYS = {"asyncio": "asyncio", "eventlet": "eventlet"}  # label: mode
CANDLES = {"symbol": "AAPL", "chart": "candles", "timeframe": "5m"}
# Bitcoin trades on weekends too: live whatever the day the tests run.
SCREENSHOTS = ARTIFACTS / "screenshots"
LIVE = {"symbol": "BTC-USD", "chart": "ohlc", "timeframe": "1m", "indicators": ["sma20", "ema20"]}


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    gateways = [(f"gateway-{label}", "gateway", "--mode", mode) for label, mode in GATEWAYS.items()]
    with running(
        "worker",
        "beat",
        "renderer",
        *gateways,
        symbols="AAPL,BTC-USD",
        market_hours="exchange",
        window_minutes=7 * 24 * 60,  # a week: sessions, nights and a weekend
    ) as stack:
        wait_until(lambda: stack.snapshot_seq("AAPL"), timeout=60, message="AAPL's first figure")
        yield stack


@pytest.fixture(params=list(GATEWAYS))
def listener(request: pytest.FixtureRequest, pipeline: Pipeline) -> Iterator[Listener]:
    client = Listener(pipeline.url(f"gateway-{request.param}"))
    yield client
    client.close()


def test_five_minute_candles_with_a_volume_pane_in_new_york_hours(listener: Listener) -> None:
    assert listener.call("subscribe", CANDLES) == {"ok": True, "symbol": "AAPL"}
    update, _ = listener.next("figure", timeout=15, where=lambda d: d.get("view"))
    assert update["view"] == "candles.5m.vol" and update["symbol"] == "AAPL"
    candles, volume = update["figure"]["data"]
    assert (candles["type"], volume["type"], volume["yaxis"]) == ("candlestick", "bar", "y2")
    assert len(candles["x"]) == len(volume["x"]) >= 4 * 78  # four sessions or more
    starts = [datetime.fromtimestamp(x / 1000, UTC) for x in candles["x"]]  # New York time
    assert all(t.minute % 5 == 0 for t in starts)
    assert all(t.weekday() < 5 and "09:30" <= t.strftime("%H:%M") <= "15:55" for t in starts)
    layout = update["figure"]["layout"]
    assert layout["xaxis"]["title"]["text"] == "Time (New York)"
    assert layout["xaxis"]["rangebreaks"] == [
        {"pattern": "day of week", "bounds": [6, 1]},
        {"pattern": "hour", "bounds": [16.0, 9.5]},
    ]
    assert layout["yaxis2"]["domain"] == [0, 0.24]


DAILY = {"symbol": "AAPL", "chart": "candles", "timeframe": "1d", "indicators": ["sma50"]}


def daily_figure(listener: Listener) -> dict[str, Any]:
    """Subscribed to AAPL's daily candles: their figure once the history is in."""
    assert listener.call("subscribe", DAILY)["ok"]
    update, _ = listener.next(
        "figure",
        timeout=60,
        where=lambda d: (
            d.get("view") == "candles.1d.sma50.vol" and "meta" not in d["figure"]["layout"]
        ),
    )
    return dict(update)


def test_a_daily_chart_reaches_back_years_once_its_history_is_in(listener: Listener) -> None:
    """The worker fills the store's history after the minutes: the 1d chart then holds
    its 1,500 newest trading days (six years of New York's sessions), SMA 50 drawn on
    every one, not the 8 days of a week of minutes."""
    update = daily_figure(listener)
    candles, sma, volume = update["figure"]["data"]
    assert len(candles["x"]) == len(volume["x"]) == 1500 and None not in sma["y"]
    years = (candles["x"][-1] - candles["x"][0]) / 1000 / 86_400 / 365.25
    assert 5.5 < years < 6.5  # about 252 sessions a year
    starts = [datetime.fromtimestamp(x / 1000, UTC) for x in candles["x"]]
    assert all(t.weekday() < 5 and t.strftime("%H:%M") == "00:00" for t in starts)
    assert "meta" not in update["figure"]["layout"]  # not "loading history…" any more


def test_a_page_panning_back_is_sent_older_bars_with_their_indicator_values(
    pipeline: Pipeline, listener: Listener, request: pytest.FixtureRequest
) -> None:
    """The ``history`` event: the daily chart's 300 trading days before its first, in
    its ack, each row a delta's with the SMA 50 drawn on it; a bad request refused with
    what is wrong; clients asking the same at once share one read."""
    update = daily_figure(listener)
    first = update["figure"]["data"][0]["x"][0] // 1000
    ack = listener.call("history", {**DAILY, "before": first, "count": 300})
    assert ack["ok"] and ack["view"] == "candles.1d.sma50.vol" and ack["epoch"] == update["epoch"]
    rows = ack["rows"]
    assert len(rows) == 300 and not ack["oldest"] and ack["first"] == rows[0][0]
    assert [row[0] for row in rows] == sorted({row[0] for row in rows}) and rows[-1][0] < first
    assert all(len(row) == 7 and row[6] is not None and row[2] >= row[3] for row in rows)
    assert all(datetime.fromtimestamp(row[0], UTC).weekday() < 5 for row in rows)
    bad = listener.call("history", {**DAILY, "count": 300})
    assert bad == {"ok": False, "error": '"before" must be a time in seconds, as a row\'s x'}
    too_many = listener.call("history", {**DAILY, "before": first, "count": 100_000})
    assert too_many == {"ok": False, "error": '"count" must be a whole number from 1 to 2000'}
    gateway = pipeline.url(f"gateway-{request.node.callspec.params['listener']}")
    rows_before, shared_before = history_metrics(gateway)
    answers: list[Any] = []
    for _ in range(8):  # at once: most of them reach the gateway in one turn of its loop
        listener.client.emit(
            "history", {**DAILY, "before": first, "count": 50}, callback=answers.append
        )
    wait_until(lambda: len(answers) == 8, message="eight answers")
    assert all(got["rows"] == rows[-50:] for got in answers)
    rows_after, shared_after = history_metrics(gateway)
    assert rows_after - rows_before == 8 * 50
    assert shared_after > shared_before  # fewer reads of Redis than requests


def history_metrics(gateway: str) -> tuple[float, float]:
    """The gateway's history rows sent, and the history reads its clients shared."""
    with urllib.request.urlopen(gateway + "/metrics", timeout=5) as response:
        text = response.read().decode()
    sent = re.search(r"^rtplot_gateway_history_rows_total (\S+)$", text, re.MULTILINE)
    shared = re.search(
        r'^rtplot_gateway_reads_shared_total\{read="ReadPast"\} (\S+)$', text, re.MULTILINE
    )
    return float(sent[1]) if sent else 0.0, float(shared[1]) if shared else 0.0


def test_a_views_deltas_rebuild_its_figure(pipeline: Pipeline, listener: Listener) -> None:
    """A page holding the snapshot and applying every delta holds what a page asking for
    a snapshot later holds. (The test client runs each event in a thread of its own, so
    events are taken from what it received, by seq, not in the order it records them.)"""
    key = "ohlc.1m.sma20.ema20.vol"
    assert listener.call("subscribe", {**LIVE, "updates": "delta"})["ok"]
    page = PageChart(wait_until(lambda: received(listener, "figure"), message="the snapshot")[0])
    for _ in range(4):
        delta = advance(listener, page, page.seq + 1)
        assert delta["view"] == key and all(len(row) == 8 for row in delta["bars"])
    mark = len(listener.received)
    assert listener.call("snapshot", {"symbol": "BTC-USD"})["ok"]
    fresh = wait_until(lambda: received(listener, "figure", mark), message="the snapshot again")
    later = PageChart(fresh[0])  # a page starting now: the stored figure, then its catch-up
    advance(listener, later, later.seq + 1, mark)
    while page.seq != later.seq:  # the one behind catches up (maybe past the other)
        behind, since = (page, 0) if page.seq < later.seq else (later, mark)
        advance(listener, behind, max(page.seq, later.seq), since)
    assert page.state() == later.state()


def received(listener: Listener, event: str, since: int = 0) -> list[dict[str, Any]]:
    return [data for name, data, _ in listener.received[since:] if name == event]


def advance(listener: Listener, page: PageChart, seq: int, since: int = 0) -> dict[str, Any]:
    """Apply deltas received (after the ``since``-th event) until the page is at ``seq``
    or past it, waiting for them; the last one applied."""
    while True:
        follow = wait_until(
            lambda: [d for d in received(listener, "bars", since) if d["base_seq"] == page.seq],
            timeout=10,
            message=f"a delta from seq {page.seq}",
        )
        short = [d for d in follow if d["seq"] <= seq]
        delta = max(short, key=lambda d: d["seq"]) if short else min(follow, key=lambda d: d["seq"])
        page.apply(delta)
        if page.seq >= seq:
            return delta


def test_a_view_is_rendered_once_per_change_whatever_its_viewers_and_only_while_watched(
    pipeline: Pipeline,
) -> None:
    view = {**LIVE, "indicators": ["vwap"], "updates": "delta"}
    clients = [Listener(pipeline.url(f"gateway-{label}")) for label in GATEWAYS for _ in range(2)]
    try:
        for client in clients:
            assert client.call("subscribe", view)["ok"]
        for client in clients:
            client.next("bars", timeout=15)
        renders, seqs = view_renders(pipeline), pipeline.rendered_seq("BTC-USD")
        time.sleep(3)
        changes = pipeline.rendered_seq("BTC-USD") - seqs
        # Four viewers on two gateways, one render per change (and AAPL's view has none).
        assert 1 <= view_renders(pipeline) - renders <= changes + 1
        for client in clients:
            assert client.call("unsubscribe", {"symbol": "BTC-USD"})["ok"]
        time.sleep(1.5)  # the gateways unsubscribe from its rooms
        renders = view_renders(pipeline)
        wait_until(lambda: pipeline.rendered_seq("BTC-USD") > seqs + changes + 3, timeout=10)
        assert view_renders(pipeline) == renders  # nobody watches it: not rendered
    finally:
        for client in clients:
            client.close()


def test_a_bad_view_is_refused_and_the_article_client_keeps_its_chart(listener: Listener) -> None:
    ack = listener.call("subscribe", {"symbol": "AAPL", "chart": "renko"})
    assert ack == {"ok": False, "error": '"chart" must be one of "mountain", "candles", "ohlc"'}
    listener.client.emit("ping_graph", {"symbol": "AAPL"})
    payload, _ = listener.next("graph_plot", timeout=15)
    assert '"fill":"tozeroy"' in payload.replace(" ", "")


def view_renders(pipeline: Pipeline) -> float:
    with urllib.request.urlopen(pipeline.url("renderer") + "/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(r"^rtplot_renderer_view_renders_total (\S+)$", text, re.MULTILINE)
    assert match, "no view render count in the renderer's metrics"
    return float(match[1])


# -- in the browser --------------------------------------------------------------------


def test_in_the_browser_nights_and_the_weekend_take_no_room_and_each_chart_type_draws(
    pipeline: Pipeline, browser: Any
) -> None:
    """Plotly.js's own axis, with the layout's rangebreaks: consecutive bars are about a
    bar apart on screen across a session's close and a weekend."""
    from test_page import Tab

    views = "view=candles,5m&MSFT=sma20,volume&BTC-USD=ohlc,15m,sma20,ema20,vwap"
    url = pipeline.url("gateway-asyncio") + f"/?symbols=AAPL,MSFT,BTC-USD&{views}"
    tab = Tab(browser, url, viewport={"width": 1280, "height": 900})
    try:
        for symbol, types in (
            ("AAPL", ["candlestick", "bar"]),
            ("MSFT", ["scatter", "scatter", "bar"]),
            ("BTC-USD", ["ohlc", "scatter", "scatter", "scatter", "bar"]),
        ):
            drawn = wait_until(lambda s=symbol: on_screen(tab, s), timeout=30, message=symbol)
            assert drawn["types"] == types
        for symbol, step_minutes in (("AAPL", 5), ("MSFT", 1)):
            drawn = on_screen(tab, symbol)
            gaps = drawn["pixels"]
            step = sorted(gaps)[len(gaps) // 2]  # a bar's width on screen
            # Every night and the weekend: no more room than a bar or two.
            assert max(gaps) <= 2.5 * step, (symbol, max(gaps), step)
            assert drawn["span_minutes"] > 2 * 24 * 60  # ... though days passed between
            assert drawn["breaks"] and step_minutes
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        plot = tab.page.locator('[data-symbol="AAPL"] .plot')  # (the header may say stale:
        plot.screenshot(path=str(SCREENSHOTS / "sessions-candles.png"))  # markets close)
        assert tab.errors == []
    finally:
        tab.close()


def on_screen(tab: Any, symbol: str) -> dict[str, Any] | None:
    """The chart's traces, and where plotly.js's axis puts its bars in its range: the
    pixel distance between each two consecutive ones."""
    state = tab.page.evaluate(
        """symbol => {
        const chart = window.rtplot.charts.get(symbol);
        if (!chart || !chart.drawn || !chart.viewKey) return null;
        const axis = chart.plot._fullLayout.xaxis;
        // The bars in the axis' range: the chart holds more than it draws (thin.js merges
        // 1,500 bars into one candle every 6 pixels), and the range starts at what is drawn.
        const [lo, hi] = axis.range.map((r) => axis.r2l(r));
        const xs = chart.data[0].x.filter((x) => lo <= axis.d2l(x) && axis.d2l(x) <= hi);
        const px = xs.map((x) => axis.l2p(axis.d2l(x)));
        return {types: chart.data.map((t) => t.type), breaks: (axis.rangebreaks || []).length,
                pixels: px.slice(1).map((p, i) => p - px[i]),
                span_minutes: (xs[xs.length - 1] - xs[0]) / 60000};
    }""",
        symbol,
    )
    return dict(state) if state else None


def test_in_the_browser_panning_a_5m_chart_a_month_back_draws_that_days_bars(
    pipeline: Pipeline, browser: Any
) -> None:
    """The person drags a 5m chart to a day 30 days back: the page asks for that range
    (one ``history`` request, not every day in between), puts the bars in and draws
    them; the card says "loading history…" meanwhile, and the live edge stays where it
    was."""
    from test_page import Tab

    url = pipeline.url("gateway-asyncio") + "/?symbols=AAPL&view=candles,5m,sma20"
    tab = Tab(browser, url, viewport={"width": 1280, "height": 700})
    try:
        wait_until(
            lambda: tab.page.evaluate("""() => {
                const c = window.rtplot.charts.get("AAPL");
                return !!(c && c.drawn && c.viewKey === "candles.5m.sma20.vol"
                          && c.card.dataset.loadingHistory === "no"
                          && c.data[0].x.length === 1500);
            }"""),
            timeout=60,
            message="AAPL's 5m chart drawn with its history",
        )
        panned = tab.page.evaluate(PAN, 30)
        assert panned["requests"] == 1 and panned["badge"] == "yes", panned
        assert panned["held"] == 78 and panned["drawn"] == 78, panned  # 09:30 to 15:55
        assert panned["sma"] == 78 and panned["last"] == panned["live_last"], panned
        assert (
            tab.page.evaluate(
                """() => window.rtplot.charts.get("AAPL").card.dataset.loadingHistory"""
            )
            == "no"
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.page.locator('[data-symbol="AAPL"] .plot').screenshot(
            path=str(SCREENSHOTS / "panned-a-month-back.png")
        )
        assert tab.errors == []
    finally:
        tab.close()


# Drags the chart of AAPL to the weekday ``days`` back and waits until its bars there
# are drawn: how long that took, the history requests made, what the chart holds and
# draws of that day, and its newest bar before and after.
PAN = """async (days) => {
    const chart = window.rtplot.charts.get("AAPL");
    const DAY = 86400000;
    const xs = () => chart.data[0].x;
    const liveLast = xs()[xs().length - 1];
    let day = Math.floor(liveLast / DAY) * DAY - days * DAY;
    while ([0, 6].includes(new Date(day).getUTCDay())) day -= DAY;  // a weekday
    const [lo, hi] = [day + 9.5 * 3600000, day + 16 * 3600000];  // its session
    const loads = window.rtplot.stats.pastLoads;
    const started = performance.now();
    let badge = null;
    await Plotly.relayout(chart.plot, {"xaxis.range": [lo, hi]});
    badge = chart.card.dataset.loadingHistory;
    const inDay = (values) => values.filter((x) => lo <= x && x < hi).length;
    const drawnInDay = () => chart.plot.data[0].x.some((x) => lo <= x && x < hi);
    await new Promise((resolve) => {
        const check = () => {
            if (drawnInDay() && !chart.pastAsked) resolve();
            else requestAnimationFrame(check);
        };
        check();
    });
    const drawn = chart.plot.data[0].x.filter((x) => lo <= x && x < hi).length;
    const sma = chart.data[1].y.filter((y, i) => lo <= xs()[i] && xs()[i] < hi && y !== null);
    return {ms: performance.now() - started, requests: window.rtplot.stats.pastLoads - loads,
            held: inDay(xs()), drawn, sma: sma.length, badge, live_last: liveLast,
            last: xs()[xs().length - 1] >= liveLast ? liveLast : null};
}"""


def test_in_the_browser_a_page_that_panned_back_while_live_holds_what_a_fresh_one_does(
    pipeline: Pipeline, browser: Any
) -> None:
    """The issue's page-state test, in Chromium: a 5m chart of BTC-USD (live around the
    clock) panned a week past its oldest bar, then live for 6 deltas more, holds what a
    page opened afterwards and panned to the same range holds, every trace's arrays."""
    from test_page import Tab

    url = pipeline.url("gateway-asyncio") + "/?symbols=BTC-USD&view=candles,5m,sma20,ema20,vwap"
    size = {"viewport": {"width": 1280, "height": 700}}
    live, fresh = Tab(browser, url, **size), None
    try:
        wait_until(lambda: live.page.evaluate(HOLDS_HISTORY), timeout=60, message="history")
        span = live.page.evaluate(PAN_BACK, 7)
        wait_until(lambda: live.page.evaluate(LOADED), timeout=10, message="the week loaded")
        deltas = live.page.evaluate("() => window.rtplot.charts.get('BTC-USD').deltas")
        wait_until(
            lambda: (
                live.page.evaluate("() => window.rtplot.charts.get('BTC-USD').deltas") >= deltas + 6
            ),
            timeout=30,
            message="6 deltas more",
        )
        fresh = Tab(browser, url, **size)
        wait_until(lambda: fresh.page.evaluate(HOLDS_HISTORY), timeout=30, message="fresh")
        fresh.page.evaluate(SET_RANGE, span)
        wait_until(lambda: fresh.page.evaluate(LOADED), timeout=10, message="fresh loaded")

        def same() -> tuple[Any, Any] | None:
            a, b = live.page.evaluate(HELD), fresh.page.evaluate(HELD)
            return (a, b) if a["seq"] == b["seq"] else None

        held, opened = wait_until(same, timeout=20, interval=0.05, message="the same seq")
        assert held["bars"] > 1500 + 7 * 288 - 10  # the chart, and the week before it
        assert held == opened
        assert live.errors == fresh.errors == []
    finally:
        live.close()
        if fresh is not None:
            fresh.close()


HOLDS_HISTORY = """() => {
    const c = window.rtplot.charts.get("BTC-USD");
    return !!(c && c.drawn && c.card.dataset.loadingHistory === "no"
              && c.data[0].x.length >= 1500 && c.seq !== null);
}"""
# The chart dragged to show ``days`` before its oldest bar too: the range it was set to.
PAN_BACK = """async (days) => {
    const c = window.rtplot.charts.get("BTC-USD");
    const xs = c.data[0].x;
    const range = [xs[0] - days * 86400000, xs[xs.length - 1]];
    await Plotly.relayout(c.plot, {"xaxis.range": range});
    return range;
}"""
SET_RANGE = """async (range) => {
    await Plotly.relayout(window.rtplot.charts.get("BTC-USD").plot, {"xaxis.range": range});
}"""
LOADED = """() => {
    const c = window.rtplot.charts.get("BTC-USD");
    return c.pastAsked === null && window.rtplot.stats.pastLoads > 0;
}"""
HELD = """() => {
    const c = window.rtplot.charts.get("BTC-USD");
    const arrays = c.data.map((t) => {
        const out = {type: t.type, x: [...t.x]};
        for (const name of ["y", "open", "high", "low", "close"]) {
            if (t[name]) out[name] = [...t[name]];
        }
        if (t.type === "bar") out.colours = [...t.marker.color];
        return out;
    });
    return {seq: c.seq, bars: c.data[0].x.length, arrays};
}"""
