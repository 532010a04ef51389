"""Trades folded into 1-minute bars (stream.minutes): OHLC from prices in whatever order
they arrive, volume from the rise of day_volume, duplicates harmless."""

from hypothesis import given
from hypothesis import strategies as st

from common.bars import Bar
from stream.frames import Trade
from stream.minutes import KEEP, SymbolMinutes

T0 = 1_750_000_020  # a minute's start


def trade(seconds: float, price: float, day_volume: int) -> Trade:
    return Trade("AAPL", price, T0 + seconds, day_volume, 1)


def test_a_minute_of_trades_is_one_bar() -> None:
    minutes = SymbolMinutes()
    for t in [trade(1, 100.0, 1_000), trade(5, 101.0, 1_100), trade(9, 99.0, 1_250),
              trade(30, 100.5, 1_300)]:  # fmt: skip
        assert minutes.fold(t)
    # The first trade seen adds no volume: what came before it is not known.
    assert minutes.take() == [Bar(T0, 100.0, 101.0, 99.0, 100.5, 300)]
    assert minutes.take() == []  # nothing changed since


def test_the_next_minute_starts_a_bar_and_both_are_written() -> None:
    minutes = SymbolMinutes()
    minutes.fold(trade(50, 10.0, 100))
    minutes.fold(trade(59, 11.0, 150))
    minutes.fold(trade(61, 12.0, 175))
    assert minutes.take() == [
        Bar(T0, 10.0, 11.0, 10.0, 11.0, 50),
        Bar(T0 + 60, 12.0, 12.0, 12.0, 12.0, 25),
    ]


def test_a_new_session_counts_its_whole_day_volume() -> None:
    minutes = SymbolMinutes()
    minutes.fold(Trade("AAPL", 10.0, T0, 5_000_000, 1))
    minutes.fold(Trade("AAPL", 10.5, T0 + 86_400, 700, 1))  # the next day: reset
    assert minutes.take()[-1].v == 700


def test_a_late_report_of_the_same_session_adds_nothing() -> None:
    minutes = SymbolMinutes()
    minutes.fold(trade(1, 10.0, 1_000))
    minutes.fold(trade(3, 10.2, 1_300))
    minutes.fold(trade(2, 10.1, 1_200))  # arrives after the one at 3 s
    assert minutes.take() == [Bar(T0, 10.0, 10.2, 10.0, 10.2, 300)]


def test_a_trade_older_than_the_minutes_held_is_refused() -> None:
    minutes = SymbolMinutes()
    minutes.fold(trade(KEEP * 60, 10.0, 1))
    assert not minutes.fold(trade(0, 9.0, 2))
    assert minutes.fold(trade(60, 9.0, 2))  # within KEEP minutes: still its minute


prices = st.floats(min_value=1, max_value=1_000, allow_nan=False).map(lambda p: round(p, 2))


@given(st.lists(st.tuples(st.integers(0, 179), prices, st.integers(1, 500)), min_size=1,
                max_size=60), st.randoms())  # fmt: skip
def test_bars_do_not_depend_on_arrival_order_or_duplicates(
    steps: list[tuple[int, float, int]], rnd: object
) -> None:
    # Distinct times, day_volume rising with them: a session's trades.
    trades, volume = [], 0
    for i, (second, price, size) in enumerate(sorted(set(steps))):
        volume += size
        trades.append(trade(second + i / 1000, price, volume))
    in_order = SymbolMinutes()
    for t in trades:
        in_order.fold(t)
    shuffled = [*trades[1:], *trades[1:]]  # twice each, after the first
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = SymbolMinutes()
    again.fold(trades[0])
    for t in shuffled:
        again.fold(t)
    expected = in_order.take()
    got = again.take()
    # Prices do not depend on order; volume can only be undercounted by a late report.
    assert [(b.t, b.o, b.h, b.l, b.c) for b in got] == [(b.t, b.o, b.h, b.l, b.c) for b in expected]
    assert (
        sum(b.v for b in got)
        == sum(b.v for b in expected)
        == trades[-1].day_volume - trades[0].day_volume
    )
