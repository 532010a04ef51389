"""The past on demand (issue 19): a ``history`` request is answered from the store with
the rows a chart of every bar holds (prices, volume and the view's indicator values,
to the last bit), and a page that loads history while it applies live deltas holds
exactly what a fresh page holds once it has loaded the same history; against a real
Redis, the fetcher's synthetic market and history fill, and the renderer."""

import dataclasses
import time
from typing import Any

import orjson
import pytest
import redis
from page_model import PageChart

from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.past import MAX_ROWS, ReadPast
from common.contract.rooms import Mode, Room
from common.settings import Settings
from common.views import View
from fetcher.history import HistoryFiller
from fetcher.sources.synthetic import SyntheticSource
from fetcher.tick import run_tick
from renderer.figure import encode
from renderer.service import Renderer
from renderer.store import RenderStore
from renderer.window import Window, rows_of

NOW = 1_794_999_960.0 + 4 * 3600 + 10  # Wednesday 2026-11-18, 10:06 in New York
KEYS = Keys()
VIEW_BARS = 300
VIEWS = (
    "",  # the article's chart
    "mountain.1m.sma20.ema20.vwap",
    "candles.5m.sma50.vol",
    "ohlc.15m.ema20.vwap.vol",
    "candles.1h.sma20.sma50.vol",
    "candles.1d.sma50.vwap.vol",
)


@pytest.fixture
def deep(settings: Settings) -> Settings:
    depths = Settings.from_env({"RTPLOT_HISTORY_DAYS": "5m=20,1h=200,1d=2500"}).history_days
    return dataclasses.replace(
        settings,
        symbols=("AAPL",),
        history_days=depths,
        window_minutes=7 * 24 * 60,
        fetch_interval=60.0,  # a budget of 30 s: the whole history in the first tick
    )


class Rooms:
    """What pages in each view's delta room receive, as (event, payload)."""

    def __init__(self, client: "redis.Redis") -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(*(KEYS.channel(Room("AAPL", Mode.DELTA, key)) for key in VIEWS))
        for _ in VIEWS:
            self.pubsub.get_message(timeout=1)

    def received(self) -> dict[str, list[dict[str, Any]]]:
        got: dict[str, list[dict[str, Any]]] = {key: [] for key in VIEWS}
        while (message := self.pubsub.get_message(timeout=0.05)) is not None:
            _, payload = orjson.loads(message["data"][1:])  # 2["bars",{...}]
            got[payload.get("view", "")].append(payload)
        return got


class NoFigures:
    def publish_figures(self, *args: object) -> None:
        pass


def answer(
    client: "redis.Redis", view: str, before: int, count: int, after: int | None = None
) -> dict[str, Any]:
    """The gateway's answer to ``{"before", "count", "after"}`` (gateway.core.history)."""
    past = Scripts(client, KEYS).run(ReadPast("AAPL", View.from_key(view), before, count, after))
    return {
        "ok": True,
        "epoch": past.epoch,
        "rows": past.rows,
        "first": past.first,
        "oldest": past.oldest,
    }


def every_bar(client: "redis.Redis", view: str) -> dict[float, tuple[Any, ...]]:
    """Each bar of the view the store holds, as a chart of all of them draws it."""
    return whole_page(client, view).bars()


def whole_page(client: "redis.Redis", view: str) -> PageChart:
    """A page holding every bar of the view the store holds."""
    read = RenderStore(client, KEYS).read("AAPL")
    assert read.market is not None
    window = Window(read.epoch, read.version, rows_of(read.rows), read.market)
    whole = Renderer(client, KEYS, NoFigures(), name="whole", view_bars=None)
    chart = whole._chart("AAPL", window, View.from_key(view), read)
    figure = orjson.loads(encode(chart.figure(chart.style())))
    return PageChart({"seq": read.version, "epoch": read.epoch, "figure": figure})


def stored_page(client: "redis.Redis", view: str) -> PageChart:
    """A page subscribing now: the stored figure, then its catch-up."""
    stored = client.hgetall(KEYS.snapshot("AAPL", view))
    page = PageChart(orjson.loads(stored[b"payload"]))
    if b"catchup" in stored:
        page.apply(orjson.loads(stored[b"catchup"]))
    return page


