"""Sources serving history at a resolution: who can, and the synthetic and CSV markets'
coarse bars against the rollup of their own minutes (yfinance's are in
test_source_yahoo_history.py)."""

from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path

import pytest

from common.bars import MINUTE, Bar
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
    for source in (CsvReplaySource(path), YahooSource(), SyntheticSource()):
        assert serves_history(source) and isinstance(source, Source)
    plain = MinutesOnly()
    assert isinstance(plain, Source) and not serves_history(plain)
    assert not isinstance(plain, HistorySource)


# -- the synthetic market -------------------------------------------------------

DEPTHS = {Resolution.M5: 60, Resolution.H1: 730, Resolution.D1: 7300}


def synthetic_history(
    source: SyntheticSource, resolution: Resolution, now: float = NOW
) -> list[Bar]:
    span = (int(now) - DEPTHS[resolution] * DAY, int(now) + 1)
    return source.history(resolution, {"AAPL": span}, now).columns["AAPL"].bars()


@pytest.mark.parametrize("hours", ["always", "exchange"])
def test_the_synthetic_markets_coarse_bars_are_its_minutes_rolled_up(hours: str) -> None:
    """Where both exist (the last days), to the cent; and a finished 5m, 1h or 1d bar is
    the same whichever process draws it."""
    source = SyntheticSource(hours)
    market = source.market("AAPL")
    minutes = source.fetch({"AAPL": int(NOW) - 5 * DAY}, NOW).bars["AAPL"]
    finished = [bar for bar in minutes if bar.t + MINUTE <= NOW]
    for resolution in COARSE:
        bars = {bar.t: bar for bar in synthetic_history(source, resolution)}
        rolled = rollup(finished, resolution, market)[1:-1]  # whole bars only
        assert rolled and all(bars[bar.t] == bar for bar in rolled), resolution
        assert synthetic_history(SyntheticSource(hours), resolution) == list(bars.values())


@pytest.mark.parametrize("hours", ["always", "exchange"])
def test_the_synthetic_markets_resolutions_agree_all_the_way_back(hours: str) -> None:
    """1h bars are the 5m bars rolled up, 1d bars the 1h bars, across every region of the
    past (drawn coarser the further back), and the line has no gap between them."""
    source = SyntheticSource(hours)
    market = source.market("AAPL")
    fine, hourly, daily = (synthetic_history(source, r) for r in COARSE)
    for finer, coarser, resolution in (
        (fine, hourly, Resolution.H1),
        (hourly, daily, Resolution.D1),
    ):
        held = {bar.t: bar for bar in coarser}
        rolled = rollup(finer, resolution, market)[1:-1]
        assert len(rolled) > 250 and all(held[bar.t] == bar for bar in rolled), resolution
    assert daily[0].t < NOW - 19 * 365 * DAY  # twenty years of days
    if hours == "always":  # one market day after another: each opens where the last closed
        assert all(b.o == a.c for a, b in pairwise(daily))
    for bars in (fine, hourly, daily):
        assert all(b.l <= min(b.o, b.c) <= max(b.o, b.c) <= b.h for b in bars)
        assert [b.t for b in bars] == sorted({b.t for b in bars})


def test_the_synthetic_market_gives_no_bar_of_a_time_to_come() -> None:
    source = SyntheticSource()
    for resolution in COARSE:
        bars = synthetic_history(source, resolution)
        assert bars[-1].t <= NOW < bars[-1].t + resolution.seconds + MINUTE
    later = source.history(Resolution.D1, {"AAPL": (int(NOW) + DAY, int(NOW) + 2 * DAY)}, NOW)
    assert later.columns["AAPL"].bars() == []


# -- the CSV replay ------------------------------------------------------------


def rolled_minutes(
    source: CsvReplaySource,
    symbol: str,
    resolution: Resolution,
    span: tuple[int, int],
    now: float = NOW,
) -> list[Bar]:
    """What the source's own minutes from ``span``'s start to ``now`` roll up to."""
    minutes = source.fetch({symbol: span[0]}, now).bars[symbol]
    # The replay says nothing of sessions: its symbols' clocks around the clock.
    market = market_for(symbol).always_open()
    return [b for b in rollup(minutes, resolution, market) if span[0] <= b.t < span[1]]


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
