"""What a source sends is cleaned before it is stored, so bad data never reaches a chart.

Bars are put in time order with one per minute (the last word wins), each is checked
(finite, positive prices, high and low around open and close, volume not negative) and a
close that jumps more than ``MAX_JUMP`` from the previous bar's is refused as a bad
print: a real move that large stops a market, and it would flatten every chart it is on.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.bars import MINUTE, BadBar, Bar, check_bar
from common.resolutions import Columns

MAX_JUMP = 0.5  # fraction of the previous close


@dataclass
class Cleaned:
    bars: list[Bar] = field(default_factory=list)
    rejected: list[tuple[Bar, str]] = field(default_factory=list)  # bar, why


def clean(bars: Iterable[Bar]) -> Cleaned:
    by_minute = {bar.t: bar for bar in sorted(bars, key=lambda b: b.t)}
    result = Cleaned()
    previous: Bar | None = None
    for bar in by_minute.values():
        try:
            check_bar(bar)
        except BadBar as exc:
            result.rejected.append((bar, str(exc)))
            continue
        if previous is not None and abs(bar.c / previous.c - 1) > MAX_JUMP:
            result.rejected.append((bar, f"close {bar.c} jumps from {previous.c}"))
            continue
        result.bars.append(bar)
        previous = bar
    return result


def clean_columns(bars: Columns) -> list[tuple[Any, ...]]:
    """``clean`` of bars given as columns (years of history), every bar at once: the
    same checks, the last word winning for a time given twice, and the close's jump
    measured from the bar before it (``clean``: from the last bar kept). The sane bars,
    as rows ``(t, o, h, l, c, v)`` in time order."""
    order = np.argsort(np.asarray(bars.t), kind="stable")
    t, o, h, lo, c, v = (np.asarray(column)[order] for column in bars)
    with np.errstate(invalid="ignore", divide="ignore"):
        prices = np.stack((o, h, lo, c))
        good = np.isfinite(prices).all(axis=0) & (prices > 0).all(axis=0)
        good &= (h >= np.maximum(np.maximum(o, c), lo)) & (lo <= np.minimum(o, c))
        good &= (v >= 0) & (t % MINUTE == 0)
        good[1:] &= ~(np.abs(c[1:] / c[:-1] - 1) > MAX_JUMP)
        good &= np.concatenate((np.diff(t) > 0, [True]))  # of equal times, the last
    picked = [column[good].tolist() for column in (t, o, h, lo, c, v)]
    return list(zip(*picked, strict=True))
