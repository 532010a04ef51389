"""An example of your own market data source for rtplot (docs/sources.md).

Every symbol's price is a slow wave around a level of its own: a function of time only,
so any worker process gives the same bars, and it needs no network. It trades around
the clock on UTC, and says so, so charts hide no hours. A symbol starting with ``ERR``
has no data, to show how a source reports that for one symbol without failing the
others.

Install it next to rtplot and name it:

    pip install ./examples/rtplot-wave-source
    RTPLOT_SOURCE=wave rtplot up              # by its entry point
    RTPLOT_SOURCE=rtplot_wave:WaveSource ...  # or by module and class
"""

import math
from collections.abc import Mapping

from common.bars import MINUTE, Bar
from common.markets import Market
from fetcher.sources.base import FetchResult

PERIOD = 3_600.0  # seconds: one wave an hour
AROUND_THE_CLOCK = Market("UTC", "UTC", weekdays=False)


def level(symbol: str) -> float:
    """Each symbol's own price level, from its letters: AAPL is not MSFT."""
    return 50.0 + sum(map(ord, symbol)) % 200


def price(symbol: str, at: float) -> float:
    return round(level(symbol) * (1 + 0.02 * math.sin(2 * math.pi * at / PERIOD)), 2)


class WaveSource:
    name = "wave"

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        """Every minute from each symbol's ``since`` to the one in progress."""
        current = int(now) // MINUTE * MINUTE
        result = FetchResult(bars={})
        for symbol, start in since.items():
            if symbol.startswith("ERR"):
                result.bars[symbol] = []
                result.errors[symbol] = "no data: this example has none for ERR symbols"
                continue
            first = -(-start // MINUTE) * MINUTE  # the first whole minute from since
            result.bars[symbol] = [
                self.bar(symbol, minute, min(now, minute + MINUTE - 1))
                for minute in range(first, current + 1, MINUTE)
            ]
            result.markets[symbol] = AROUND_THE_CLOCK
        return result

    @staticmethod
    def bar(symbol: str, minute: int, until: float) -> Bar:
        """The minute's bar as it stands at ``until``: the minute in progress changes."""
        seconds = [minute + s for s in range(0, int(until - minute) + 1)]
        prices = [price(symbol, s) for s in seconds]
        return Bar(minute, prices[0], max(prices), min(prices), prices[-1], 100 * len(prices))
