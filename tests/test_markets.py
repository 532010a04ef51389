"""Which clock and session a symbol trades on."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from common.markets import CRYPTO, FX, NEW_YORK, Market, local_day_start, market_for

NY = ZoneInfo("America/New_York")


def at(text: str, zone: ZoneInfo = NY) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


@pytest.mark.parametrize(
    ("symbol", "name", "tz"),
    [
        ("AAPL", "New York", "America/New_York"),
        ("BRK-B", "New York", "America/New_York"),
        ("^GSPC", "New York", "America/New_York"),
        ("RELIANCE.NS", "Kolkata", "Asia/Kolkata"),
        ("VOD.L", "London", "Europe/London"),
        ("0700.HK", "Hong Kong", "Asia/Hong_Kong"),
        ("EURUSD=X", "New York", "America/New_York"),
        ("BTC-USD", "UTC", "UTC"),
        ("XYZ.UNKNOWN", "New York", "America/New_York"),
    ],
)
def test_a_symbol_trades_on_its_suffixs_market(symbol: str, name: str, tz: str) -> None:
    market = market_for(symbol)
    assert (market.name, market.tz) == (name, tz)


def test_a_us_stock_trades_0930_to_1600_new_york_time_on_weekdays() -> None:
    assert NEW_YORK.is_open(at("2026-11-27T09:30"))  # a Friday
    assert NEW_YORK.is_open(at("2026-11-27T15:59"))
    assert not NEW_YORK.is_open(at("2026-11-27T16:00"))
    assert not NEW_YORK.is_open(at("2026-11-27T09:29"))
    assert not NEW_YORK.is_open(at("2026-11-28T12:00"))  # Saturday
    assert NEW_YORK.is_open(at("2026-07-01T09:30"))  # summer time: the clock moved, not us


def test_fx_trades_on_weekdays_and_crypto_always() -> None:
    assert FX.is_open(at("2026-11-27T03:00")) and not FX.is_open(at("2026-11-28T03:00"))
    assert CRYPTO.is_open(at("2026-11-28T03:00"))


def test_the_clock_and_its_closed_hours_for_the_chart() -> None:
    assert NEW_YORK.utc_offset(at("2026-11-27T12:00")) == -5 * 3600
    assert NEW_YORK.utc_offset(at("2026-07-01T12:00")) == -4 * 3600
    assert NEW_YORK.rangebreaks() == [
        {"bounds": ["sat", "mon"]},
        {"pattern": "hour", "bounds": [16.0, 9.5]},
    ]
    assert CRYPTO.rangebreaks() == [] and NEW_YORK.always_open().rangebreaks() == []


def test_a_market_travels_as_json() -> None:
    for market in (NEW_YORK, FX, CRYPTO, market_for("RELIANCE.NS")):
        assert Market.decode(market.encode()) == market


def test_a_local_day_starts_at_local_midnight() -> None:
    assert local_day_start(NEW_YORK, at("2026-11-27T15:00")) == at("2026-11-27T00:00")
