"""Views: their fields and keys, the bars of a timeframe, the indicators, and a figure
for every view that plotly.py accepts."""

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import plotly.graph_objects as go
import pytest

from common import indicators
from common.markets import NEW_YORK, UTC, Market, market_for
from common.views import (
    CHARTS,
    DEFAULT,
    INDICATORS,
    TIMEFRAMES,
    InvalidView,
    View,
    make_view,
    requested_view,
)
from renderer.figure import encode
from renderer.service import ViewChart
from renderer.views import default_figure, frame_of, view_delta
from renderer.window import Window

NY = ZoneInfo("America/New_York")


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=NY).timestamp())


def window(
    minutes: list[int], market: Market = NEW_YORK, closes: list[float] | None = None
) -> Window:
    closes = closes or [100 + i % 7 - 3 * (i % 2) for i in range(len(minutes))]
    rows = [
        [t, c - 0.5, c + 1, c - 1, c, 10 + i]
        for i, (t, c) in enumerate(zip(minutes, closes, strict=True))
    ]
    return Window("e1", 1, np.asarray(rows, dtype=np.float64).reshape(-1, 6), market)


def session(day: str, count: int = 390) -> list[int]:
    """A day's minutes from the New York open."""
    return [at(f"{day}T09:30") + 60 * i for i in range(count)]


# -- fields and keys -----------------------------------------------------------------


def test_a_view_has_a_key_and_the_default_view_none() -> None:
    assert DEFAULT.key == "" and make_view() == DEFAULT
    assert make_view("candles", "5m").key == "candles.5m.vol"  # volume: on for candles
    assert make_view("mountain", volume=True).key == "mountain.1m.vol"
    assert make_view("ohlc", "1h", ["vwap", "sma20"], False).key == "ohlc.1h.sma20.vwap"
    assert make_view("candles", "5m").label == "Candles · 5m · Volume"


def test_every_view_comes_back_from_its_key() -> None:
    subsets = itertools.chain.from_iterable(
        itertools.combinations(INDICATORS, n) for n in range(len(INDICATORS) + 1)
    )
    for chart, timeframe, chosen, volume in itertools.product(
        CHARTS, TIMEFRAMES, list(subsets), (True, False)
    ):
        view = make_view(chart, timeframe, list(chosen), volume)
        assert View.from_key(view.key) == view


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"chart": "bars"}, '"chart" must be one of "mountain", "candles", "ohlc"'),
        ({"chart": None}, '"chart" must be one of'),
        ({"timeframe": "2m"}, '"timeframe" must be one of "1m", "5m", "15m", "1h", "1d"'),
        ({"indicators": "sma20"}, '"indicators" must be a list of'),
        ({"indicators": ["rsi14"]}, '"indicators" must be a list of'),
        ({"indicators": ["vwap", "vwap"]}, '"indicators" lists one twice'),
        ({"volume": "yes"}, '"volume" must be true or false'),
    ],
)
def test_bad_view_fields_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidView, match=message):
        requested_view(fields)


@pytest.mark.parametrize("key", ["mountain.1m", "candles", "candles.5m.rsi", "ohlc.1h.vwap.sma20"])
def test_a_key_that_names_no_view_is_refused(key: str) -> None:
    with pytest.raises(InvalidView):
        View.from_key(key)


# -- bars of a timeframe -------------------------------------------------------------


def test_five_minute_bars_take_the_first_open_the_extremes_the_last_close_and_all_volume() -> None:
    w = window(session("2026-11-27", 12))
    frame = frame_of(w, make_view("candles", "5m"))
    assert len(frame) == 3 and frame.x.tolist() == [w.local()[0] + 300 * i for i in range(3)]
    rows = w.rows
    assert frame.o[0] == rows[0, 1] and frame.c[0] == rows[4, 4]
    assert frame.h[0] == rows[:5, 2].max() and frame.l[0] == rows[:5, 3].min()
    assert frame.v.tolist() == [rows[:5, 5].sum(), rows[5:10, 5].sum(), rows[10:, 5].sum()]
    assert frame.bar_of_row.tolist() == [0] * 5 + [1] * 5 + [2] * 2


