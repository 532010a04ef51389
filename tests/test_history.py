"""A symbol's history (issue 19): the worker fills the store's 5m, 1h and 1d bars from the
source after the minutes, within its budget; the write is versioned in the symbol's
epoch and idempotent; a minutes-only source's history is its minutes rolled up; a view
draws that history before its window, bounded; all against a real Redis."""

import dataclasses
import time
from collections.abc import Mapping

import orjson
import pytest
import redis

from common.bars import Bar
from common.contract.changelog import NOTHING_CHANGED
from common.contract.changelog import parse as parse_entry
from common.contract.fields import MetaField
from common.contract.history import chunk_start, read_filled, read_history, write_history
from common.contract.keys import Keys
from common.contract.rooms import Mode, Room
from common.markets import DAY
from common.resolutions import Resolution, bar_starts, rollup
from common.settings import Settings
from common.views import View
from fetcher.history import HistoryFiller
from fetcher.sources.base import FetchResult
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from fetcher.tick import run_tick
from renderer.service import Renderer

NOW = 1_794_999_960.0 + 10  # Wednesday 2026-11-18, 06:06 in New York
KEYS = Keys()
DEPTHS = "5m=20,1h=200,1d=3000"
COARSEST_FIRST = (Resolution.D1, Resolution.H1, Resolution.M5)


@pytest.fixture
def deep(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        history_days=Settings.from_env({"RTPLOT_HISTORY_DAYS": DEPTHS}).history_days,
        fetch_interval=60.0,  # a budget of 30 s: every symbol filled in one tick
    )


class MinutesOnly:
    """A plug-in that knows only 1-minute bars (the synthetic market's)."""

    name = "minutes"

    def __init__(self) -> None:
        self.inner = SyntheticSource()

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        return self.inner.fetch(since, now)


class Counting(SyntheticSource):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[Resolution, dict[str, tuple[int, int]]]] = []
        self.fail = False

    def history(
        self, resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
    ) -> FetchResult:
        self.asked.append((resolution, dict(spans)))
        if self.fail:
            raise ConnectionError("the history server is away")
        return super().history(resolution, spans, now)


def stored(client: "redis.Redis", symbol: str, resolution: Resolution) -> list[Bar]:
    return read_history(client, KEYS, symbol, resolution).bars()


def version(client: "redis.Redis", symbol: str) -> tuple[int, int]:
    got = client.hmget(KEYS.meta(symbol), [MetaField.VERSION, MetaField.HISTORY])
    return int(got[0] or 0), int(got[1] or 0)


def test_a_tick_fills_every_resolution_to_its_depth_and_versions_it(
    deep: Settings, client: "redis.Redis"
) -> None:
    source = Counting()
    filler = HistoryFiller(deep, client, source)
    before = client.xlen(KEYS.changes) if client.exists(KEYS.changes) else 0
    report = run_tick(deep, client, source, now=NOW, history=filler)
    assert report.history is not None and report.history.pending == 0
    for resolution, days in ((Resolution.M5, 20), (Resolution.H1, 200), (Resolution.D1, 3000)):
        bars = stored(client, "AAPL", resolution)
        # The source's own bars, from the depth on, to the one in progress.
        expected = source.history(resolution, {"AAPL": (int(NOW) - days * DAY, int(NOW) + 1)}, NOW)
        assert bars == expected.columns["AAPL"].bars() and len(bars) > 400
        assert NOW - days * DAY <= bars[0].t < NOW - days * DAY + resolution.seconds + DAY
    # One version a resolution after the minutes' first, each changing no minute.
    assert version(client, "AAPL") == (4, 3)
    entries = dict(parse_entry(e) for e in client.zrange(KEYS.changelog("AAPL"), 0, -1))
    assert entries[2] == entries[3] == entries[4] == NOTHING_CHANGED
    assert client.xlen(KEYS.changes) == before + 2 * 4  # a notice each, both symbols
    assert set(read_filled(client, KEYS, ["AAPL"])["AAPL"]) == {"5m", "1h", "1d"}

    asked = len(source.asked)
    run_tick(deep, client, source, now=NOW + 60, history=filler)
    assert len(source.asked) == asked  # not due again before RTPLOT_HISTORY_REFRESH
    later = NOW + deep.history_refresh + 60
    run_tick(deep, client, source, now=later, history=filler)
    resolution, spans = source.asked[-1]
    # From the bar that was in progress when it was last asked, not the whole depth.
    assert spans["AAPL"][0] >= NOW - 2 * resolution.seconds - 1
    assert stored(client, "AAPL", Resolution.D1)[-1].t <= later


