"""YahooSource against recorded Yahoo responses, through yfinance's real code path.

The only thing replaced is the HTTP transport: yfinance accepts a ``session=`` and does
all its requests through it (cookie, crumb, time zone probe, chart), so ``FakeYahoo`` is
a curl_cffi Session (yfinance refuses any other type) whose ``request`` answers from
``tests/data/yahoo`` instead of opening a connection. Everything from ``download()`` to
the JSON parsing, time zones and frame assembly is yfinance's own.
"""

import json
import math
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest
import yfinance as yf
import yfinance.cache as yf_cache
from curl_cffi import requests as curl_requests
from curl_cffi.requests import Response
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from hypothesis import given
from hypothesis import strategies as st
from yfinance.data import SingletonMeta, YfData

from common.bars import Bar, check_bar
from common.settings import SourceSpec
from fetcher.sources import make_source
from fetcher.sources.base import RateLimited, SourceError
from fetcher.sources.yahoo import (
    MAX_LOOKBACK,
    Download,
    YahooSource,
    bars_from_frame,
    plan_downloads,
)

# yfinance 1.7 still uses pandas' deprecated inplace= (in its own modules, on every
# download); with warnings as errors that would fail each symbol inside yfinance.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:The inplace keyword in DataFrame\.(sort_index|rename) is deprecated"
    r":pandas.errors.Pandas4Warning:yfinance"
)

DATA = Path(__file__).parent / "data" / "yahoo"
DAY = 86_400

NOW = 1750444225.0  # 2025-06-20 14:30:25 New York = 18:30:25 UTC, when AAPL.1m.json was served
LATER = NOW + 30  # when AAPL.1m.later.json was served
AAPL_NULL_MINUTE = 1750443120  # 14:12 New York: Yahoo sent nulls
AAPL_LIVE_MINUTE = 1750444200  # 14:30 New York: in progress at NOW
RELIANCE_BAD_MINUTE = 1750412820  # 15:17 Kolkata: high below open and close


def utc(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


class Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json;charset=utf-8"


def recorded(name: str) -> Reply:
    return Reply(200, (DATA / name).read_bytes())


TOO_MANY_REQUESTS = Reply(429, b"Too Many Requests\r\n", "text/plain;charset=utf-8")
NOT_FOUND = Reply(404, (DATA / "not-found.json").read_bytes())


class FakeYahoo(curl_requests.Session):  # type: ignore[type-arg]
    """Yahoo's side of the wire. Chart requests get ``charts[symbol]`` (Yahoo's 404 for
    a symbol without one); the cookie and crumb dance gets what it needs to move on.
    ``outage`` answers every request with one reply or exception."""

    HOSTS = frozenset(
        {
            "query1.finance.yahoo.com",
            "query2.finance.yahoo.com",
            "fc.yahoo.com",
            "guce.yahoo.com",
            "consent.yahoo.com",
        }
    )

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, Reply] = {}
        self.outage: Reply | Exception | None = None
        self.seen: list[tuple[str, dict[str, Any]]] = []  # (url, params)
        self.strays: list[str] = []
        self._lock = threading.Lock()

    def request(  # type: ignore[override]
        self, method: str, url: str, params: Mapping[str, Any] | None = None, **_: Any
    ) -> Response:
        parts = urlsplit(url)
        with self._lock:
            self.seen.append((url, dict(params or {})))
            if parts.hostname not in self.HOSTS:
                self.strays.append(url)
                raise RuntimeError(f"test tried to reach {url}")
        if isinstance(self.outage, Exception):
            raise self.outage
        return _response(url, self.outage or self._route(parts.path))

    def _route(self, path: str) -> Reply:
        if path.startswith("/v8/finance/chart/"):
            return self.charts.get(unquote(path.rsplit("/", 1)[1]), NOT_FOUND)
        if path == "/v1/test/getcrumb":
            return Reply(200, b"Qz1xYzNkLmZr", "text/plain;charset=utf-8")
        return Reply(404, b"", "text/html;charset=utf-8")  # fc.yahoo.com, consent pages

    def minute_requests(self) -> dict[str, dict[str, Any]]:
        """symbol -> params of its 1-minute chart request."""
        found = {}
        for url, params in self.seen:
            if "/v8/finance/chart/" in url and params.get("interval") == "1m":
                found[unquote(url.rsplit("/", 1)[1])] = params
        return found

    def asked_about(self, symbol: str) -> bool:
        return any(url.endswith(f"/chart/{symbol}") for url, _ in self.seen)