def test_hourly_bars_count_from_the_session_open_and_daily_bars_from_midnight() -> None:
    minutes = session("2026-11-26") + session("2026-11-27")
    hourly = frame_of(window(minutes), make_view("candles", "1h"))
    opens = [datetime.fromtimestamp(x, UTC.zone).strftime("%H:%M") for x in hourly.x[:7]]
    assert opens == ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]
    assert len(hourly) == 14
    daily = frame_of(window(minutes), make_view("candles", "1d"))
    days = [datetime.fromtimestamp(x, UTC.zone).isoformat() for x in daily.x]
    assert days == ["2026-11-26T00:00:00+00:00", "2026-11-27T00:00:00+00:00"]  # local dates
    assert daily.v.tolist() == [sum(range(10, 400)), sum(range(400, 790))]
    # Around the clock (no session), hours are the clock's.
    around = frame_of(window(minutes, market_for("AAPL").always_open()), make_view("ohlc", "1h"))
    assert datetime.fromtimestamp(around.x[0], UTC.zone).strftime("%H:%M") == "09:00"


def test_the_first_bar_of_a_timeframe_may_hold_part_of_its_minutes() -> None:
    frame = frame_of(window(session("2026-11-27", 12)[2:]), make_view("candles", "5m"))
    assert frame.x[0] == at("2026-11-27T09:30") - 5 * 3600 and frame.v[0] == 10 + 11 + 12


# -- indicators ----------------------------------------------------------------------


def test_moving_averages_match_their_definitions() -> None:
    closes = np.round(np.random.default_rng(1).uniform(90, 110, 300), 2)
    sma = indicators.sma(closes, 20)
    assert np.isnan(sma[:19]).all()
    assert sma[19:] == pytest.approx([closes[i - 19 : i + 1].mean() for i in range(19, 300)])
    ema = indicators.ema(closes, 20)
    alpha = 2 / 21
    reference, weights = [], (1 - alpha) ** np.arange(80)
    for i in range(19, 300):
        used = weights[: min(i + 1, 80)]
        reference.append(np.dot(used, closes[i::-1][: len(used)]) / used.sum())
    assert np.isnan(ema[:19]).all() and ema[19:] == pytest.approx(reference, abs=1e-4)
    # From its 4n-th close on, within a cent of the textbook EMA seeded 4n closes before.
    textbook = closes[0]
    for close in closes[1:]:
        textbook = alpha * close + (1 - alpha) * textbook
    assert abs(ema[-1] - textbook) < 0.01


@pytest.mark.parametrize("name", ["sma20", "sma50", "ema20"])
def test_a_value_is_the_same_to_the_bit_however_much_of_the_series_is_computed(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indicators, "DIGITS", None)  # unrounded: rounding would hide a bit
    closes = np.random.default_rng(2).uniform(1, 1000, 400)
    whole = indicators.of_closes(name, closes)
    for first in (0, 1, 19, 20, 79, 80, 250, 399):
        assert indicators.of_closes(name, closes, first).tobytes() == whole[first:].tobytes()


def test_vwap_is_the_sessions_and_not_drawn_on_the_windows_first_day() -> None:
    minutes = session("2026-11-26", 3) + session("2026-11-27", 3)
    w = window(minutes, closes=[10, 11, 12, 20, 22, 21])
    rows = w.rows
    values = indicators.vwap(rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], w.local())
    assert np.isnan(values[:3]).all()
    typical = (rows[3:, 2] + rows[3:, 3] + rows[3:, 4]) / 3
    expected = np.cumsum(typical * rows[3:, 5]) / np.cumsum(rows[3:, 5])
    assert values[3:] == pytest.approx(expected, abs=1e-4)


# -- figures -------------------------------------------------------------------------

ALL_VIEWS = [
    make_view(chart, timeframe, list(chosen), volume)
    for chart, timeframe, chosen, volume in itertools.product(
        CHARTS, TIMEFRAMES, [(), ("sma20",), INDICATORS], (True, False)
    )
]


