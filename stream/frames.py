"""One frame of Yahoo's streamer, read: a trade, or why it is not one.

A frame is a JSON text ``{"type": "pricing", "message": "<base64>"}`` whose message is a
protobuf ``PricingData`` (stream.internals). A frame that is not a usable trade is
``Bad`` with its kind, the label it is counted and logged under; nothing of it is ever
stored.
"""

import base64
import binascii
import math
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from stream.internals import pricing_data

# How far a trade's time may be from the clock: ahead, a skewed or broken feed; behind,
# more than an hour is no minute in progress (Yahoo delays some exchanges' trades by up
# to half an hour: those still count).
MAX_AHEAD = 60.0
MAX_BEHIND = 3600.0

BAD_KINDS = ("json", "base64", "protobuf", "symbol", "price", "future", "past")


@dataclass(frozen=True)
class Trade:
    symbol: str
    price: float
    time: float  # epoch seconds (Yahoo sends milliseconds)
    day_volume: int  # the session's volume so far; 0 where Yahoo sends none
    market_hours: int  # Yahoo's session marker: 0 pre, 1 regular, 2 post, ...


@dataclass(frozen=True)
class Bad:
    kind: str  # one of BAD_KINDS
    detail: str


def read_frame(text: str | bytes, symbols: Container[str], now: float) -> Trade | Bad:
    """The trade in a frame, if it is one for a symbol in ``symbols`` that makes sense
    at ``now``."""
    try:
        envelope = orjson.loads(text)
        encoded = envelope["message"]
        if not isinstance(encoded, str):
            raise TypeError(f"message is {type(encoded).__name__}")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return Bad("json", f"not a pricing frame: {exc!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        return Bad("base64", str(exc))
    message = pricing_data()()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        return Bad("protobuf", str(exc))
    return _trade(message, symbols, now)


def _trade(message: Any, symbols: Container[str], now: float) -> Trade | Bad:
    symbol = str(message.id)
    if symbol not in symbols:
        return Bad("symbol", f"{symbol!r} is not subscribed")
    price = float(message.price)
    if not math.isfinite(price) or price <= 0:
        return Bad("price", f"{symbol} price {price}")
    time = int(message.time) / 1000
    if time > now + MAX_AHEAD:
        return Bad("future", f"{symbol} trade {time - now:.0f} s ahead of the clock")
    if time < now - MAX_BEHIND:
        return Bad("past", f"{symbol} trade {now - time:.0f} s behind the clock")
    return Trade(
        symbol,
        _rounded(price, int(message.price_hint)),
        time,
        max(int(message.day_volume), 0),
        int(message.market_hours),
    )


def _rounded(price: float, hint: int) -> float:
    """Yahoo sends prices as 32-bit floats (187.12 arrives as 187.1199951171875): rounded
    to the decimals it says the symbol is quoted in, else to a float32's precision."""
    if 0 < hint <= 8:
        return round(price, hint)
    return float(f"{price:.7g}")
