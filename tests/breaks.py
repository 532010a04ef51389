"""How much of the time between two points a chart shows, under the ``rangebreaks`` the
renderer sets (what plotly.js does with them, for the two kinds used: days of the week
and hours of the day), so a test can say that a session boundary or a weekend is drawn
without a gap."""

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

DAY, MINUTE = 86_400, 60


def hidden(rangebreaks: Sequence[dict[str, Any]], x_ms: int) -> bool:
    """Whether the moment ``x_ms`` (a date axis value, in ms) falls in a break."""
    seconds = x_ms // 1000
    for rangebreak in rangebreaks:
        lo, hi = rangebreak["bounds"]
        if rangebreak["pattern"] == "day of week":
            value: float = (seconds // DAY + 4) % 7  # 1970-01-01 was a Thursday (4)
        elif rangebreak["pattern"] == "hour":
            value = seconds % DAY / 3600
        else:
            raise ValueError(f"not a break the renderer sets: {rangebreak}")
        inside = lo <= value < hi if lo < hi else (value >= lo or value < hi)
        if inside:
            return True
    return False


def visible_minutes(rangebreaks: Sequence[dict[str, Any]], a_ms: int, b_ms: int) -> int:
    """Minutes from ``a_ms`` to ``b_ms`` the axis shows."""
    return sum(not hidden(rangebreaks, at) for at in range(a_ms, b_ms, MINUTE * 1000))


def widest_gap(rangebreaks: Sequence[dict[str, Any]], xs: Sequence[int]) -> int:
    """The most minutes the axis shows between two consecutive points."""
    return max(visible_minutes(rangebreaks, a, b) for a, b in pairwise(xs))