@pytest.mark.parametrize("view", ALL_VIEWS, ids=lambda v: v.key or "default")
def test_every_views_figure_is_a_valid_plotly_figure(view: View) -> None:
    chart = ViewChart("AAPL", window(session("2026-11-25") + session("2026-11-26")), view)
    figure = orjson.loads(encode(chart.figure(chart.style())))
    validated = go.Figure(figure)  # raises on anything plotly.py would refuse
    kinds = [trace.type for trace in validated.data]
    price = {"mountain": "scatter", "candles": "candlestick", "ohlc": "ohlc"}[view.chart]
    assert kinds == [price] + ["scatter"] * len(view.indicators) + ["bar"] * view.volume
    axis = validated.layout.xaxis
    if view == DEFAULT:  # the article's chart, as it drew it (tests/test_figure.py)
        assert figure == orjson.loads(encode(default_figure("AAPL", chart.window)))
        assert validated.layout.title.text == "AAPL" and axis.rangeslider.visible
        return
    assert axis.title.text == "Time (New York)" and validated.layout.hovermode == "x unified"
    patterns = [b.pattern for b in axis.rangebreaks]
    assert patterns == (["day of week"] if view.timeframe == "1d" else ["day of week", "hour"])
    if view.volume:
        assert validated.data[-1].yaxis == "y2" and validated.layout.yaxis2.domain == (0, 0.24)
    # No range slider (it redraws every trace); the range buttons stay, and a drag zooms
    # only the time, as under a slider.
    assert figure["layout"]["xaxis"]["rangeslider"] == {"visible": False}
    assert axis.rangeselector.buttons
    assert validated.layout.yaxis.fixedrange and (
        not view.volume or validated.layout.yaxis2.fixedrange
    )


def test_a_market_that_never_closes_hides_nothing() -> None:
    minutes = [at("2026-11-28T00:00") + 60 * i for i in range(100)]  # a Saturday
    chart = ViewChart("BTC-USD", window(minutes, market_for("BTC-USD")), make_view("candles"))
    axis = chart.figure(chart.style())["layout"]["xaxis"]
    assert "rangebreaks" not in axis and axis["title"]["text"] == "Time (UTC)"


def test_a_candles_delta_carries_the_candles_that_changed() -> None:
    minutes = session("2026-11-27", 12)
    before = ViewChart("AAPL", window(minutes), make_view("candles", "5m"))
    moved = window(minutes, closes=[100 + i % 7 - 3 * (i % 2) for i in range(11)] + [130])
    moved.version = 2
    after = ViewChart("AAPL", moved, make_view("candles", "5m"))
    style = after.style()
    delta = view_delta("AAPL", after.frame, 1, before.style(), style, minutes[-1])
    assert delta["view"] == "candles.5m.vol" and (delta["seq"], delta["base_seq"]) == (2, 1)
    assert "head" not in delta  # the window did not move on
    [candle] = delta["bars"]  # the third 5-minute candle: 09:40 to 09:44
    assert candle[0] == after.frame.x[2] and candle[4] == 130 and candle[2] == 131
    assert delta["style"] == {"y_range": style["y_range"]} and "first" not in delta["style"]


def test_the_synthetic_markets_week_with_exchange_hours_is_drawn_without_gaps() -> None:
    from breaks import widest_gap

    from fetcher.sources.synthetic import SyntheticSource
    from renderer.views import default_figure
    from renderer.window import rows_of

    now = at("2026-11-24T12:00")  # a Tuesday: the window holds a weekend
    week = {"AAPL": now - 7 * 86_400, "EURUSD=X": now - 7 * 86_400}
    result = SyntheticSource(market_hours="exchange").fetch(week, now)
    for symbol, session_only in (("AAPL", True), ("EURUSD=X", False)):
        rows = rows_of([b.as_list() for b in result.bars[symbol]])
        w = Window("e", 1, rows, result.markets[symbol])
        figure = orjson.loads(encode(default_figure(symbol, w)))
        xs = figure["data"][0]["x"]
        shown = [datetime.fromtimestamp(x / 1000, UTC.zone) for x in xs]
        assert all(t.weekday() < 5 for t in shown)
        if session_only:
            assert all("09:30" <= t.strftime("%H:%M") < "16:00" for t in shown)
        breaks = figure["layout"]["xaxis"]["rangebreaks"]
        assert {b["pattern"] for b in breaks} == (
            {"day of week", "hour"} if session_only else {"day of week"}
        )
        assert widest_gap(breaks, xs) == 1  # each night and the weekend: hidden
        chart = ViewChart(symbol, w, make_view("candles", "15m"))
        candles = orjson.loads(encode(chart.figure(chart.style())))
        assert widest_gap(breaks, candles["data"][0]["x"]) == 15


def test_vwap_from_any_bar_on_is_the_same_to_the_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indicators, "DIGITS", None)
    minutes = session("2026-11-25") + session("2026-11-26") + session("2026-11-27")
    closes = np.random.default_rng(3).uniform(90, 110, len(minutes)).round(2).tolist()
    w = window(minutes, closes=closes)
    rows = w.rows
    whole = indicators.vwap(rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], w.local())
    for first in (0, 389, 390, 391, 700, 780, 1169):
        part = indicators.vwap(rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], w.local(), first)
        assert part.tobytes() == whole[first:].tobytes()
