"""What a source sends is cleaned before it is stored, so bad data never reaches a chart.

Bars are put in time order with one per minute (the last word wins), each is checked
(finite, positive prices, high and low around open and close, volume not negative) and a
close that jumps more than ``MAX_JUMP`` from the previous bar's is refused as a bad
print: a real move that large stops a market, and it would flatten every chart it is on.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from common.bars import BadBar, Bar, check_bar

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
