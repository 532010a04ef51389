"""Frames of Yahoo's streamer read into trades (stream.frames), held to yfinance's own
decoder on its one real recorded frame, and every kind of bad frame refused."""

import base64
import math
from types import SimpleNamespace

import orjson
import pytest
from yfinance.live import BaseWebSocket

from stream import internals
from stream.frames import BAD_KINDS, Bad, Trade, read_frame
from streamer import RECORDED, envelope, pricing_frame

REAL = orjson.loads(RECORDED.read_text().splitlines()[0])["frame"]  # yfinance's BTC-USD
REAL_TIME = 1736509140.0
NOW = 1_750_000_000.0


def test_the_real_frame_reads_as_yfinance_reads_it() -> None:
    ours = read_frame(REAL, {"BTC-USD"}, REAL_TIME + 1)
    theirs = BaseWebSocket("ws://unused", verbose=False)._decode_message(
        orjson.loads(REAL)["message"]
    )
    assert isinstance(ours, Trade)
    assert ours.symbol == theirs["id"] == "BTC-USD"
    assert ours.price == round(theirs["price"], int(theirs["price_hint"])) == 94745.08
    assert ours.time * 1000 == int(theirs["time"])
    assert ours.day_volume == int(theirs["day_volume"])
    assert ours.market_hours == theirs["market_hours"] == 1


def test_built_frames_round_trip_with_their_price_in_cents() -> None:
    trade = read_frame(pricing_frame("AAPL", 187.12, int(NOW * 1000), 1_234), {"AAPL"}, NOW)
    assert trade == Trade("AAPL", 187.12, NOW, 1_234, 1)  # a float32 187.1199951171875


def test_the_installed_yfinance_has_the_fields_read() -> None:
    internals.check()


def test_a_message_without_a_field_read_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = dict(internals.pricing_data().DESCRIPTOR.fields_by_name)
    del fields["day_volume"]
    lacking = SimpleNamespace(DESCRIPTOR=SimpleNamespace(fields_by_name=fields))
    monkeypatch.setattr(internals, "pricing_data", lambda: lacking)
    with pytest.raises(internals.UnusableProto, match="day_volume"):
        internals.check()


def _bad(frame: str | bytes, symbols: frozenset[str] = frozenset({"AAPL"})) -> str:
    got = read_frame(frame, symbols, NOW)
    assert isinstance(got, Bad), got
    return got.kind


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (b"not json", "json"),
        (b'{"type": "pricing"}', "json"),
        (b'{"message": 12}', "json"),
        (b'{"message": "%%%not base64"}', "base64"),
        (envelope(b"\xff\xff\xff\xff"), "protobuf"),
        (pricing_frame("ZZZZ", 10.0, int(NOW * 1000)), "symbol"),
        (pricing_frame("AAPL", 0.0, int(NOW * 1000)), "price"),
        (pricing_frame("AAPL", -3.0, int(NOW * 1000)), "price"),
        (pricing_frame("AAPL", math.nan, int(NOW * 1000)), "price"),
        (pricing_frame("AAPL", math.inf, int(NOW * 1000)), "price"),
        (pricing_frame("AAPL", 10.0, int((NOW + 3600) * 1000)), "future"),
        (pricing_frame("AAPL", 10.0, int((NOW - 86_400) * 1000)), "past"),
    ],
)
def test_each_kind_of_bad_frame_is_named(frame: str | bytes, kind: str) -> None:
    assert kind in BAD_KINDS
    assert _bad(frame) == kind


def test_an_empty_message_is_no_trade() -> None:
    # An empty protobuf parses (every field at its default): no symbol it could be for.
    assert _bad(orjson.dumps({"message": base64.b64encode(b"").decode()})) == "symbol"