def test_writing_the_same_history_again_changes_nothing(client: "redis.Redis") -> None:
    day = int(NOW) // DAY * DAY
    bars = [Bar(day - i * DAY, 10, 11, 9, 10.5, 100) for i in range(5, 0, -1)]
    span, deepest = (day - 10 * DAY, day), day - 3000 * DAY

    def write(bars: list[Bar], span: tuple[int, int] = span, keep_from: int = deepest) -> int:
        written = write_history(client, KEYS, "AAPL", Resolution.D1, span, bars, keep_from, NOW)
        return written.version

    assert write(bars) == 0 and stored(client, "AAPL", Resolution.D1) == []  # no epoch yet
    minute = int(NOW) // 60 * 60
    BarStore(client, KEYS, 60).upsert("AAPL", [Bar(minute, 10, 11, 9, 10, 1)], NOW, NOW)
    assert write(bars) == 2 and stored(client, "AAPL", Resolution.D1) == bars
    assert write(bars) == 2 and version(client, "AAPL") == (2, 1)  # the same: nothing moves
    revised = [*bars[:-1], Bar(day - DAY, 10, 12, 9, 11.5, 120)]
    assert write(revised[-1:], (day - DAY, day)) == 3  # a span within a chunk: the rest kept
    assert stored(client, "AAPL", Resolution.D1) == revised
    older = [Bar(day - 400 * DAY, 5, 6, 4, 5.5, 10)]
    assert write(older, (day - 401 * DAY, day - 399 * DAY)) == 4
    assert stored(client, "AAPL", Resolution.D1) == older + revised
    assert write([], (day, day), keep_from=day - 10 * DAY) == 5  # the depth shrank
    assert stored(client, "AAPL", Resolution.D1) == revised
    assert client.zcard(KEYS.history("AAPL", "1d")) == len(
        {chunk_start(b.t, Resolution.D1) for b in revised}
    )


def test_a_source_that_knows_only_minutes_gets_its_minutes_rolled_up(
    deep: Settings, client: "redis.Redis"
) -> None:
    source = MinutesOnly()
    run_tick(deep, client, source, now=NOW, history=HistoryFiller(deep, client, source))
    minutes = BarStore(client, KEYS, deep.window_minutes).bars("AAPL")
    market = SyntheticSource().market("AAPL")
    for resolution in (Resolution.M5, Resolution.H1):
        rolled = rollup(minutes, resolution, market)
        if rolled[0].t < minutes[0].t:
            rolled = rolled[1:]  # it lacks the minutes before the window's: left out
        assert stored(client, "AAPL", resolution) == rolled and rolled


def test_a_failing_history_leaves_the_minutes_alone_and_is_asked_again_later(
    deep: Settings, client: "redis.Redis"
) -> None:
    source = Counting()
    source.fail = True
    filler = HistoryFiller(deep, client, source)
    report = run_tick(deep, client, source, now=NOW, history=filler)
    assert report.bars_stored > 0 and report.history is not None
    assert report.history.failed == ["1d", "1h", "5m"]
    assert stored(client, "AAPL", Resolution.D1) == []
    asked = len(source.asked)
    run_tick(deep, client, source, now=NOW + 10, history=filler)
    assert len(source.asked) == asked  # not every tick: after RETRY
    source.fail = False
    run_tick(deep, client, source, now=NOW + 61, history=filler)
    assert len(stored(client, "AAPL", Resolution.D1)) > 1000


def test_a_tick_fills_no_more_than_its_budget_and_the_rest_follows(
    settings: Settings, client: "redis.Redis"
) -> None:
    """One batch a tick at least; the coarsest resolution first."""
    slow = dataclasses.replace(settings, fetch_interval=0.001)
    source = Counting()
    filler = HistoryFiller(slow, client, source)
    report = run_tick(slow, client, source, now=NOW, history=filler)
    # The first batch is one symbol (the minutes' tick is not held up by a pace unknown).
    assert report.history is not None and report.history.pending == 5
    assert [(r, len(spans)) for r, spans in source.asked] == [(Resolution.D1, 1)]
    for tick in range(1, 6):  # one symbol a batch: the pace of the first
        run_tick(slow, client, source, now=NOW + tick, history=filler)
    asked = [(r, sorted(spans)) for r, spans in source.asked]
    expected = [(r, [s]) for r in COARSEST_FIRST for s in ("AAPL", "MSFT")]
    assert asked == expected