@pytest.mark.parametrize("hours", ["always", "exchange"])
def test_a_page_that_loads_history_between_live_deltas_holds_what_a_fresh_one_does(
    deep: Settings, client: "redis.Redis", hours: str
) -> None:
    """The issue's page-state test, for every kind of view: 120 live deltas and one
    history load, against a fresh page that loads the same history."""
    source = SyntheticSource(hours)
    filler = HistoryFiller(deep, client, source)
    run_tick(deep, client, source, now=NOW, history=filler)
    renderer = Renderer(client, KEYS, NoFigures(), name="r", view_bars=VIEW_BARS)
    client.zadd(KEYS.views("AAPL"), {key: time.time() for key in VIEWS if key})
    rooms = Rooms(client)
    try:
        renderer.render("AAPL")
        pages = {key: PageChart(got[0]) for key, got in rooms.received().items()}
        assert all(len(page.traces[0]["x"]) == VIEW_BARS for page in pages.values())
        loaded: dict[str, float] = {}
        held: dict[str, int] = {}
        for minute in range(1, 121):
            run_tick(deep, client, source, now=NOW + 60 * minute, history=filler)
            renderer.render("AAPL")
            for key, deltas in rooms.received().items():
                for delta in deltas:
                    pages[key].apply(delta)
            if minute == 60:  # the person pans back: 400 bars before the oldest held
                for key, page in pages.items():
                    oldest = int(page.traces[0]["x"][0] // 1000)
                    got = answer(client, key, oldest, 400)
                    page.load(got)
                    held[key] = len(got["rows"])
                    assert len(got["rows"]) == 400 or got["oldest"]
                    loaded[key] = page.traces[0]["x"][0]
        assert all(page.seq == pages[""].seq for page in pages.values())
    finally:
        rooms.pubsub.close()
    for key, page in pages.items():
        fresh = stored_page(client, key)
        assert fresh.seq == page.seq
        oldest = int(fresh.traces[0]["x"][0] // 1000)
        fresh.load(answer(client, key, oldest, MAX_ROWS, after=int(loaded[key] // 1000)))
        assert page.everything() == fresh.everything(), key
        # Older than its chart: what it loaded (400, or all there is), and the bars the
        # live edge left behind (a minute's each minute, on a 1-minute chart).
        behind = 120 if key in ("", "mountain.1m.sma20.ema20.vwap") else 0
        assert len(page.traces[0]["x"]) >= VIEW_BARS + min(held[key], 400) + behind, key
        truth = every_bar(client, key)
        assert {x: truth[x] for x in page.bars()} == page.bars(), key


def test_history_rows_are_the_bars_a_chart_of_every_bar_holds(
    deep: Settings, client: "redis.Redis"
) -> None:
    """Rows before any time, the last ``count`` of them, from ``after`` on; at the start
    of what is stored the answer says it is the oldest. Every kind of view."""
    source = SyntheticSource("exchange")
    run_tick(deep, client, source, now=NOW, history=HistoryFiller(deep, client, source))
    for view in VIEWS[1:]:
        check_rows(client, view)


def check_rows(client: "redis.Redis", view: str) -> None:
    whole = whole_page(client, view)
    truth = whole.bars()
    xs = sorted(truth)
    for end in (len(xs) - 1, len(xs) // 2 + 130, 300):
        got = answer(client, view, int(xs[end] // 1000), 250)
        assert [row[0] * 1000 for row in got["rows"]] == xs[end - 250 : end]
        assert got["first"] * 1000 == xs[end - 250] and not got["oldest"]
        assert as_drawn(whole, got) == {x: truth[x] for x in xs[end - 250 : end]}
    got = answer(client, view, int(xs[300] // 1000), 250, after=int(xs[290] // 1000))
    assert [row[0] * 1000 for row in got["rows"]] == xs[290:300]
    oldest = answer(client, view, int(xs[60] // 1000), MAX_ROWS)
    assert oldest["oldest"] and [row[0] * 1000 for row in oldest["rows"]] == xs[:60]
    assert as_drawn(whole, oldest) == {x: truth[x] for x in xs[:60]}
    nothing = answer(client, view, int(xs[0] // 1000), 10)
    assert nothing["rows"] == [] and nothing["oldest"] and nothing["first"] == xs[0] // 1000


def as_drawn(like: PageChart, got: dict[str, Any]) -> dict[float, tuple[Any, ...]]:
    """An answer's rows as a page of the view holding only them draws them."""
    page = like.emptied()
    page.load(got)
    return page.bars()


@pytest.mark.parametrize("view", ["candles.5m.sma50.vol", "candles.1h.sma20.sma50.vol"])
def test_with_no_history_stored_a_coarse_views_past_is_its_window_rolled_up(
    deep: Settings, client: "redis.Redis", view: str
) -> None:
    """``RTPLOT_HISTORY_DAYS=off``: the answer reads the 1-minute window, as the chart."""
    off = dataclasses.replace(deep, history_days={})
    run_tick(off, client, SyntheticSource("always"), now=NOW)
    whole = whole_page(client, view)
    truth = whole.bars()
    xs = sorted(truth)
    for end, count in ((len(xs) - 1, 100), (len(xs) - 1, MAX_ROWS), (len(xs) // 2, 30)):
        got = answer(client, view, int(xs[end] // 1000), count)
        shown = xs[max(end - count, 0) : end]
        assert [row[0] * 1000 for row in got["rows"]] == shown
        assert as_drawn(whole, got) == {x: truth[x] for x in shown}
        assert got["oldest"] == (end <= count)