def _response(url: str, reply: Reply) -> Response:
    response = Response()
    response.url = url
    response.status_code = reply.status
    response.ok = reply.status < 400
    response.reason = "OK" if response.ok else "Error"
    response.headers["content-type"] = reply.content_type
    response.content = reply.body
    return response


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any real curl request or socket connection fails the test. yfinance swallows
    exceptions per symbol, so the attempts are also checked afterwards."""
    attempts: list[str] = []

    def refuse_http(self: object, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        attempts.append(url)
        raise RuntimeError(f"real HTTP in a test: {method} {url}")

    def refuse_socket(self: socket.socket, address: object) -> None:
        attempts.append(repr(address))
        raise RuntimeError(f"socket connection in a test: {address!r}")

    monkeypatch.setattr(curl_requests.Session, "request", refuse_http)
    monkeypatch.setattr(socket.socket, "connect", refuse_socket)
    yield
    assert attempts == []


@pytest.fixture(autouse=True)
def fresh_yfinance(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The time zone and cookie caches are sqlite files in the user's cache dir and
    # would carry a symbol's time zone from one test into the next: use yfinance's
    # own do-nothing stand-ins.
    monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", yf_cache._TzCacheDummy())
    monkeypatch.setattr(yf_cache._CookieCacheManager, "_Cookie_cache", yf_cache._CookieCacheDummy())
    # YfData is a process-wide singleton holding the crumb, the cookie strategy and an
    # LRU of time zone probe responses.
    monkeypatch.delitem(SingletonMeta._instances, YfData, raising=False)
    YfData.cache_get.cache_clear()
    yield
    YfData.cache_get.cache_clear()


class KnownTimeZones:
    """yfinance's time zone cache after the first good tick: the probe request is skipped
    and a failure surfaces on the chart request itself, a different path in yfinance."""

    tz_db = None

    def lookup(self, ticker: str) -> str | None:
        return {"AAPL": "America/New_York", "RELIANCE.NS": "Asia/Kolkata"}.get(ticker)

    def store(self, ticker: str, tz: str | None) -> None:
        pass


@pytest.fixture(params=["cold", "warm"], ids=["tz-cache-cold", "tz-cache-warm"])
def tz_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "warm":
        monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", KnownTimeZones())
    return str(request.param)


@pytest.fixture
def yahoo() -> Iterator[FakeYahoo]:
    fake = FakeYahoo()
    fake.charts["AAPL"] = recorded("AAPL.1m.json")
    fake.charts["RELIANCE.NS"] = recorded("RELIANCE.NS.1m.json")
    yield fake
    assert fake.strays == []


@pytest.fixture
def source(yahoo: FakeYahoo) -> YahooSource:
    return YahooSource(session=yahoo)


def recorded_bars(name: str, since: int = 0, skip: tuple[int, ...] = ()) -> list[Bar]:
    """The bars a fixture holds, read straight from its JSON: what the source must give."""
    result = json.loads((DATA / name).read_bytes())["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    bars = []
    for i, t in enumerate(result["timestamp"]):
        o, h, low, c, v = (quote[k][i] for k in ("open", "high", "low", "close", "volume"))
        if None in (o, h, low, c) or t < since or t in skip:
            continue
        bars.append(Bar(t, o, h, low, c, v))
    return bars


# --- through yfinance --------------------------------------------------------------


def test_a_batch_from_two_exchanges_becomes_utc_bars(source: YahooSource, yahoo: FakeYahoo) -> None:
    result = source.fetch({"AAPL": 0, "RELIANCE.NS": int(NOW) - 30 * DAY}, NOW)

    assert result.errors == {}
    aapl, reliance = result.bars["AAPL"], result.bars["RELIANCE.NS"]
    assert aapl == recorded_bars("AAPL.1m.json")
    assert reliance == recorded_bars("RELIANCE.NS.1m.json", skip=(RELIANCE_BAD_MINUTE,))
    # Independent of the fixture reader: 14:00 New York (EDT) and 15:00 Kolkata (IST).
    assert aapl[0] == Bar(
        utc(2025, 6, 20, 18, 0),
        200.9499969482422,
        200.99000549316406,
        200.94000244140625,
        200.9600067138672,
        247879,
    )
    assert reliance[0].t == utc(2025, 6, 20, 9, 30)
    assert reliance[-1].t == utc(2025, 6, 20, 9, 59)
    assert len(aapl) == 30 and AAPL_NULL_MINUTE not in {b.t for b in aapl}
    assert len(reliance) == 29 and RELIANCE_BAD_MINUTE not in {b.t for b in reliance}
    assert all(isinstance(b.v, int) and b.t % 60 == 0 for b in aapl + reliance)
    # One download for both, reaching back no further than Yahoo allows.
    asked = yahoo.minute_requests()
    assert set(asked) == {"AAPL", "RELIANCE.NS"}
    for params in asked.values():
        assert params["period1"] == int(NOW) // 60 * 60 - MAX_LOOKBACK
        assert params["includePrePost"] is False


def test_since_is_applied_to_each_symbol_of_one_download(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    # Two hours after the AAPL fixture both symbols are behind, so they share a call
    # starting at the older since; Yahoo (the fixture) sends everything it has.
    aapl_since, reliance_since = utc(2025, 6, 20, 18, 10), utc(2025, 6, 20, 9, 45)

    result = source.fetch({"AAPL": aapl_since, "RELIANCE.NS": reliance_since}, NOW + 2 * 3600)

    assert {p["period1"] for p in yahoo.minute_requests().values()} == {reliance_since}
    assert result.bars["AAPL"] == recorded_bars("AAPL.1m.json", since=aapl_since)
    assert result.bars["AAPL"][0].t == aapl_since
    assert result.bars["RELIANCE.NS"] == recorded_bars(
        "RELIANCE.NS.1m.json", since=reliance_since, skip=(RELIANCE_BAD_MINUTE,)
    )
    assert result.bars["RELIANCE.NS"][0].t == reliance_since


def test_up_to_date_symbols_are_not_dragged_into_a_backfill(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    aapl_since = AAPL_LIVE_MINUTE - 60
    reliance_since = utc(2025, 6, 20, 9, 45)  # its market closed hours ago

    result = source.fetch({"AAPL": aapl_since, "RELIANCE.NS": reliance_since}, NOW)

    asked = yahoo.minute_requests()
    assert asked["AAPL"]["period1"] == aapl_since
    assert asked["RELIANCE.NS"]["period1"] == reliance_since
    assert [b.t for b in result.bars["AAPL"]] == [aapl_since, AAPL_LIVE_MINUTE]
    assert result.bars["RELIANCE.NS"][0].t == reliance_since


def test_a_symbol_without_data_gets_an_error_and_the_others_their_bars(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    yahoo.charts["RELIANCE.NS"] = recorded("RELIANCE.NS.1m.empty.json")

    result = source.fetch({"AAPL": 0, "RELIANCE.NS": 0}, NOW)

    assert result.bars["RELIANCE.NS"] == []
    assert result.errors["RELIANCE.NS"].startswith("no data")
    assert result.bars["AAPL"] == recorded_bars("AAPL.1m.json")
    assert "AAPL" not in result.errors


@pytest.mark.usefixtures("tz_cache")
def test_http_429_for_every_symbol_raises_rate_limited(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    yahoo.outage = TOO_MANY_REQUESTS

    with pytest.raises(RateLimited) as raised:
        source.fetch({"AAPL": AAPL_LIVE_MINUTE, "RELIANCE.NS": utc(2025, 6, 20, 9, 45)}, NOW)

    assert raised.value.kind == "rate_limited"
    assert "AAPL" in str(raised.value)
    assert yahoo.asked_about("AAPL")
    # Refused on the up-to-date call, the source does not go on to the backfill call.
    assert not yahoo.asked_about("RELIANCE.NS")


def test_http_429_for_one_symbol_is_reported_not_raised(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    yahoo.charts["AAPL"] = TOO_MANY_REQUESTS

    result = source.fetch({"AAPL": 0, "RELIANCE.NS": 0}, NOW)

    assert result.bars["AAPL"] == []
    assert result.errors["AAPL"].startswith("rate limited")
    assert len(result.bars["RELIANCE.NS"]) == 29
    assert "RELIANCE.NS" not in result.errors


@pytest.mark.usefixtures("tz_cache")
def test_unreachable_yahoo_raises_source_error(source: YahooSource, yahoo: FakeYahoo) -> None:
    yahoo.outage = CurlConnectionError("Failed to perform, curl: (7) Couldn't connect to server")
    hidden = yf.config.debug.hide_exceptions

    with pytest.raises(SourceError) as raised:
        source.fetch({"AAPL": 0, "RELIANCE.NS": 0}, NOW)

    assert not isinstance(raised.value, RateLimited)
    assert "ConnectionError" in str(raised.value)
    assert "Couldn't connect" in str(raised.value)
    assert yf.config.debug.hide_exceptions == hidden  # the switch the source flips is restored


def test_the_minute_in_progress_changes_between_fetches(
    source: YahooSource, yahoo: FakeYahoo
) -> None:
    first = source.fetch({"AAPL": AAPL_LIVE_MINUTE - 60}, NOW).bars["AAPL"]
    yahoo.charts["AAPL"] = recorded("AAPL.1m.later.json")
    second = source.fetch({"AAPL": AAPL_LIVE_MINUTE}, LATER).bars["AAPL"]

    before, after = first[-1], second[-1]
    assert before.t == after.t == AAPL_LIVE_MINUTE
    assert [b.t for b in second] == [AAPL_LIVE_MINUTE]
    assert after != before
    assert after == recorded_bars("AAPL.1m.later.json", since=AAPL_LIVE_MINUTE)[0]
    assert after.o == before.o and after.v > before.v and after.h > before.h


def test_no_symbols_means_no_request(source: YahooSource, yahoo: FakeYahoo) -> None:
    result = source.fetch({}, NOW)

    assert result.bars == {} and result.errors == {}
    assert yahoo.seen == []


def test_the_configured_source_is_built_without_touching_the_network() -> None:
    built = make_source(SourceSpec("yfinance"))

    assert isinstance(built, YahooSource)
    assert built.name == "yfinance"


# --- planning ----------------------------------------------------------------------


def test_up_to_date_symbols_share_one_download() -> None:
    minute = int(NOW) // 60 * 60
    assert plan_downloads({"B": minute - 120, "A": minute - 60}, NOW) == [
        Download(("A", "B"), minute - 120)
    ]


def test_starts_are_clamped_to_yahoos_window_and_the_current_minute() -> None:
    minute = int(NOW) // 60 * 60
    plans = plan_downloads({"NEW": 0, "AHEAD": minute + 600}, NOW)

    assert plans == [Download(("AHEAD",), minute), Download(("NEW",), minute - MAX_LOOKBACK)]


# --- reading a frame ---------------------------------------------------------------


def frame(rows: list[tuple[str, float, float, float, float, float]], tz: str) -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp(r[0]) for r in rows]).tz_localize(tz)
    return pd.DataFrame(
        [r[1:] for r in rows], index=index, columns=["Open", "High", "Low", "Close", "Volume"]
    )


def test_a_frame_is_sorted_deduplicated_by_minute_and_put_in_utc() -> None:
    nan = math.nan
    data = frame(
        [
            ("2025-06-20 15:02:00", 10.0, 11.0, 9.0, 10.5, 300.0),
            ("2025-06-20 15:00:00", 10.0, 10.0, 10.0, 10.0, 100.0),
            ("2025-06-20 15:01:00", nan, nan, nan, nan, nan),  # padding from another symbol
            ("2025-06-20 15:02:41", 10.0, 12.0, 9.0, 11.5, 350.0),  # same minute, later
            ("2025-06-20 15:03:00", 11.5, 11.5, 11.5, 11.5, nan),  # no volume reported
        ],
        "Asia/Kolkata",
    )

    parsed = bars_from_frame(data, since=0)

    base = utc(2025, 6, 20, 9, 30)
    assert parsed.bars == [
        Bar(base, 10.0, 10.0, 10.0, 10.0, 100),
        Bar(base + 120, 10.0, 12.0, 9.0, 11.5, 350),
        Bar(base + 180, 11.5, 11.5, 11.5, 11.5, 0),
    ]
    assert parsed.rows == 4 and parsed.rejected == []
    assert bars_from_frame(data, since=base + 120).bars == parsed.bars[1:]


def test_insane_bars_are_dropped_and_reported() -> None:
    data = frame(
        [
            ("2025-06-20 14:00", 200.0, 201.0, 199.0, 200.5, 10.0),
            ("2025-06-20 14:01", 200.5, 199.0, 198.0, 200.0, 10.0),  # high below open
            ("2025-06-20 14:02", 0.0, 0.0, 0.0, 0.0, 10.0),  # zero price
            ("2025-06-20 14:03", 200.0, math.inf, 199.0, 200.0, 10.0),
            ("2025-06-20 14:04", 200.0, 201.0, 199.0, 200.5, -5.0),
        ],
        "America/New_York",
    )

    parsed = bars_from_frame(data, since=0)

    assert [b.t for b in parsed.bars] == [utc(2025, 6, 20, 18, 0)]
    assert len(parsed.rejected) == 4
    assert any("high/low" in why for why in parsed.rejected)
    assert any("negative volume" in why for why in parsed.rejected)


def test_naive_timestamps_are_refused_rather_than_guessed() -> None:
    data = frame([("2025-06-20 14:00", 1.0, 1.0, 1.0, 1.0, 1.0)], "UTC").tz_localize(None)

    with pytest.raises(ValueError, match="time zone"):
        bars_from_frame(data, since=0)


prices = st.floats(min_value=0.01, max_value=1e6)


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    seconds = draw(st.lists(st.integers(1_700_000_000, 1_700_020_000), min_size=1, max_size=40))
    rows = [
        [draw(prices), draw(prices), draw(prices), draw(prices), draw(st.integers(-1, 10**9))]
        for _ in seconds
    ]
    index = pd.to_datetime(seconds, unit="s", utc=True).tz_convert("America/New_York")
    data = pd.DataFrame(rows, index=index, columns=["Open", "High", "Low", "Close", "Volume"])
    data.loc[data.index[:: draw(st.integers(2, 5))], "Open"] = np.nan
    return data, draw(st.integers(1_700_000_000, 1_700_020_000))


@given(frames())
def test_whatever_the_frame_the_bars_are_sane_sorted_and_from_since(
    case: tuple[pd.DataFrame, int],
) -> None:
    data, since = case

    bars = bars_from_frame(data, since).bars

    assert [b.t for b in bars] == sorted({b.t for b in bars})
    assert all(b.t >= since and b.t % 60 == 0 for b in bars)
    assert all(check_bar(b) == b for b in bars)


# --- where it trades: real-shaped data across a weekend ----------------------------

WEEKEND_NOW = 1750686300.0 + 12  # Monday 2025-06-23 09:45:12 New York


def test_each_symbol_trades_where_its_metadata_says(source: YahooSource, yahoo: FakeYahoo) -> None:
    from common.markets import NEW_YORK, market_for

    result = source.fetch({"AAPL": 0, "RELIANCE.NS": 0}, NOW)

    assert result.markets == {"AAPL": NEW_YORK, "RELIANCE.NS": market_for("RELIANCE.NS")}
    asked = len(yahoo.seen)
    again = source.fetch({"AAPL": AAPL_LIVE_MINUTE}, NOW)  # once per symbol
    assert again.markets == {"AAPL": NEW_YORK}
    later = [params.get("interval") for url, params in yahoo.seen[asked:] if "/chart/" in url]
    assert later == ["1m"]  # the bars only: the metadata is asked once per symbol


def test_metadata_names_the_zone_and_the_session_of_any_exchange() -> None:
    from datetime import time

    from fetcher.sources.yahoo import market_from_metadata

    oslo = {
        "exchangeTimezoneName": "Europe/Oslo",
        "instrumentType": "EQUITY",
        "currentTradingPeriod": {"regular": {"start": 1750402800, "end": 1750433400}},
    }
    market = market_from_metadata("EQNR.OL", oslo)
    assert market is not None
    assert (market.name, market.tz, market.opens, market.closes) == (
        "Oslo", "Europe/Oslo", time(9, 0), time(17, 30)
    )  # fmt: skip
    crypto = market_from_metadata(
        "BTC-USD", {"exchangeTimezoneName": "UTC", "instrumentType": "CRYPTOCURRENCY"}
    )
    assert crypto is not None and not crypto.has_sessions
    fx = market_from_metadata(
        "EURUSD=X", {"exchangeTimezoneName": "Europe/London", "instrumentType": "CURRENCY"}
    )
    assert fx is not None and fx.weekdays and fx.opens is None
    assert market_from_metadata("X", {"exchangeTimezoneName": "Mars/Olympus"}) is None


def test_real_shaped_bars_across_a_weekend_are_drawn_on_new_york_time_without_gaps(
    yahoo: FakeYahoo,
) -> None:
    """AAPL.1m.weekend.json: Friday 2025-06-20 15:45-15:59 and Monday 2025-06-23
    09:30-09:44 New York, as Yahoo sends a range across a weekend (hand-made, like the
    other recorded responses)."""
    import orjson
    from breaks import widest_gap

    from common.views import make_view
    from renderer.figure import encode
    from renderer.service import ViewChart
    from renderer.views import default_figure
    from renderer.window import Window, rows_of

    yahoo.charts["AAPL"] = recorded("AAPL.1m.weekend.json")
    result = YahooSource(session=yahoo).fetch({"AAPL": 0}, WEEKEND_NOW)
    bars = result.bars["AAPL"]
    assert len(bars) == 30
    window = Window("e", 1, rows_of([b.as_list() for b in bars]), result.markets["AAPL"])

    mountain = orjson.loads(encode(default_figure("AAPL", window)))
    xs = mountain["data"][0]["x"]
    local = [datetime.fromtimestamp(x / 1000, UTC) for x in xs]  # the axis shows New York time
    assert local[0].isoformat() == "2025-06-20T15:45:00+00:00"
    assert local[-1].isoformat() == "2025-06-23T09:44:00+00:00"
    assert all(t.weekday() < 5 and "09:30" <= t.strftime("%H:%M") < "16:00" for t in local)
    axis = mountain["layout"]["xaxis"]
    assert axis["title"]["text"] == "Time (New York)"
    assert axis["rangebreaks"] == [
        {"pattern": "day of week", "bounds": [6, 1]},
        {"pattern": "hour", "bounds": [16.0, 9.5]},
    ]
    assert widest_gap(axis["rangebreaks"], xs) == 1  # Friday's close to Monday's open: a minute

    chart = ViewChart("AAPL", window, make_view("candles", "5m"))
    candles = orjson.loads(encode(chart.figure(chart.style())))
    xs = candles["data"][0]["x"]
    assert len(xs) == 6 and widest_gap(candles["layout"]["xaxis"]["rangebreaks"], xs) == 5
