"""Trades folded into 1-minute bars, per symbol, in the stream service's memory.

Each trade lands in its own minute, whatever order trades arrive in: the open is the
earliest trade's price, the close the latest's, high and low the extremes. Volume is
the rise of Yahoo's ``day_volume`` since the symbol's previous trade (a trade's own
``last_size`` is not sent for every exchange): the first trade seen of a symbol adds
none, and a session's first trade (a day_volume lower than before, on a later day)
adds its whole day_volume. So a frame seen twice changes nothing: its price is already
in its minute, and its day_volume is no rise.

A symbol keeps its last ``KEEP`` minutes, so a late trade still lands in its minute;
one older than those is refused (``fold`` returns False) and counted by the caller.
"""

from dataclasses import dataclass, field

from common.bars import MINUTE, Bar
from stream.frames import Trade

KEEP = 5  # minutes held per symbol, the newest's and the four before
DAY = 86_400


@dataclass
class _Minute:
    t: int
    o: float
    h: float
    low: float
    c: float
    v: int
    first: float  # the time of the trade whose price is the open
    last: float  # ... and of the close

    def fold(self, price: float, time: float, volume: int) -> None:
        if time < self.first:
            self.o, self.first = price, time
        if time >= self.last:
            self.c, self.last = price, time
        self.h = max(self.h, price)
        self.low = min(self.low, price)
        self.v += volume

    def bar(self) -> Bar:
        return Bar(self.t, self.o, self.h, self.low, self.c, self.v)


@dataclass
class SymbolMinutes:
    minutes: dict[int, _Minute] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)  # minutes changed since the last write
    day_volume: int | None = None  # the highest day_volume of the session so far
    day: int | None = None  # ... and the UTC day it was seen on
    newest: float = 0.0  # the newest trade's time: the as_of of this symbol's writes

    def fold(self, trade: Trade) -> bool:
        minute = int(trade.time // MINUTE) * MINUTE
        newest_minute = max(self.minutes, default=minute)
        if minute <= newest_minute - KEEP * MINUTE:
            return False
        volume = self._volume(trade)
        bar = self.minutes.get(minute)
        if bar is None:
            self.minutes[minute] = _Minute(
                minute, trade.price, trade.price, trade.price, trade.price, volume,
                trade.time, trade.time,
            )  # fmt: skip
            for old in [t for t in self.minutes if t <= minute - KEEP * MINUTE]:
                del self.minutes[old]
                self.dirty.discard(old)
        else:
            bar.fold(trade.price, trade.time, volume)
        self.dirty.add(minute)
        self.newest = max(self.newest, trade.time)
        return True

    def _volume(self, trade: Trade) -> int:
        day = int(trade.time // DAY)
        before, before_day = self.day_volume, self.day
        if before is None or before_day is None:
            rise = 0
        elif trade.day_volume >= before:
            rise = trade.day_volume - before
        elif day > before_day:
            rise = trade.day_volume  # a new session: its volume starts again
        else:
            return 0  # an older report of the same session arriving late
        self.day_volume, self.day = trade.day_volume, day
        return rise

    def take(self) -> list[Bar]:
        """The minutes changed since the last ``take``, oldest first."""
        bars = [self.minutes[t].bar() for t in sorted(self.dirty)]
        self.dirty.clear()
        return bars
