"""Views: the ways one symbol can be drawn, and where each one lives.

A view is a chart type (the article's ``mountain``, ``candles`` or ``ohlc``), a
timeframe the 1-minute bars are aggregated to, a short list of indicators and a volume
pane. A client names one in ``subscribe`` (``{"symbol": "AAPL", "chart": "candles",
"timeframe": "5m"}``); each distinct view of a symbol is rendered once per change and
published to rooms of its own, while someone watches it (docs/views.md).

Every view has a key, the canonical form of its fields: ``candles.5m.sma20.vol``. The
default view (a mountain of 1-minute closes, nothing added: the article's chart) has
the empty key, so its rooms and its snapshot keep the names they always had.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHARTS = ("mountain", "candles", "ohlc")
TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "1h": 3_600, "1d": 86_400}
INDICATORS = ("sma20", "sma50", "ema20", "vwap")  # also the order they are drawn in
FIELDS = ("chart", "timeframe", "indicators", "volume")  # a subscribe's view fields
LABELS = {
    "mountain": "Mountain",
    "candles": "Candles",
    "ohlc": "OHLC",
    "sma20": "SMA 20",
    "sma50": "SMA 50",
    "ema20": "EMA 20",
    "vwap": "VWAP",
}


class InvalidView(ValueError):
    """View fields that name no view; the message says which and why."""


@dataclass(frozen=True)
class View:
    chart: str = "mountain"
    timeframe: str = "1m"
    indicators: tuple[str, ...] = ()  # in INDICATORS order, no repeats
    volume: bool = False  # a volume pane below the price

    @property
    def key(self) -> str:
        """``chart.timeframe[.indicator...][.vol]``, or "" for the default view."""
        if self == DEFAULT:
            return ""
        parts = [self.chart, self.timeframe, *self.indicators]
        return ".".join(parts + (["vol"] if self.volume else []))

    @property
    def seconds(self) -> int:
        return TIMEFRAMES[self.timeframe]

    @property
    def label(self) -> str:
        parts = [LABELS[self.chart], self.timeframe, *(LABELS[i] for i in self.indicators)]
        return " · ".join(parts + (["Volume"] if self.volume else []))

    @classmethod
    def from_key(cls, key: str) -> "View":
        if not key:
            return DEFAULT
        chart, timeframe, *rest = [*key.split("."), ""]
        rest = [part for part in rest if part]
        volume = bool(rest) and rest[-1] == "vol"
        view = make_view(chart, timeframe, rest[:-1] if volume else rest, volume)
        if view.key != key:
            raise InvalidView(f"{key!r} is not a view key")
        return view


DEFAULT = View()


def make_view(
    chart: object = "mountain",
    timeframe: object = "1m",
    indicators: object = (),
    volume: object = None,
) -> View:
    """The view these fields name; ``volume`` None is the chart's default (on for candles
    and ohlc). Raises InvalidView saying what is wrong."""
    if chart not in CHARTS:
        raise InvalidView(f'"chart" must be one of {_listed(CHARTS)}')
    if timeframe not in TIMEFRAMES:
        raise InvalidView(f'"timeframe" must be one of {_listed(TIMEFRAMES)}')
    if not isinstance(indicators, list | tuple) or not all(i in INDICATORS for i in indicators):
        raise InvalidView(f'"indicators" must be a list of {_listed(INDICATORS)}')
    if len(set(indicators)) != len(indicators):
        raise InvalidView('"indicators" lists one twice')
    if volume is None:
        volume = chart != "mountain"
    if not isinstance(volume, bool):
        raise InvalidView('"volume" must be true or false')
    ordered = tuple(i for i in INDICATORS if i in indicators)
    return View(str(chart), str(timeframe), ordered, volume)


def requested_view(data: Mapping[str, Any]) -> View:
    """The view a ``subscribe`` payload asks for with its optional fields."""
    return make_view(
        data.get("chart", "mountain"),
        data.get("timeframe", "1m"),
        data.get("indicators", ()),
        data.get("volume"),
    )


def _listed(names: object) -> str:
    return ", ".join(f'"{name}"' for name in names)  # type: ignore[attr-defined]


# -- where a view lives in Redis -------------------------------------------------------
