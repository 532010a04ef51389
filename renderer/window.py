"""A symbol's window of 1-minute bars as the renderer keeps it between renders.

One numpy array of shape (bars, 6), a row per minute in order: ``t`` (epoch seconds),
open, high, low, close, volume, the columns of ``common.bars``. Floats hold the
integers exactly (minutes and volumes are far below 2**53), and numpy builds the
figure's arrays without a Python object per bar.

A render changes the window only as the fetcher can: bars dropped off its start (the
window moving on) and every bar from some minute on replaced or added (a new minute,
the minute in progress revised, a gap backfilled). So a renderer that holds version V
reads only the bars from the first minute changed since V (the changelog says which)
and ``apply`` does the rest.

Bars are stored in UTC; charts show them on the exchange's own clock (``market``), so
``local`` gives each bar's minute on that clock.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from common.markets import UTC, Market

T, C = 0, 4  # the columns: t, open, high, low, close, volume
Rows = npt.NDArray[np.float64]


def rows_of(decoded: list[list[float]]) -> Rows:
    """Bars as read from Redis (``[t, o, h, l, c, v]`` lists) as window rows."""
    if not decoded:
        return np.empty((0, 6))
    return np.asarray(decoded, dtype=np.float64).reshape(-1, 6)


@dataclass
class Window:
    epoch: str  # the symbol's stream in the store: versions are comparable within one
    version: int  # the store's version these bars are
    rows: Rows
    market: Market = UTC  # whose clock the chart shows
    # Each bar's minute on the exchange's clock, made when first asked (``local``).
    _local: npt.NDArray[np.int64] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def start(self) -> int:
        """The window's first minute."""
        return int(self.rows[0, T])

    def apply(self, version: int, start: int | None, changed_from: float, rows: Rows) -> None:
        """Version ``version``: bars before ``start`` (the store's first minute; None:
        the store is empty) are gone, and ``rows`` are every bar from ``changed_from``
        on."""
        times = self.rows[:, T]
        keep_from = 0 if start is None else int(np.searchsorted(times, start, side="left"))
        keep_to = int(np.searchsorted(times, changed_from, side="left"))
        kept = self.rows[keep_from : max(keep_from, keep_to)]
        self.rows = np.concatenate((kept, rows)) if len(rows) else kept.copy()
        self.version = version
        self._local = None

    def tail(self, count: int) -> "Window":
        """Its last ``count`` bars (itself if it holds no more): the same epoch and
        version, and the local times already made, sliced, not made again."""
        if len(self.rows) <= count:
            return self
        local = self.local()[-count:]
        return Window(self.epoch, self.version, self.rows[-count:], self.market, local)

    def rows_since(self, minute: int) -> int:
        """How many bars are from ``minute`` on."""
        return len(self.rows) - int(np.searchsorted(self.rows[:, T], minute, side="left"))

    def index_of(self, minute: int) -> int:
        """The first bar at or after ``minute``."""
        return int(np.searchsorted(self.rows[:, T], minute, side="left"))

    def rows_from(self, minute: int) -> list[list[Any]]:
        """Bars from ``minute`` on, as the JSON rows a delta carries (ints as ints), each
        at its minute on the exchange's clock."""
        first = self.index_of(minute)
        local = self.local()[first:].tolist()
        return [
            [t, o, h, lo, c, int(v)]
            for t, (_, o, h, lo, c, v) in zip(local, self.rows[first:].tolist(), strict=True)
        ]

    def local(self) -> npt.NDArray[np.int64]:
        """Each bar's minute on the exchange's clock, in seconds (see Market.local_seconds)."""
        if self._local is None or len(self._local) != len(self.rows):
            self._local = self.market.local_seconds(self.rows[:, T].astype(np.int64))
        return self._local

    def local_start(self) -> int:
        """The window's first minute on the exchange's clock."""
        return int(self.local()[0])

    def closes(self) -> npt.NDArray[np.float64]:
        return np.ascontiguousarray(self.rows[:, C])

    def times_ms(self) -> npt.NDArray[np.int64]:
        """x for plotly.js, which reads numbers on a date axis as milliseconds and shows
        them as UTC: the exchange's clock, shifted so that it shows the local time."""
        return self.local() * 1000

    def monotonic(self) -> bool:
        """Whether the bars' local times only grow: not when the clocks went back while
        the market traded (the repeated hour), where x alone cannot say which bar is
        which."""
        local = self.local()
        return bool(np.all(local[1:] > local[:-1]))
