"""Deltas: a page applying them holds exactly the figure a whole render gives, whether
it starts from the live stream or from a stored figure and its catch-up; in the
default view and in every other (candles, timeframes, indicators, volume)."""

import copy
import time
from typing import Any

import orjson
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from page_model import PageChart, state_of

from common.bars import MINUTE, Bar
from common.contract.history import write_history
from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.resume import Outcome, ReadResume
from common.contract.rooms import Mode, Room
from common.markets import DAY, NEW_YORK, UTC, Market, market_for
from common.resolutions import COARSE, rollup
from common.views import CHARTS, INDICATORS, TIMEFRAMES, View, make_view
from fetcher.store import BarStore
from renderer.figure import encode
from renderer.service import Renderer
from renderer.store import RenderStore
from renderer.window import Window, rows_of

START = 1_794_999_960  # 06:06 in New York
KEYS = Keys()
NY_ALWAYS = market_for("AAPL").always_open()  # the clock a source that says nothing gets


def local(t: int, market: Market = NY_ALWAYS) -> int:
    return int(market.local_seconds([t])[0])


class Page:
    """What the page receives on a delta room, as (event, payload)."""

    def __init__(self, client: "redis.Redis", room: str = Room("AAPL", Mode.DELTA)) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(KEYS.channel(room))
        self.pubsub.get_message(timeout=1)

    def close(self) -> None:
        self.pubsub.close()

    def received(self) -> list[tuple[str, Any]]:
        events = []
        while (message := self.pubsub.get_message(timeout=0.01)) is not None:
            event, payload = orjson.loads(message["data"][1:])  # 2["bars",{...}]
            events.append((event, payload))
        return events


class NoViewers:
    def publish_figures(self, *args: Any) -> None:
        raise AssertionError("nobody watches the figure rooms here")


def write(store: BarStore, bars: list[Bar], at: float, market: Market | None = None) -> None:
    store.upsert("AAPL", bars, as_of=at, now=at, market=market)


def test_a_changed_last_bar_is_a_one_bar_delta(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, 60)
    page = Page(client)
    renderer = Renderer(client, KEYS, NoViewers(), name="r", snapshot_every=3600)
    now = START + 10
    closes = [9, 12, 10, 10, 10]  # oldest first: the range is 9..12 whatever the last does
    write(
        store, [Bar(START - 60 * (4 - i), c, c + 1, c - 1, c, 1) for i, c in enumerate(closes)], now
    )
    renderer.render("AAPL")
    [(event, first)] = page.received()
    assert event == "figure"  # nothing to be a delta from yet

    def next_delta(bar: Bar, at: float) -> dict[str, Any]:
        write(store, [bar], at)
        renderer.render("AAPL")
        [(name, delta)] = page.received()
        assert name == "bars"
        return delta  # type: ignore[no-any-return]

    delta = next_delta(Bar(START, 10, 12, 9, 11.5, 2), now + 1)
    assert (delta["seq"], delta["base_seq"], delta["epoch"]) == (2, 1, first["epoch"])
    # On New York's clock, as the figure's x: 06:06 there, not 11:06 UTC.
    assert delta["bars"] == [[START - 5 * 3600, 10.0, 12.0, 9.0, 11.5, 2]]
    assert delta["start"] == local(START - 4 * 60) and first["figure"]["data"][0]["x"][-1] == (
        local(START) * 1000
    )
    assert delta["style"] == {"color": "lime"}  # was flat; the range did not move
    assert next_delta(Bar(START, 10, 12, 9, 11.5, 3), now + 2)["style"] == {}  # volume only
    assert next_delta(Bar(START, 10, 12, 9, 9.5, 4), now + 3)["style"] == {"color": "red"}
    moved = next_delta(Bar(START, 10, 14, 9, 13.5, 5), now + 4)  # a new high moves the range
    assert moved["style"] == {"color": "lime", "y_range": [8.32, 14.18]}
    assert len(orjson.dumps(delta)) * 10 < len(orjson.dumps(first))


steps = st.lists(
    st.tuples(
        st.sampled_from(["tick", "new_minute", "revise_old", "idle_trim", "snapshot_due"]),
        st.floats(min_value=1, max_value=500, allow_nan=False),
    ),
    min_size=1,
    max_size=25,
)


markets = st.sampled_from([NY_ALWAYS, NEW_YORK, UTC, market_for("RELIANCE.NS")])
views = st.builds(
    make_view,
    st.sampled_from(CHARTS),
    st.sampled_from(list(TIMEFRAMES)),
    st.lists(st.sampled_from(INDICATORS), unique=True, max_size=4),
    st.sampled_from([None, True, False]),
)


