"""The article's chart, built as a plain figure dict.

A filled "mountain" of closing prices whose colour tells the last move (lime up, red
down, yellow flat), a range slider, a black range selector (15m, 45m, hour to date,
3h, all) and the ``plotly_dark`` template. Building the dict directly instead of through
``go.Figure`` skips plotly.py's validation, which costs far more than the chart itself;
``tests/test_figure.py`` feeds the result to ``go.Figure`` to prove it stays valid.

The x axis is the exchange's clock (renderer.window), named in its title, and hides the
hours the market is closed (``rangebreaks``) where it has any. Every view's figure, this
one's too, is built from its bars in renderer.views; this module is the article's look.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import plotly.io as pio

from common.markets import Market

UP, DOWN, FLAT = "lime", "red", "yellow"
# plotly.js knows no template names, so the template travels inside the layout.
DARK_TEMPLATE: dict[str, Any] = pio.templates["plotly_dark"].to_plotly_json()
RANGE_BUTTONS: list[dict[str, Any]] = [
    {"count": 15, "label": "15m", "step": "minute", "stepmode": "backward"},
    {"count": 45, "label": "45m", "step": "minute", "stepmode": "backward"},
    {"count": 1, "label": "HTD", "step": "hour", "stepmode": "todate"},
    {"count": 3, "label": "3h", "step": "hour", "stepmode": "backward"},
    {"step": "all"},
]


def direction_colour(closes: npt.NDArray[np.float64]) -> str:
    if len(closes) < 2 or closes[-1] == closes[-2]:
        return FLAT
    return UP if closes[-1] > closes[-2] else DOWN


def y_range(closes: npt.NDArray[np.float64]) -> list[float]:
    """The article's range, min - 5 to max + 5, narrowed to 5 % of the price for
    symbols cheaper than $100 so their moves stay visible."""
    lo, hi = float(closes.min()), float(closes.max())
    pad = min(5.0, 0.05 * hi)
    # Cents are all a chart shows; more digits only lengthen every update.
    return [round(lo - pad, 2), round(hi + pad, 2)]


def time_axis(
    market: Market, buttons: list[dict[str, Any]], hours: bool = True, slider: bool = True
) -> dict[str, Any]:
    """A date axis on the exchange's clock, named, with the range selector and (if
    ``slider``) the range slider; closed hours (if ``hours``) and weekends hidden where
    the market has them. (Without ``visible: false``, plotly.js gives a candlestick or
    OHLC trace's axis a slider of its own.)"""
    axis: dict[str, Any] = {
        "type": "date",
        "title": {"text": f"Time ({market.name})"},
        "rangeslider": {"visible": slider},
        "rangeselector": {"bgcolor": "black", "buttons": buttons},
        "hoverformat": "%a %d %b %Y, %H:%M",
    }
    breaks = [_canonical(b) for b in market.rangebreaks() if hours or b.get("pattern") != "hour"]
    if breaks:
        axis["rangebreaks"] = breaks
    return axis


_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def _canonical(rangebreak: dict[str, Any]) -> dict[str, Any]:
    """A break as plotly.js keeps it: weekdays by number ("sat" would be rewritten to 6,
    which ``Plotly.validate`` reports)."""
    bounds = rangebreak.get("bounds", [])
    if "pattern" not in rangebreak and all(b in _WEEKDAYS for b in bounds):
        return {"pattern": "day of week", "bounds": [_WEEKDAYS[b] for b in bounds]}
    return rangebreak


def mountain_trace(
    symbol: str, x_ms: npt.NDArray[np.int64], closes: npt.NDArray[np.float64], style: dict[str, Any]
) -> dict[str, Any]:
    """A filled mountain of closes, in the colour of the last move (``style["color"]``)."""
    return {
        "type": "scatter",
        "name": symbol,
        "x": x_ms,
        "y": closes,
        "mode": "lines",
        "fill": "tozeroy",
        "line": {"color": style["color"]},
    }


def article_figure(
    symbol: str,
    x_ms: npt.NDArray[np.int64],
    closes: npt.NDArray[np.float64],
    style: dict[str, Any],
    market: Market,
) -> dict[str, Any]:
    """The article's chart of these minutes (renderer.views builds it from the default
    view's bars). The arrays stay numpy arrays: encode with ``encode`` (orjson reads
    them natively)."""
    layout: dict[str, Any] = {
        "template": DARK_TEMPLATE,
        "title": {"text": symbol},
        "uirevision": symbol,  # keeps the viewer's zoom across updates
        "xaxis": time_axis(market, RANGE_BUTTONS),
        "yaxis": {"title": {"text": "Price"}},
    }
    if "y_range" in style:
        layout["yaxis"]["range"] = style["y_range"]
    return {"data": [mountain_trace(symbol, x_ms, closes, style)], "layout": layout}


def encode(figure: dict[str, Any]) -> bytes:
    return orjson.dumps(figure, option=orjson.OPT_SERIALIZE_NUMPY)
