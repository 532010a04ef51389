"""common.resolutions: where a coarse bar starts, and rolling finer bars up into it."""

from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.bars import MINUTE, Bar
from common.markets import NEW_YORK, Market, market_for
from common.resolutions import Resolution, bar_starts, rollup

NEW_YORK_ZONE = ZoneInfo("America/New_York")
KOLKATA = market_for("RELIANCE.NS")


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=zone).timestamp())


def start(t: int, resolution: Resolution, market: Market | None) -> int:
    return int(bar_starts([t], resolution, market)[0])


def test_resolutions_have_their_seconds_and_names() -> None:
    assert [(r.value, r.seconds) for r in Resolution] == [
        ("1m", 60), ("5m", 300), ("1h", 3600), ("1d", 86400)
    ]  # fmt: skip
    assert Resolution("1h") is Resolution.H1


def test_hours_count_from_the_sessions_open_and_days_from_local_midnight() -> None:
    moment = at(NEW_YORK_ZONE, 2025, 6, 20, 10, 17)
    assert start(moment, Resolution.H1, NEW_YORK) == at(NEW_YORK_ZONE, 2025, 6, 20, 9, 30)
    assert start(moment, Resolution.M5, NEW_YORK) == at(NEW_YORK_ZONE, 2025, 6, 20, 10, 15)
    assert start(moment, Resolution.D1, NEW_YORK) == at(NEW_YORK_ZONE, 2025, 6, 20)
    around_the_clock = NEW_YORK.always_open()
    assert start(moment, Resolution.H1, around_the_clock) == at(NEW_YORK_ZONE, 2025, 6, 20, 10)
    kolkata = ZoneInfo("Asia/Kolkata")
    in_mumbai = at(kolkata, 2025, 6, 20, 11, 2)
    assert start(in_mumbai, Resolution.H1, KOLKATA) == at(kolkata, 2025, 6, 20, 10, 15)
    assert start(in_mumbai, Resolution.D1, KOLKATA) == at(kolkata, 2025, 6, 20)


def test_without_a_market_the_clock_is_utc() -> None:
    moment = int(datetime(2025, 6, 20, 14, 47, 31, tzinfo=UTC).timestamp())
    assert start(moment, Resolution.M1, None) == moment - 31
    assert start(moment, Resolution.H1, None) == moment - 47 * 60 - 31
    assert start(moment, Resolution.D1, None) == int(datetime(2025, 6, 20, tzinfo=UTC).timestamp())


def test_a_day_the_clocks_change_starts_at_its_own_midnight() -> None:
    # 2025-11-02: New York's clocks go back at 2 a.m. (EDT midnight is 04:00 UTC) and
    # 2025-03-09 forward (EST midnight is 05:00 UTC); the session is after either.
    back_close = at(NEW_YORK_ZONE, 2025, 11, 3, 15, 59) - 86_400
    assert start(back_close, Resolution.D1, NEW_YORK) == at(NEW_YORK_ZONE, 2025, 11, 2)
    assert at(NEW_YORK_ZONE, 2025, 11, 2) % 86_400 == 4 * 3600
    forward_open = at(NEW_YORK_ZONE, 2025, 3, 9, 9, 30)
    assert start(forward_open, Resolution.D1, NEW_YORK) == at(NEW_YORK_ZONE, 2025, 3, 9)
    assert at(NEW_YORK_ZONE, 2025, 3, 9) % 86_400 == 5 * 3600


def test_the_repeated_hour_is_a_bar_of_its_own_the_skipped_one_joins_the_one_before() -> None:
    clock = NEW_YORK.always_open()
    back = 1_762_063_200  # 2025-11-02 06:00 UTC: 02:00 EDT becomes 01:00 EST
    assert [start(back + s, Resolution.H1, clock) - back for s in (-1, 0, 3599)] == [
        -3600, 0, 0
    ]  # fmt: skip
    # 2025-03-09 07:00 UTC: 02:00 EST becomes 03:00 EDT. Counting hours from 09:30, the
    # 01:30-02:30 bar loses its second half and 02:30 never comes: 03:00-03:29 EDT joins it.
    forward = 1_741_503_600
    hours = [start(forward + s, Resolution.H1, NEW_YORK) for s in (-1, 0, 1799, 1800)]
    assert hours == [forward - 1800, forward - 1800, forward - 1800, forward + 1800]


def test_rollup_takes_first_open_highest_high_lowest_low_last_close_and_sums_volume() -> None:
    base = at(NEW_YORK_ZONE, 2025, 6, 20, 9, 30)
    minutes = [
        Bar(base, 10.0, 10.5, 9.9, 10.2, 100),
        Bar(base + 60, 10.2, 11.0, 10.1, 10.8, 200),
        Bar(base + 120, 10.8, 10.9, 9.5, 9.7, 50),
        Bar(base + 300, 9.7, 9.8, 9.6, 9.65, 7),
    ]
    assert rollup(minutes, Resolution.M5, NEW_YORK) == [
        Bar(base, 10.0, 11.0, 9.5, 9.7, 350),
        Bar(base + 300, 9.7, 9.8, 9.6, 9.65, 7),
    ]
    shuffled = [minutes[2], minutes[0], minutes[3], minutes[1]]
    assert rollup(shuffled, Resolution.H1, NEW_YORK) == [Bar(base, 10.0, 11.0, 9.5, 9.65, 357)]
    assert rollup(minutes, Resolution.M1, NEW_YORK) == minutes
    assert rollup([], Resolution.D1, NEW_YORK) == []