@pytest.mark.parametrize("hours", ["always", "exchange"])
def test_a_daily_and_an_hourly_chart_reach_back_years_and_months(
    settings: Settings, client: "redis.Redis", hours: str
) -> None:
    """The targets: a 1d chart of 1,500 candles (SMA 50 drawn on every one), a 1h chart
    over 90 days and more in New York's sessions, from a week of minutes; a 1m chart
    bounded too."""
    source = SyntheticSource(hours)
    week = dataclasses.replace(settings, window_minutes=7 * 24 * 60, fetch_interval=60.0)
    run_tick(week, client, source, now=NOW, history=HistoryFiller(week, client, source))
    renderer = Renderer(client, KEYS, NoFigures(), name="r", view_bars=1500)
    keys = {"daily": "candles.1d.sma50.vol", "hourly": "candles.1h.vol", "minutes": "candles.1m"}
    client.zadd(KEYS.views("AAPL"), {key: time.time() for key in keys.values()})
    page = client.pubsub()  # a gateway with a client in each view's room: they are watched
    page.subscribe(*(KEYS.channel(Room("AAPL", Mode.DELTA, key)) for key in keys.values()))
    renderer.render("AAPL")
    page.close()
    figures = {
        name: orjson.loads(client.hget(KEYS.snapshot("AAPL", key), "payload") or b"{}")["figure"]
        for name, key in keys.items()
    }
    daily, hourly, minutes = (figures[name]["data"] for name in ("daily", "hourly", "minutes"))
    assert len(daily[0]["x"]) == 1500 and None not in daily[1]["y"]  # SMA 50 everywhere
    span = (hourly[0]["x"][-1] - hourly[0]["x"][0]) / 1000 / DAY
    # (Around the clock, 1,500 hours are 62 days; in New York's sessions, a year.)
    assert span >= (90 if hours == "exchange" else 62) and len(hourly[0]["x"]) == 1500
    assert len(minutes[0]["x"]) == 1500
    assert View.from_key(keys["daily"]).timeframe == "1d"
    # The bar in progress at 1h and 1d is the minutes', up to the newest: not the
    # history's, which the fill stored a moment before.
    minutes_held = BarStore(client, KEYS, week.window_minutes).bars("AAPL")
    assert daily[0]["close"][-1] == hourly[0]["close"][-1] == minutes_held[-1].c
    market = source.market("AAPL")
    today = bar_starts([minutes_held[-1].t], Resolution.D1, market)[0]
    assert daily[2]["y"][-1] == sum(b.v for b in minutes_held if b.t >= today)


class NoFigures:
    def publish_figures(self, *args: object) -> None:
        pass


def test_a_view_whose_resolution_is_not_filled_yet_draws_its_window(
    deep: Settings, client: "redis.Redis"
) -> None:
    """The fill goes coarsest first: a symbol has its 1d history before its 5m one, and a
    5m chart meanwhile draws its window and says it is loading (a renderer once died of
    the empty history here)."""
    source = Counting()
    slow = dataclasses.replace(deep, fetch_interval=0.001)
    run_tick(slow, client, source, now=NOW, history=HistoryFiller(slow, client, source))
    assert stored(client, "AAPL", Resolution.D1) and not stored(client, "AAPL", Resolution.M5)
    renderer = Renderer(client, KEYS, NoFigures(), name="r", view_bars=300, history_kept=True)
    client.zadd(KEYS.views("AAPL"), {"candles.5m.vol": time.time()})
    page = client.pubsub(ignore_subscribe_messages=True)
    page.subscribe(KEYS.channel(Room("AAPL", Mode.DELTA, "candles.5m.vol")))
    page.get_message(timeout=1)
    renderer.render("AAPL")
    _, first = orjson.loads(page.get_message(timeout=2)["data"][1:])
    page.close()
    assert len(first["figure"]["data"][0]["x"]) == 25  # the window's 120 minutes, in 5m bars
    assert first["figure"]["layout"]["meta"] == {"loading_history": True}


