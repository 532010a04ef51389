"""The 1-minute bar: the unit the fetcher stores and the renderer draws.

``t`` is the bar's opening minute in epoch seconds (UTC, a multiple of 60), prices are
floats, volume an integer. How a bar is stored is common.contract.members'.
"""

import math
from dataclasses import dataclass
from typing import Any

MINUTE = 60


@dataclass(frozen=True, slots=True)
class Bar:
    t: int  # opening minute, epoch seconds UTC, multiple of 60
    o: float
    h: float
    l: float  # noqa: E741 - the conventional OHLCV name
    c: float
    v: int

    def as_list(self) -> list[Any]:
        return [self.t, self.o, self.h, self.l, self.c, self.v]


class BadBar(ValueError):
    """A bar that must never reach a chart."""


def check_bar(bar: Bar) -> Bar:
    """Return the bar if it is sane, else raise BadBar saying why."""
    prices = (bar.o, bar.h, bar.l, bar.c)
    if bar.t % MINUTE:
        raise BadBar(f"timestamp {bar.t} is not on a minute boundary")
    if not all(math.isfinite(p) for p in prices):
        raise BadBar(f"bar at {bar.t} has a non-finite price")
    if min(prices) <= 0:
        raise BadBar(f"bar at {bar.t} has a non-positive price")
    if bar.h < max(bar.o, bar.c, bar.l) or bar.l > min(bar.o, bar.c, bar.h):
        raise BadBar(f"bar at {bar.t} has high/low outside open/close")
    if bar.v < 0:
        raise BadBar(f"bar at {bar.t} has negative volume")
    return bar


def floor_minute(epoch_seconds: float) -> int:
    return int(epoch_seconds // MINUTE) * MINUTE