def run_steps(
    client: "redis.Redis",
    steps: list[tuple[str, float]],
    view: View,
    market: Market,
    window_minutes: int,
    start: int = START,
    view_bars: int | None = None,
    history: bool = False,
) -> None:
    """Writes bars step by step, renders after each, and checks that the page applying
    the view's deltas, and a page subscribing now (the stored figure and its catch-up),
    both hold exactly the figure of every stored bar rendered whole."""
    client.flushdb()
    store = BarStore(client, KEYS, window_minutes=window_minutes)
    if view.key:  # a gateway lists the view, and receives its rooms: it is watched
        client.zadd(KEYS.views("AAPL"), {view.key: time.time()})
    page = Page(client, Room("AAPL", Mode.DELTA, view.key))
    try:
        check_steps(
            client, store, page, steps, view, market, window_minutes, start, view_bars, history
        )
    finally:
        page.close()


def check_steps(
    client: "redis.Redis",
    store: BarStore,
    page: Page,
    steps: list[tuple[str, float]],
    view: View,
    market: Market,
    window_minutes: int,
    start: int,
    view_bars: int | None = None,
    history: bool = False,
) -> None:
    renderer = Renderer(
        client, KEYS, NoViewers(), name="r", snapshot_every=3600, view_bars=view_bars
    )
    now = float(start + 5)
    bars = [Bar(start - 60 * i, 50, 51, 49, 50, 1 + i % 7) for i in range(window_minutes)]
    write(store, bars, now, market)
    if history:
        store_history(client, start - (window_minutes - 1) * MINUTE, market, 40.0, now)
    renderer.render("AAPL")
    [(_, first)] = page.received()
    chart = PageChart(first)
    assert chart.state() == whole(client, view, market, view_bars)
    held = [copy.deepcopy(chart)]  # the page at each seq it held: each may resume
    for kind, price in steps:
        if kind == "history":  # the fetcher's next fill changes the past
            store_history(client, start - (window_minutes - 1) * MINUTE, market, price, now)
        now += {"tick": 1, "new_minute": MINUTE, "revise_old": 1, "idle_trim": 3 * MINUTE}.get(
            kind, 1
        )
        minute = int(now) // MINUTE * MINUTE
        bars = {
            "tick": [Bar(minute, price, price, price, price, 5)],
            "new_minute": [Bar(minute, price, price, price, price, 1)],
            "revise_old": [Bar(minute - 4 * MINUTE, price, price, price, price, 3)],
        }.get(kind, [])
        renderer.snapshot_every = 0 if kind == "snapshot_due" else 3600
        write(store, bars, now)
        renderer.render("AAPL")
        received = page.received()
        if not received:
            continue
        [(event, delta)] = received
        assert event == "bars"
        chart.apply(delta)
        expected = whole(client, view, market, view_bars)
        assert chart.state() == expected
        truth = whole_bars(client, view, market)
        assert_past_true(chart, truth)
        stored = client.hgetall(snapshot_of(view))
        head = orjson.loads(stored[b"payload"])
        subscriber = PageChart(head)  # a page subscribing now
        if b"catchup" in stored:
            catchup = orjson.loads(stored[b"catchup"])
            assert catchup["base_seq"] == head["seq"] and catchup["seq"] == delta["seq"]
            subscriber.apply(catchup)
        else:
            assert head["seq"] == delta["seq"]
        assert subscriber.state() == expected
        check_resumes(client, view, first["epoch"], held, expected, truth)
        held.append(copy.deepcopy(chart))


def check_resumes(
    client: "redis.Redis",
    view: View,
    epoch: str,
    held: list[PageChart],
    expected: tuple[Any, ...],
    truth: dict[float, tuple[Any, ...]],
) -> None:
    """A page that held any earlier seq of the epoch resumes: the one ``bars`` event the
    view's log gives from its seq brings it to the figure of the newest render, and
    what it keeps of the bars before the chart's are the store's."""
    scripts = Scripts(client, KEYS)
    for page in held:
        resume = scripts.run(ReadResume("AAPL", view.key, epoch, page.seq))
        assert resume.outcome is Outcome.RESUMED and resume.bars is not None, page.seq
        resumed = copy.deepcopy(page)
        resumed.apply(orjson.loads(resume.bars))
        assert resumed.state() == expected
        assert_past_true(resumed, truth)
    current = scripts.run(ReadResume("AAPL", view.key, epoch, expected[0]))
    assert current.outcome is Outcome.CURRENT and current.bars is None
    assert scripts.run(ReadResume("AAPL", view.key, "another", 1)).outcome is Outcome.OTHER_EPOCH


