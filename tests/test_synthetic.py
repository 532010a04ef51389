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
