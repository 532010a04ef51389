"""Which clock and session a symbol trades on."""

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
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


def test_offsets_of_many_moments_match_each_ones_across_the_clock_changes() -> None:
    from common.markets import BY_SUFFIX

    # Around New York's and London's spring and autumn changes, and Sydney's (south).
    moments = np.concatenate(
        [
            np.arange(at(day) - 3 * 86_400, at(day) + 3 * 86_400, 599, dtype=np.int64)
            for day in (
                "2026-03-08T00:00",
                "2026-03-29T00:00",
                "2026-10-25T00:00",
                "2026-11-01T00:00",
            )
        ]
    )
    for market in (NEW_YORK, BY_SUFFIX[".L"], BY_SUFFIX[".AX"], BY_SUFFIX[".NS"], CRYPTO):
        expected = [market.utc_offset(float(t)) for t in moments]
        assert market.utc_offsets(moments).tolist() == expected
        assert market.utc_offsets(moments[::-1]).tolist() == expected[::-1]
        assert (market.local_seconds(moments) - moments).tolist() == expected


def test_open_mask_is_is_open_for_many_moments() -> None:
    moments = np.arange(at("2026-11-25T00:00"), at("2026-12-02T00:00"), 7 * 60, dtype=np.int64)
    for market in (NEW_YORK, FX, CRYPTO, market_for("RELIANCE.NS"), market_for("0700.HK")):
        assert market.open_mask(moments).tolist() == [market.is_open(float(t)) for t in moments]


def test_the_hour_the_clocks_go_back_is_the_repeated_one() -> None:
    back = int(at("2026-11-01T01:59")) + 60  # 06:00 UTC: 01:00 again, in EST
    minutes = np.arange(back - 7200, back + 7200, 60, dtype=np.int64)
    repeated = minutes[NEW_YORK.repeated(minutes)]
    assert repeated.tolist() == list(range(back, back + 3600, 60))
    assert not CRYPTO.repeated(minutes).any()


def test_a_charts_clock_is_named_and_hourly_bars_count_from_the_open() -> None:
    from common.markets import clock_name

    assert clock_name("Asia/Kolkata") == "Kolkata" and clock_name("America/Chicago") == "Chicago"
    assert clock_name("UTC") == "UTC"
    assert NEW_YORK.session_origin == 9 * 3600 + 1800 and CRYPTO.session_origin == 0
    assert NEW_YORK.has_sessions and FX.has_sessions and not CRYPTO.has_sessions
    assert not NEW_YORK.always_open().has_sessions
