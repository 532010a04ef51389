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
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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

    def rows_since(self, minute: int) -> int:
        """How many bars are from ``minute`` on."""
        return len(self.rows) - int(np.searchsorted(self.rows[:, T], minute, side="left"))

    def rows_from(self, minute: int) -> list[list[Any]]:
        """Bars from ``minute`` on, as the JSON rows a delta carries (ints as ints)."""
        first = int(np.searchsorted(self.rows[:, T], minute, side="left"))
        return [[int(t), o, h, lo, c, int(v)] for t, o, h, lo, c, v in self.rows[first:].tolist()]

    def closes(self) -> npt.NDArray[np.float64]:
        return np.ascontiguousarray(self.rows[:, C])

    def times_ms(self) -> npt.NDArray[np.int64]:
        """x for plotly.js, which reads numbers on a date axis as UTC milliseconds."""
        return self.rows[:, T].astype(np.int64) * 1000
