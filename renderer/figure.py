"""The article's chart, built as a plain figure dict.

A filled "mountain" of closing prices whose colour tells the last move (lime up, red
down, yellow flat), a range slider, a black range selector (15m, 45m, hour to date,
3h, all) and the ``plotly_dark`` template. Building the dict directly instead of through
``go.Figure`` skips plotly.py's validation, which costs far more than the chart itself;
``tests/test_figure.py`` feeds the result to ``go.Figure`` to prove it stays valid.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import plotly.io as pio

from renderer.window import Window

UP, DOWN, FLAT = "lime", "red", "yellow"
# plotly.js knows no template names, so the template travels inside the layout.
_DARK_TEMPLATE: dict[str, Any] = pio.templates["plotly_dark"].to_plotly_json()
_RANGE_BUTTONS = [
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


def style_of(window: Window) -> dict[str, Any]:
    """The parts of the chart's look that follow the data; deltas carry their changes."""
    closes = window.closes()
    style: dict[str, Any] = {"color": direction_colour(closes)}
    if len(closes):
        style["y_range"] = y_range(closes)
    return style


def build_figure(
    symbol: str, window: Window, style: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``style`` is ``style_of(window)``, passed in by a caller that already has it. The
    arrays stay numpy arrays: encode with ``encode`` (orjson reads them natively)."""
    style = style_of(window) if style is None else style
    trace = {
        "type": "scatter",
        "name": symbol,
        "x": window.times_ms(),
        "y": window.closes(),
        "mode": "lines",
        "fill": "tozeroy",
        "line": {"color": style["color"]},
    }
    layout: dict[str, Any] = {
        "template": _DARK_TEMPLATE,
        "title": {"text": symbol},
        "uirevision": symbol,  # keeps the viewer's zoom across updates
        "xaxis": {
            "type": "date",
            "title": {"text": "Time (UTC)"},
            "rangeslider": {"visible": True},
            "rangeselector": {"bgcolor": "black", "buttons": _RANGE_BUTTONS},
        },
        "yaxis": {"title": {"text": "Price"}},
    }
    if "y_range" in style:
        layout["yaxis"]["range"] = style["y_range"]
    return {"data": [trace], "layout": layout}


def encode(figure: dict[str, Any]) -> bytes:
    return orjson.dumps(figure, option=orjson.OPT_SERIALIZE_NUMPY)