def test_a_chart_says_its_history_is_on_its_way_until_it_is_stored(
    deep: Settings, client: "redis.Redis"
) -> None:
    """The figure's layout says so (the page shows "loading history…" on the card), and
    the delta that brings the history says it no longer is."""
    source = SyntheticSource()
    run_tick(deep, client, source, now=NOW)  # the minutes only
    renderer = Renderer(client, KEYS, NoFigures(), name="r", view_bars=300, history_kept=True)
    key = "candles.1h.vol"
    client.zadd(KEYS.views("AAPL"), {key: time.time()})
    page = client.pubsub(ignore_subscribe_messages=True)
    page.subscribe(KEYS.channel(Room("AAPL", Mode.DELTA, key)))
    page.get_message(timeout=1)
    renderer.render("AAPL")
    _, first = orjson.loads(page.get_message(timeout=2)["data"][1:])
    assert first["figure"]["layout"]["meta"] == {"loading_history": True}
    assert len(first["figure"]["data"][0]["x"]) == 3  # the window's two hours meanwhile
    HistoryFiller(deep, client, source).fill(["AAPL"], NOW, budget=30)
    renderer.render("AAPL")
    _, delta = orjson.loads(page.get_message(timeout=2)["data"][1:])
    page.close()
    assert delta["style"]["loading"] is False and len(delta["bars"]) == 300
    assert delta["start"] == delta["bars"][0][0]  # every bar of the chart, from its first


class Splitting(SyntheticSource):
    """The synthetic market, saying (as Yahoo's adapter does) that a symbol's past
    changed at a moment (a split there: every bar before it scaled)."""

    def __init__(self) -> None:
        super().__init__()
        self.splits: dict[str, int] = {}

    def history(
        self, resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
    ) -> FetchResult:
        result = super().history(resolution, spans, now)
        for symbol, at in self.splits.items():
            if symbol in spans and spans[symbol][0] <= at < spans[symbol][1]:
                result.restated[symbol] = at
        return result


def test_a_split_after_the_bars_were_stored_stores_the_symbol_again_in_a_new_epoch(
    deep: Settings, client: "redis.Redis"
) -> None:
    source = Splitting()
    filler = HistoryFiller(deep, client, source)
    # A split before the first fill: the bars it gives have it. Each refresh asks again
    # from the day before, so the source tells of it again: nothing to do.
    source.splits = {"AAPL": int(NOW) - 3600}
    run_tick(deep, client, source, now=NOW, history=filler)
    epoch = client.hget(KEYS.meta("AAPL"), MetaField.EPOCH)
    client.zadd(KEYS.views("AAPL"), {"candles.1d.vol": NOW})  # a view watched now
    refresh = deep.history_refresh + 60
    report = run_tick(deep, client, source, now=NOW + refresh, history=filler).history
    assert report is not None and report.restated == [] and report.stored
    # One after the bars were stored: every stored bar of AAPL is forgotten (MSFT's
    # kept), its views' list kept; the next tick stores its minutes again, in a new
    # epoch, and its history, which has the split; a refresh then has nothing to do.
    later = NOW + 2 * refresh
    source.splits = {"AAPL": int(later) - 600}
    report = run_tick(deep, client, source, now=later, history=filler).history
    assert report is not None and report.restated == ["AAPL"]
    assert not client.exists(KEYS.bars("AAPL"), KEYS.meta("AAPL"), KEYS.history_filled("AAPL"))
    assert client.exists(KEYS.bars("MSFT")) and client.zscore(KEYS.views("AAPL"), "candles.1d.vol")
    run_tick(deep, client, source, now=later + 60, history=filler)
    assert client.hget(KEYS.meta("AAPL"), MetaField.EPOCH) not in (None, epoch)
    assert client.zcard(KEYS.bars("AAPL")) == client.zcard(KEYS.bars("MSFT"))  # the window
    filled = read_filled(client, KEYS, ["AAPL"])["AAPL"]
    assert set(filled) == {"5m", "1h", "1d", "split"} and filled["split"] == int(later) - 600
    report = run_tick(deep, client, source, now=later + refresh + 60, history=filler).history
    assert report is not None and report.restated == [] and report.stored
