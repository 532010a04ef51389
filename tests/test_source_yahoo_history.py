"""YahooSource.history against hand-made Yahoo chart bodies at 5m, 1h and 1d (see
tests/data/yahoo/README.md), through yfinance's real code path: only the HTTP transport
is replaced, by test_source_yahoo's FakeYahoo."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_source_yahoo import (  # noqa: F401 - its fixtures, used by name
    DATA,
    NOW,
    FakeYahoo,
    Reply,
    fresh_yfinance,
    no_network,
    recorded,
)

from common.bars import Bar
from common.markets import NEW_YORK
from common.resolutions import Resolution, bar_starts
from fetcher.sources.yahoo import YahooSource
from fetcher.sources.yahoo_history import DEPTH, HistoryDownload, plan_history

# yfinance 1.7 still uses pandas' deprecated inplace= (in its own modules, for the
# dividends and splits of these bodies, and in auto_adjust, whose breaking is tested);
# with warnings as errors that would fail each symbol inside yfinance.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:The inplace keyword in DataFrame\.(sort_index|rename|set_index|drop) is deprecated"
    r":pandas.errors.Pandas4Warning:yfinance"
)

DAY = 86_400
NEW_YORK_ZONE = ZoneInfo("America/New_York")
JUNE_20 = 1750426200  # 09:30 New York, the session NOW is in
AFTER_NVDA = 1718395201.0  # Friday 2024-06-14 16:00:01 New York, after the week's close
NVDA_SPLIT_DAY = int(datetime(2024, 6, 10, tzinfo=NEW_YORK_ZONE).timestamp())


@pytest.fixture
def yahoo() -> Iterator[FakeYahoo]:
    fake = FakeYahoo()
    yield fake
    assert fake.strays == []


@pytest.fixture
def source(yahoo: FakeYahoo) -> YahooSource:
    return YahooSource(session=yahoo)


def body_bars(name: str, daily: bool = False) -> list[Bar]:
    """The bars a body holds, read straight from its JSON: a daily bar starts at its
    day's midnight in New York, an intraday one at its timestamp."""
    result = json.loads((DATA / name).read_bytes())["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    bars = []
    for i, t in enumerate(result["timestamp"]):
        o, h, low, c, v = (quote[k][i] for k in ("open", "high", "low", "close", "volume"))
        if None in (o, h, low, c):
            continue
        if daily:
            day = datetime.fromtimestamp(t, NEW_YORK_ZONE).date()
            t = int(datetime(day.year, day.month, day.day, tzinfo=NEW_YORK_ZONE).timestamp())
        bars.append(Bar(t, o, h, low, c, v))
    return bars


def chart_requests(yahoo: FakeYahoo, interval: str) -> dict[str, dict[str, Any]]:
    """symbol -> params of its chart request for bars at ``interval`` (not metadata)."""
    return {
        url.rsplit("/", 1)[1]: params
        for url, params in yahoo.seen
        if "/v8/finance/chart/" in url
        and params.get("interval") == interval
        and "period1" in params
    }


@pytest.mark.parametrize(
    ("resolution", "name", "count"),
    [(Resolution.M5, "AAPL.5m.json", 11), (Resolution.H1, "AAPL.1h.json", 13)],
)
def test_intraday_history_is_yahoos_bars_at_their_starts(
    source: YahooSource, yahoo: FakeYahoo, resolution: Resolution, name: str, count: int
) -> None:
    yahoo.charts["AAPL"] = recorded(name)
    span = (int(NOW) - 5 * DAY, int(NOW) + 1)

    result = source.history(resolution, {"AAPL": span}, NOW)

    assert result.errors == {}
    bars = result.bars["AAPL"]
    assert bars == body_bars(name) and len(bars) == count
    assert result.markets["AAPL"] == NEW_YORK
    # Yahoo's bars start where ours do: 5 minutes and hours from the session's open.
    assert list(bar_starts([b.t for b in bars], resolution, NEW_YORK)) == [b.t for b in bars]
    asked = chart_requests(yahoo, str(resolution))["AAPL"]
    assert asked["period1"] == span[0] and "period2" in asked and asked["includePrePost"] is False


def test_daily_history_starts_each_bar_at_its_days_midnight_on_the_exchanges_clock(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    yahoo.charts["AAPL"] = recorded("AAPL.1d.json")

    result = source.history(Resolution.D1, {"AAPL": (0, int(NOW) + 1)}, NOW)

    bars = result.bars["AAPL"]
    assert bars == body_bars("AAPL.1d.json", daily=True) and len(bars) == 9
    assert bars[-1].t == int(datetime(2025, 6, 20, tzinfo=NEW_YORK_ZONE).timestamp())
    assert bars[-1].t == bar_starts([JUNE_20 + 3600], Resolution.D1, NEW_YORK)[0]
    assert datetime(2025, 6, 19, tzinfo=NEW_YORK_ZONE).timestamp() not in {b.t for b in bars}


def test_daily_bars_across_a_split_are_split_adjusted_and_not_dividend_adjusted(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    yahoo.charts["NVDA"] = recorded("NVDA.1d.json")

    bars = source.history(Resolution.D1, {"NVDA": (0, int(AFTER_NVDA))}, AFTER_NVDA).bars["NVDA"]

    # NVIDIA split 10 for 1 on Monday 2024-06-10 and paid $0.01 on 06-11. The Friday before
    # closed at 1208.88 as traded: a tenth of it, as Yahoo sends it, not its adjclose.
    assert len(bars) == 10 and bars == body_bars("NVDA.1d.json", daily=True)
    friday, monday = bars[4], bars[5]
    assert monday.t == NVDA_SPLIT_DAY
    assert friday.c == pytest.approx(120.88, abs=0.005) and friday.v == 412_386_000
    assert monday.o / friday.c == pytest.approx(1.0, abs=0.01)  # no tenfold jump


def test_the_bar_of_a_split_in_what_came_back_is_said_and_none_elsewhere(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    """fetcher.history stores a symbol again when a split came after its bars were."""
    yahoo.charts["NVDA"] = recorded("NVDA.1d.json")
    yahoo.charts["AAPL"] = recorded("AAPL.1d.json")

    across = source.history(Resolution.D1, {"NVDA": (0, int(AFTER_NVDA))}, AFTER_NVDA)
    after = source.history(
        Resolution.D1, {"NVDA": (NVDA_SPLIT_DAY + DAY, int(AFTER_NVDA))}, AFTER_NVDA
    )
    plain = source.history(Resolution.D1, {"AAPL": (0, int(NOW) + 1)}, NOW)

    assert across.restated == {"NVDA": NVDA_SPLIT_DAY}
    assert after.restated == {} and after.bars["NVDA"]  # the split is before the span
    assert plain.restated == {}


def test_a_split_yahoo_has_not_applied_yet_is_applied(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    # The same body, as Yahoo sometimes sends it in the days after a split: the bars
    # before it as they traded, ten times the price and a tenth of the volume.
    body = json.loads((DATA / "NVDA.1d.json").read_bytes())
    result = body["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    for i, t in enumerate(result["timestamp"]):
        if t < NVDA_SPLIT_DAY:
            for key in ("open", "high", "low", "close"):
                quote[key][i] *= 10
            quote["volume"][i] //= 10
    yahoo.charts["NVDA"] = Reply(200, json.dumps(body).encode())

    bars = source.history(Resolution.D1, {"NVDA": (0, int(AFTER_NVDA))}, AFTER_NVDA).bars["NVDA"]

    expected = body_bars("NVDA.1d.json", daily=True)
    assert [b.t for b in bars] == [b.t for b in expected]
    for got, want in zip(bars, expected, strict=True):
        assert (got.o, got.h, got.l, got.c) == pytest.approx((want.o, want.h, want.l, want.c))
        assert got.v == want.v


def test_one_download_serves_many_symbols_and_each_gets_its_own_span(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    yahoo.charts["AAPL"] = recorded("AAPL.1d.json")
    yahoo.charts["NVDA"] = recorded("AAPL.1d.json")  # the same days, for another symbol
    june_11, june_16, june_18 = (
        int(datetime(2025, 6, day, tzinfo=NEW_YORK_ZONE).timestamp()) for day in (11, 16, 18)
    )

    result = source.history(
        Resolution.D1, {"AAPL": (june_16, int(NOW) + 1), "NVDA": (june_11, june_18)}, NOW
    )

    every = body_bars("AAPL.1d.json", daily=True)
    assert result.bars["AAPL"] == [b for b in every if b.t >= june_16]
    assert result.bars["NVDA"] == [b for b in every if june_11 <= b.t < june_18]
    asked = chart_requests(yahoo, "1d")
    assert set(asked) == {"AAPL", "NVDA"}
    assert asked["AAPL"]["period1"] == asked["NVDA"]["period1"] == june_11  # one call


def test_history_reaches_back_no_further_than_yahoo_keeps_each_interval(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    yahoo.charts["AAPL"] = recorded("AAPL.5m.json")
    old = (int(NOW) - 400 * DAY, int(NOW) - 300 * DAY)

    result = source.history(Resolution.M5, {"AAPL": (0, int(NOW) + 1), "OLD": old}, NOW)

    assert chart_requests(yahoo, "5m")["AAPL"]["period1"] == int(NOW) - 59 * DAY
    assert result.bars["OLD"] == [] and "last 59 days" in result.errors["OLD"]
    assert not yahoo.asked_about("OLD")
    assert result.bars["AAPL"] == body_bars("AAPL.5m.json")


def test_a_plan_clamps_each_interval_to_its_depth_and_keeps_backfills_apart() -> None:
    now = 1_750_444_225.0
    recent, deep = int(now) - 3 * 3600, int(now) - 600 * DAY
    plans, refused = plan_history(
        Resolution.H1, {"A": (recent, int(now) + 1), "B": (deep, int(now) + 1)}, now
    )
    assert (
        plans
        == [
            HistoryDownload(("A",), recent, None),
            HistoryDownload(("B",), deep, None),
        ]
        and refused == {}
    )
    assert DEPTH[Resolution.H1] == 729 * DAY and DEPTH[Resolution.D1] is None
    old, _ = plan_history(Resolution.D1, {"C": (0, int(now) - 10 * DAY)}, now)
    assert old == [HistoryDownload(("C",), 0, int(now) - 10 * DAY + DAY)]
    clamped, _ = plan_history(Resolution.M5, {"D": (0, int(now) + 1)}, now)
    assert clamped == [HistoryDownload(("D",), int(now) - 59 * DAY, None)]


def test_history_at_one_minute_is_yahoos_minutes(source: YahooSource, yahoo: FakeYahoo) -> None:
    yahoo.charts["AAPL"] = recorded("AAPL.1m.json")
    since = int(datetime(2025, 6, 20, 14, 10, tzinfo=NEW_YORK_ZONE).timestamp())

    bars = source.history(Resolution.M1, {"AAPL": (since, int(NOW) + 1)}, NOW).bars["AAPL"]

    assert bars == source.fetch({"AAPL": since}, NOW).bars["AAPL"]
    assert bars[0].t == since and datetime.fromtimestamp(bars[-1].t, UTC).minute == 30
