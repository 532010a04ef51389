"""Sources serving history at a resolution: who can, and the synthetic and CSV markets'
coarse bars against the rollup of their own minutes (yfinance's are in
test_source_yahoo_history.py)."""

import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from common.bars import MINUTE, Bar, check_bar
from common.markets import market_for
from common.resolutions import Resolution, rollup
from fetcher.sources import csv_replay
from fetcher.sources.base import FetchResult, HistorySource, Source, serves_history
from fetcher.sources.csv_replay import CsvReplaySource
from fetcher.sources.synthetic import SyntheticSource
from fetcher.sources.yahoo import YahooSource

NOW = 1_794_999_960.0 + 30  # Wednesday 2026-11-18 11:06:30 UTC (06:06 in New York)
DAY = 86_400
SYMBOLS = ("AAPL", "RELIANCE.NS", "EURUSD=X", "BTC-USD")
COARSE = (Resolution.M5, Resolution.H1, Resolution.D1)


class MinutesOnly:
    name = "minutes"

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        return FetchResult(bars={symbol: [] for symbol in since})


def test_a_source_that_serves_history_is_told_from_one_that_does_not(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("time,open,high,low,close,volume\n1,1,2,0.5,1.5,10\n")
    for source in (SyntheticSource(), CsvReplaySource(path), YahooSource()):
        assert serves_history(source) and isinstance(source, Source)
    plain = MinutesOnly()
    assert isinstance(plain, Source) and not serves_history(plain)
    assert not isinstance(plain, HistorySource)


# -- the synthetic market ----------------------------------------------------------


def rolled_minutes(
    source: SyntheticSource | CsvReplaySource,
    symbol: str,
    resolution: Resolution,
    span: tuple[int, int],
    now: float = NOW,
) -> list[Bar]:
    """What the source's own minutes from ``span``'s start to ``now`` roll up to."""
    minutes = source.fetch({symbol: span[0]}, now).bars[symbol]
    if isinstance(source, SyntheticSource):
        market = source.market(symbol)
    else:  # the replay says nothing of sessions: its symbols' clocks around the clock
        market = market_for(symbol).always_open()
    return [b for b in rollup(minutes, resolution, market) if span[0] <= b.t < span[1]]


@pytest.mark.parametrize("hours", ["always", "exchange"])
@pytest.mark.parametrize("resolution", [Resolution.M5, Resolution.H1])
def test_synthetic_coarse_bars_are_the_rollup_of_its_minutes_to_the_one_in_progress(
    hours: str, resolution: Resolution
) -> None:
    source = SyntheticSource(market_hours=hours)
    span = (int(NOW) - 2 * DAY - 1234, int(NOW) + 1)

    result = source.history(resolution, dict.fromkeys(SYMBOLS, span), NOW)

    for symbol in SYMBOLS:
        bars = result.bars[symbol]
        assert bars == rolled_minutes(source, symbol, resolution, span), symbol
        assert len(bars) > 2 * DAY // resolution.seconds // 5  # every one trades some
        assert result.markets[symbol] == source.market(symbol)
    # The one in progress moves with the second, as the minute does (crypto never closes).
    later = source.history(resolution, {"BTC-USD": span}, NOW + 1).bars["BTC-USD"]
    now = result.bars["BTC-USD"]
    assert later[:-1] == now[:-1] and later[-1] != now[-1] and later[-1].t == now[-1].t


@pytest.mark.parametrize(
    ("symbol", "hours", "day"),
    [
        ("AAPL", "exchange", (2021, 3, 15)),  # a Monday in the first year of minutes
        ("AAPL", "always", (2025, 11, 2)),  # New York's clocks go back: 25 hours, one hidden
        ("RELIANCE.NS", "always", (2024, 2, 29)),  # Kolkata's midnight is 18:30 UTC
    ],
)
def test_a_synthetic_daily_bar_is_the_rollup_of_that_days_minutes(
    symbol: str, hours: str, day: tuple[int, int, int]
) -> None:
    source = SyntheticSource(market_hours=hours)
    midnight = int(datetime(*day, tzinfo=ZoneInfo(market_for(symbol).tz)).timestamp())
    span = (midnight, midnight + 1)
    minutes = source.fetch({symbol: midnight}, midnight + 25 * 3600).bars[symbol]

    daily = source.history(Resolution.D1, {symbol: span}, NOW).bars[symbol]

    assert daily == rollup(minutes, Resolution.D1, source.market(symbol))[:1]
    assert daily[0].t == midnight


def test_synthetic_sessions_have_bars_only_while_the_exchange_trades() -> None:
    source = SyntheticSource(market_hours="exchange")
    span = (int(NOW) - 30 * DAY, int(NOW) + 1)

    hours = source.history(Resolution.H1, {"AAPL": span, "RELIANCE.NS": span}, NOW).bars
    days = source.history(Resolution.D1, {"AAPL": span}, NOW).bars["AAPL"]

    new_york = [datetime.fromtimestamp(b.t, ZoneInfo("America/New_York")) for b in hours["AAPL"]]
    assert {t.strftime("%H:%M") for t in new_york} == {f"{h:02d}:30" for h in range(9, 16)}
    assert {t.weekday() for t in new_york} == set(range(5))
    kolkata = [datetime.fromtimestamp(b.t, ZoneInfo("Asia/Kolkata")) for b in hours["RELIANCE.NS"]]
    assert min(t.strftime("%H:%M") for t in kolkata) == "09:15"
    assert max(t.strftime("%H:%M") for t in kolkata) == "15:15"  # the session ends at 15:30
    # 30 days back from a Wednesday before New York opens: 21 sessions.
    assert len(days) == 21 and all(datetime.fromtimestamp(b.t, UTC).weekday() < 5 for b in days)


def test_synthetic_daily_history_reaches_back_twenty_years_and_joins_the_minutes() -> None:
    always, exchange = SyntheticSource(), SyntheticSource(market_hours="exchange")
    span = (int(NOW) - 20 * 365 * DAY, int(NOW) + 1)

    every_day = always.history(Resolution.D1, {"MSFT": span}, NOW).bars["MSFT"]
    weekdays = exchange.history(Resolution.D1, {"MSFT": span}, NOW).bars["MSFT"]

    assert len(every_day) == 20 * 365  # the day 20 * 365 days back began before the span
    assert [b.t for b in every_day] == sorted({b.t for b in every_day})
    assert all(check_bar(b) == b for b in every_day + weekdays)
    assert all(datetime.fromtimestamp(b.t, UTC).weekday() < 5 for b in weekdays)
    # Each day opens where the one before closed, across 2020-01-01, where the cheaper
    # model of whole days gives way to the minutes.
    assert all(later.o == earlier.c for earlier, later in pairwise(every_day))
    minutes_begin = int(datetime(2020, 1, 1, tzinfo=ZoneInfo("America/New_York")).timestamp())
    assert minutes_begin in {b.t for b in every_day}
    first = always.fetch({"MSFT": minutes_begin - 600}, minutes_begin + 59).bars["MSFT"]
    assert [b.t for b in first] == [minutes_begin]


SAME_BARS = """
import json, sys
from common.resolutions import Resolution
from fetcher.sources.synthetic import SyntheticSource
from fetcher.sources.yahoo import YahooSource
now = float(sys.argv[1])
span = (int(now) - 400 * 86400, int(now) + 1)
result = SyntheticSource("exchange").history(Resolution.H1, {"AAPL": span, "BP.L": span}, now)
print(json.dumps({s: [b.as_list() for b in bars] for s, bars in result.bars.items()}))
"""


def test_synthetic_history_is_the_same_in_every_process() -> None:
    here = SyntheticSource("exchange").history(
        Resolution.H1, dict.fromkeys(("AAPL", "BP.L"), (int(NOW) - 400 * DAY, int(NOW) + 1)), NOW
    )
    other = subprocess.run(
        [sys.executable, "-c", SAME_BARS, str(int(NOW))],
        capture_output=True,
        check=True,
        text=True,
        env={"PYTHONPATH": str(Path(__file__).parent.parent), "PYTHONHASHSEED": "random"},
    )
    there = json.loads(other.stdout)
    assert {s: [b.as_list() for b in bars] for s, bars in here.bars.items()} == there
    assert len(there["AAPL"]) > 1500


# -- the CSV replay ----------------------------------------------------------------


@pytest.fixture
def replay(tmp_path: Path) -> CsvReplaySource:
    path = tmp_path / "bars.csv"
    rows = ["symbol,time,open,high,low,close,volume"]
    for i in range(7):  # a tape of 7 minutes, so bars of every length cut it differently
        rows.append(f"AAPL,{i},{10 + i},{12 + i},{9 + i},{11 + i},{100 * (i + 1)}")
    rows.append("BP.L,0,50,51,49,50.5,300")
    path.write_text("\n".join(rows) + "\n")
    return CsvReplaySource(path)


@pytest.mark.parametrize("resolution", COARSE)
def test_csv_coarse_bars_are_the_rollup_of_its_minutes(
    replay: CsvReplaySource, resolution: Resolution, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_replay, "CHUNK_MINUTES", 97)  # bars split between chunks
    span = (int(NOW) - 3 * DAY + 77, int(NOW) - DAY // 3)

    result = replay.history(resolution, {"AAPL": span, "BP.L": span, "TSLA": span}, NOW)

    for symbol in ("AAPL", "BP.L"):
        bars = result.bars[symbol]
        assert bars == rolled_minutes(replay, symbol, resolution, span), symbol
        assert bars and all(span[0] <= b.t < span[1] for b in bars)
    assert result.bars["TSLA"] == [] and "not in the replayed file" in result.errors["TSLA"]


def test_csv_history_ends_with_the_current_minute(replay: CsvReplaySource) -> None:
    hour = replay.history(Resolution.H1, {"AAPL": (int(NOW) - 3600, int(NOW) + 3600)}, NOW)
    last = hour.bars["AAPL"][-1]
    current = int(NOW) // MINUTE * MINUTE
    minutes = replay.fetch({"AAPL": last.t}, NOW).bars["AAPL"]
    assert last == rollup(minutes, Resolution.H1, market_for("AAPL").always_open())[-1]
    assert last.t <= current < last.t + 3600
