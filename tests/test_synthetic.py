from itertools import pairwise

from common.bars import MINUTE, check_bar
from fetcher.sources.synthetic import DAY, SyntheticSource

NOW = 1_794_999_960.0 + 30  # 30 s into a minute


def test_the_market_is_deterministic_across_instances() -> None:
    since = {"AAPL": int(NOW) - 3600, "RIL.NS": int(NOW) - 600}
    first = SyntheticSource().fetch(since, NOW)
    second = SyntheticSource().fetch(since, NOW)
    assert first.bars == second.bars
    assert first.bars["AAPL"] != first.bars["RIL.NS"][: len(first.bars["AAPL"])]


def test_bars_cover_since_to_now_one_per_minute_and_are_sane() -> None:
    since = int(NOW) - 7 * DAY
    bars = SyntheticSource().fetch({"MSFT": since}, NOW).bars["MSFT"]
    assert len(bars) == 7 * 24 * 60  # since is mid-minute: that minute began before it
    assert bars[0].t >= since
    assert all(b.t % MINUTE == 0 for b in bars)
    assert all(later.t - earlier.t == MINUTE for earlier, later in pairwise(bars))
    for bar in bars:
        check_bar(bar)
    assert all(b.v > 0 for b in bars)


def test_bars_join_up_even_across_midnight() -> None:
    midnight = (int(NOW) // DAY + 1) * DAY
    bars = SyntheticSource().fetch({"TSLA": midnight - 300}, midnight + 300).bars["TSLA"]
    assert [b.t - midnight for b in bars] == list(range(-300, 301, MINUTE))
    for earlier, later in pairwise(bars):
        assert abs(later.o - earlier.c) <= 0.011  # rounding to cents only


def test_every_second_changes_the_minute_in_progress_only() -> None:
    source = SyntheticSource()
    since = {"AAPL": int(NOW) - 300}
    before = source.fetch(since, NOW).bars["AAPL"]
    after = source.fetch(since, NOW + 1).bars["AAPL"]
    assert before[:-1] == after[:-1]  # finished minutes never change
    assert before[-1].t == after[-1].t
    assert before[-1] != after[-1]  # the minute in progress does, every second
    assert after[-1].v > before[-1].v


def test_a_finished_minute_is_the_in_progress_one_at_its_last_second() -> None:
    source = SyntheticSource()
    minute = int(NOW) // MINUTE * MINUTE
    live = source.fetch({"AAPL": minute}, minute + 59).bars["AAPL"][-1]
    later = source.fetch({"AAPL": minute}, minute + 600).bars["AAPL"][0]
    assert live == later


def test_a_whole_hour_at_once_is_the_same_as_minute_by_minute() -> None:
    from fetcher.sources.synthetic import HOUR, _finished_minutes, _minute_bar

    hour = int(NOW) // HOUR
    for symbol in ("AAPL", "RIL.NS"):
        at_once = _finished_minutes(symbol, hour)
        one_by_one = [_minute_bar(symbol, hour * HOUR + MINUTE * i, MINUTE - 1) for i in range(60)]
        assert at_once == one_by_one


def test_with_exchange_hours_a_symbol_trades_only_when_its_exchange_does() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from common.markets import market_for

    week = {s: int(NOW) - 7 * DAY for s in ("AAPL", "RELIANCE.NS", "EURUSD=X", "BTC-USD")}
    result = SyntheticSource(market_hours="exchange").fetch(week, NOW)
    assert result.markets == {s: market_for(s) for s in week}
    new_york = [
        datetime.fromtimestamp(b.t, ZoneInfo("America/New_York")) for b in result.bars["AAPL"]
    ]
    assert {t.weekday() for t in new_york} == {0, 1, 2, 3, 4}
    assert min(t.strftime("%H:%M") for t in new_york) == "09:30"
    assert max(t.strftime("%H:%M") for t in new_york) == "15:59"
    assert len(new_york) == 5 * 390  # a week of whole sessions
    kolkata = [
        datetime.fromtimestamp(b.t, ZoneInfo("Asia/Kolkata")) for b in result.bars["RELIANCE.NS"]
    ]
    assert all("09:15" <= t.strftime("%H:%M") < "15:30" and t.weekday() < 5 for t in kolkata)
    fx = [
        datetime.fromtimestamp(b.t, ZoneInfo("America/New_York")) for b in result.bars["EURUSD=X"]
    ]
    assert {t.weekday() for t in fx} == {0, 1, 2, 3, 4} and {t.hour for t in fx} == set(range(24))
    crypto = [datetime.fromtimestamp(b.t, UTC) for b in result.bars["BTC-USD"]]
    assert len(crypto) == 7 * 24 * 60 and {t.weekday() for t in crypto} == set(range(7))
    # The same bars as around the clock, where both trade: the walk is the one walk.
    always = SyntheticSource().fetch(week, NOW).bars["AAPL"]
    assert set(result.bars["AAPL"]) <= set(always)


def test_around_the_clock_the_hour_the_clocks_repeat_has_no_bars() -> None:
    back = 1_793_512_800  # 2026-11-01 06:00 UTC: New York's clocks go back to 01:00
    result = SyntheticSource().fetch({"AAPL": back - 3600}, back + 7200)
    minutes = [b.t for b in result.bars["AAPL"]]
    assert minutes == list(range(back - 3600, back, MINUTE)) + list(
        range(back + 3600, back + 7201, MINUTE)
    )
    assert result.markets["AAPL"].name == "New York" and not result.markets["AAPL"].has_sessions