def snapshot_of(view: View) -> str:

    return KEYS.snapshot("AAPL", view.key)


def store_history(
    client: "redis.Redis", window_start: int, market: Market, price: float, now: float
) -> None:
    """Twelve days of bars before the window's start (and its first hour) at every
    resolution, as the fetcher's history fill stores them, priced about ``price``."""
    first = window_start - 12 * DAY  # more than a bounded chart reads of its 5m bars
    minutes = [
        Bar(t, price + i % 5, price + 6, price - 1, price + i % 3, 2 + i % 4)
        for i, t in enumerate(range(first, window_start + 3600, MINUTE))
    ]
    for resolution in COARSE:
        bars = rollup(minutes, resolution, market)
        span = (first, window_start + 3600)
        stored = write_history(client, KEYS, "AAPL", resolution, span, bars, first, now)
        assert not stored.refused


def whole(
    client: "redis.Redis", view: View, market: Market, view_bars: int | None = None
) -> tuple[Any, ...]:
    """The page's state for the figure of every stored bar, rendered afresh."""
    read = RenderStore(client, KEYS).read("AAPL")
    return state_of({"seq": read.version, "figure": figure_json(client, view, market, view_bars)})


def figure_json(
    client: "redis.Redis", view: View, market: Market, view_bars: int | None
) -> dict[str, Any]:
    """The view's whole figure from the store, rendered afresh, as a page parses it."""
    read = RenderStore(client, KEYS).read("AAPL")
    window = Window(read.epoch, read.version, rows_of(read.rows), read.market or market)
    fresh = Renderer(client, KEYS, NoViewers(), name="fresh", view_bars=view_bars)
    chart = fresh._chart("AAPL", window, view, read)
    figure = chart.figure(chart.style())
    return orjson.loads(encode(figure))  # type: ignore[no-any-return]


def assert_past_true(page: PageChart, truth: dict[float, tuple[Any, ...]]) -> None:
    """The bars a page keeps before the chart's are the store's, where it still has them
    (a window forgets its oldest minutes; the page may still show them)."""
    past = {x: values for x, values in page.past().items() if x in truth}
    assert past == {x: truth[x] for x in past}


def whole_bars(client: "redis.Redis", view: View, market: Market) -> dict[float, tuple[Any, ...]]:
    """Every bar of the view the store holds, as a chart of all of them draws it."""
    return PageChart({"seq": 0, "figure": figure_json(client, view, market, None)}).bars()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_the_live_deltas_and_every_catch_up_give_the_whole_figure(
    client: "redis.Redis", steps: list[tuple[str, float]]
) -> None:
    run_steps(client, steps, View(), NY_ALWAYS, window_minutes=10)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=steps,
    view=views,
    market=markets,
    start=st.sampled_from([START, START + 18 * 3600 - 40 * 60]),  # 00:26 in New York
)
def test_every_views_deltas_and_catch_ups_give_its_whole_figure(
    client: "redis.Redis", steps: list[tuple[str, float]], view: View, market: Market, start: int
) -> None:
    """Windows of 90 minutes; from 23:26 New York, the window moves across midnight, which
    begins the first day VWAP is drawn on."""
    run_steps(client, steps, view, market, window_minutes=90, start=start)


history_steps = st.lists(
    st.tuples(
        st.sampled_from(
            ["tick", "new_minute", "revise_old", "idle_trim", "snapshot_due", "history"]
        ),
        st.floats(min_value=1, max_value=500, allow_nan=False),
    ),
    min_size=1,
    max_size=25,
)


# 35 examples: 20 s of the suite's budget (60 took 40 s); CI's fresh database draws new
# ones each run.
@settings(
    max_examples=35, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=history_steps,
    view=views.filter(lambda view: view.key != ""),
    market=markets,
    view_bars=st.sampled_from([None, 30, 120]),
)
def test_a_bounded_view_over_its_history_applies_its_deltas_exactly(
    client: "redis.Redis",
    steps: list[tuple[str, float]],
    view: View,
    market: Market,
    view_bars: int | None,
) -> None:
    """A view drawing the store's history before its window, bounded to its last
    ``view_bars`` bars: its live deltas, its catch-ups and every resume still give its
    whole figure, as the window moves on, the history is written again, the page's
    first bar is handed from the history to the window."""
    run_steps(client, steps, view, market, window_minutes=90, view_bars=view_bars, history=True)
