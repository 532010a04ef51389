"""The live stream and the poll writing one symbol's bars (common.contract.store): the
stream's writes made while a poll downloads do not get the poll's bars refused, the
poll is authoritative for the minutes closed when it asked, the minute in progress keeps
what each knows best, and a minute the stream missed comes from the next poll.

The poll is the real fetch tick (fetcher.tick) through yfinance, against the recorded
chart-API bodies served by tests/test_source_yahoo.py's fake session.
"""

import dataclasses
from collections.abc import Iterator

import pytest
import redis
from test_source_yahoo import (
    AAPL_LIVE_MINUTE,
    LATER,
    NOW,
    FakeYahoo,
    fresh_yfinance,
    recorded,
    recorded_bars,
)

from common.bars import Bar
from common.contract.keys import Keys
from common.contract.store import read_bars
from common.settings import Settings, SourceSpec
from fetcher.sources.yahoo import YahooSource
from fetcher.store import BarStore
from fetcher.tick import run_tick

__all__ = ["fresh_yfinance"]  # its autouse fixture, for this module too

pytestmark = pytest.mark.filterwarnings(
    r"ignore:The inplace keyword in DataFrame\.(sort_index|rename) is deprecated"
    r":pandas.errors.Pandas4Warning:yfinance"
)

CLOSED = AAPL_LIVE_MINUTE - 60  # 14:29 New York: closed when the poll asked at NOW
POLLED = {b.t: b for b in recorded_bars("AAPL.1m.json")}
POLLED_LATER = {b.t: b for b in recorded_bars("AAPL.1m.later.json")}


@pytest.fixture
def yahoo_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, symbols=("AAPL",), source=SourceSpec("yfinance"))


@pytest.fixture
def yahoo() -> Iterator[FakeYahoo]:
    fake = FakeYahoo()
    fake.charts["AAPL"] = recorded("AAPL.1m.json")
    yield fake
    assert fake.strays == []


@pytest.fixture
def store(client: "redis.Redis", yahoo_settings: Settings) -> BarStore:
    return BarStore(client, Keys(yahoo_settings.key_prefix), yahoo_settings.window_minutes)


def stored(store: BarStore) -> dict[int, Bar]:
    return {b.t: b for b in read_bars(store.client, store.keys, "AAPL")}


def stream(store: BarStore, as_of: float, *bars: Bar) -> None:
    outcome = store.upsert("AAPL", bars, as_of=as_of, now=as_of, writer="stream")
    assert not outcome.stale


def test_the_poll_lands_over_stream_writes_made_during_its_download(
    yahoo_settings: Settings, client: "redis.Redis", yahoo: FakeYahoo, store: BarStore
) -> None:
    live = POLLED[AAPL_LIVE_MINUTE]
    # While the poll that started at NOW downloads, the stream writes 14:29 (it joined
    # mid-minute: its open is not the minute's) and 14:30 with a trade after NOW.
    stream(store, NOW + 1, Bar(CLOSED, 1.0, 999.0, 0.5, 2.0, 7))
    late_close = round(live.c + 0.37, 2)
    stream(store, NOW + 2, Bar(AAPL_LIVE_MINUTE, live.c, live.h + 1, live.c, late_close, 5))

    report = run_tick(yahoo_settings, client, YahooSource(session=yahoo), now=NOW)

    assert report.changed, report  # not refused as older than the stream's writes
    bars = stored(store)
    assert bars[CLOSED] == POLLED[CLOSED]  # closed when the poll asked: the poll's bar
    assert bars[AAPL_LIVE_MINUTE] == Bar(
        AAPL_LIVE_MINUTE, live.o, live.h + 1, live.l, late_close, max(live.v, 5)
    )  # the poll's open and low, the stream's high and its close after NOW
    assert set(bars) >= set(POLLED)

    # The stream's flush of 14:29 that comes after the poll changes nothing there.
    stream(store, NOW + 3, Bar(CLOSED, 1.0, 999.0, 0.5, 3.0, 9))
    assert stored(store)[CLOSED] == POLLED[CLOSED]

    # A later poll, newer than any trade the stream wrote, replaces the minute whole.
    yahoo.charts["AAPL"] = recorded("AAPL.1m.later.json")
    run_tick(yahoo_settings, client, YahooSource(session=yahoo), now=LATER)
    assert stored(store)[AAPL_LIVE_MINUTE] == POLLED_LATER[AAPL_LIVE_MINUTE]


def test_the_stream_moves_the_minute_in_progress_after_a_poll(
    yahoo_settings: Settings, client: "redis.Redis", yahoo: FakeYahoo, store: BarStore
) -> None:
    run_tick(yahoo_settings, client, YahooSource(session=yahoo), now=NOW)
    live = POLLED[AAPL_LIVE_MINUTE]
    stream(store, NOW + 5, Bar(AAPL_LIVE_MINUTE, 1.0, live.h, live.l - 1, 123.45, 3))
    assert stored(store)[AAPL_LIVE_MINUTE] == Bar(
        AAPL_LIVE_MINUTE, live.o, live.h, live.l - 1, 123.45, live.v
    )  # the open stays the poll's: the stream joined the minute late
    next_minute = AAPL_LIVE_MINUTE + 60
    stream(store, NOW + 40, Bar(next_minute, 124.0, 125.0, 123.0, 124.5, 10))
    assert stored(store)[next_minute] == Bar(next_minute, 124.0, 125.0, 123.0, 124.5, 10)


def test_each_writer_is_refused_only_its_own_older_writes(store: BarStore) -> None:
    bar = Bar(AAPL_LIVE_MINUTE, 10.0, 10.0, 10.0, 10.0, 1)
    assert not store.upsert("AAPL", [bar], as_of=NOW + 10, now=NOW, writer="stream").stale
    assert store.upsert("AAPL", [bar], as_of=NOW + 9, now=NOW, writer="stream").stale
    assert not store.upsert("AAPL", [bar], as_of=NOW, now=NOW).stale  # the poll's own clock
    assert store.upsert("AAPL", [bar], as_of=NOW - 1, now=NOW).stale


def test_a_minute_missed_while_the_stream_was_down_comes_from_the_next_poll(
    yahoo_settings: Settings, client: "redis.Redis", yahoo: FakeYahoo, store: BarStore
) -> None:
    early = sorted(POLLED)[:5]  # 14:00-14:04: a poll stored these, then stopped
    polled_at = early[-1] + 20
    store.upsert("AAPL", [POLLED[t] for t in early], as_of=polled_at, now=polled_at)
    # The stream was down from 14:05 and came back for 14:30 only.
    stream(store, NOW + 1, POLLED[AAPL_LIVE_MINUTE])
    assert set(stored(store)) == {*early, AAPL_LIVE_MINUTE}

    run_tick(yahoo_settings, client, YahooSource(session=yahoo), now=NOW)

    asked = int(yahoo.minute_requests()["AAPL"]["period1"])
    assert asked <= early[-1]  # from the minute the last poll caught, not the newest stored
    assert set(stored(store)) == set(POLLED)