# -- properties ---------------------------------------------------------------------

MARKETS = st.sampled_from([None, NEW_YORK, NEW_YORK.always_open(), KOLKATA, market_for("BTC-USD")])
# Two weeks around New York's change of clocks in November 2025, so some cases cross it.
FIRST_MINUTE = 1_762_063_200 // MINUTE - 7 * 1440


@st.composite
def minute_bars(draw: st.DrawFn) -> list[Bar]:
    count = draw(st.integers(1, 200))
    gaps = draw(st.lists(st.integers(1, 400), min_size=count, max_size=count))
    minute = FIRST_MINUTE + draw(st.integers(0, 14 * 1440))
    price = draw(st.floats(1.0, 1000.0))
    bars = []
    for gap in gaps:
        minute += gap
        o = price
        c = price * draw(st.floats(0.95, 1.05))
        h = max(o, c) * draw(st.floats(1.0, 1.02))
        low = min(o, c) * draw(st.floats(0.98, 1.0))
        bars.append(Bar(minute * MINUTE, o, h, low, c, draw(st.integers(0, 10**6))))
        price = c
    return bars


@given(minute_bars(), MARKETS)
def test_rolling_up_in_steps_is_rolling_up_at_once(bars: list[Bar], market: Market | None) -> None:
    five = rollup(bars, Resolution.M5, market)
    hours = rollup(bars, Resolution.H1, market)
    assert rollup(five, Resolution.H1, market) == hours
    assert rollup(hours, Resolution.D1, market) == rollup(bars, Resolution.D1, market)


@given(minute_bars(), MARKETS, st.sampled_from(list(Resolution)))
def test_a_rollup_keeps_the_volume_bounds_its_prices_and_starts_each_bar_at_its_start(
    bars: list[Bar], market: Market | None, resolution: Resolution
) -> None:
    coarse = rollup(bars, resolution, market)
    assert sum(b.v for b in coarse) == sum(b.v for b in bars)
    assert all(b.l <= min(b.o, b.c) and b.h >= max(b.o, b.c) for b in coarse)
    assert [b.t for b in coarse] == sorted({b.t for b in coarse})
    assert coarse[0].o == bars[0].o and coarse[-1].c == bars[-1].c
    assert max(b.h for b in coarse) == max(b.h for b in bars)
    starts = bar_starts([m.t for m in bars], resolution, market).tolist()
    for bar in coarse:  # each coarse bar is exactly the minutes that start in it
        held = [m for m, t in zip(bars, starts, strict=True) if t == bar.t]
        assert held and bar.t <= held[0].t
        assert (bar.o, bar.c, bar.v) == (held[0].o, held[-1].c, sum(m.v for m in held))


@pytest.mark.parametrize("resolution", list(Resolution))
def test_every_start_is_a_whole_minute_no_later_than_the_moment(resolution: Resolution) -> None:
    moments = list(range(FIRST_MINUTE * MINUTE, (FIRST_MINUTE + 14 * 1440) * MINUTE, 7 * 61))
    for market in (None, NEW_YORK, NEW_YORK.always_open(), KOLKATA):
        starts = bar_starts(moments, resolution, market)
        assert all(starts % MINUTE == 0)
        assert all(starts <= moments)
        assert all(moments - starts < resolution.seconds + 3600)  # a long day is 25 h


def test_the_hour_the_clocks_go_back_keeps_bar_starts_in_order() -> None:
    """Counted from 09:30, 01:10 on the second pass of New York's 01:00-02:00 would be
    keyed 00:30, a bar that ended an hour before (hypothesis found a day rolled up from
    such hours ending on another close than the minutes'): it joins the bar in progress
    when the clocks went back, which spans 01:30 EDT to 01:30 EST."""
    change = 1_762_063_200  # 2025-11-02 06:00 UTC: 02:00 EDT becomes 01:00 EST
    minutes = list(range(change - 3 * 3600, change + 3 * 3600, MINUTE))
    hours = bar_starts(minutes, Resolution.H1, NEW_YORK)
    assert all(a <= b for a, b in pairwise(hours))
    assert hours[minutes.index(change + 600)] == change - 1800  # 01:10 EST: from 01:30 EDT
    assert hours[minutes.index(change + 1800)] == change + 1800  # 01:30 EST: its own
    bars = [Bar(t, 1.0, 2.0, 0.5, 1.0 + i, 1) for i, t in enumerate(minutes)]
    for end in (180, 190, 215, 240):  # ending inside the repeated hour and after it
        part = bars[:end]
        hourly = rollup(part, Resolution.H1, NEW_YORK)
        assert rollup(hourly, Resolution.D1, NEW_YORK) == rollup(part, Resolution.D1, NEW_YORK)
        assert rollup(rollup(part, Resolution.M5, NEW_YORK), Resolution.H1, NEW_YORK) == hourly
