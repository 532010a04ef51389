"""The views of a symbol beyond the article's chart: candles or OHLC bars or the mountain,
on a timeframe, with indicators and a volume pane (common.views).

A view is built from the symbol's window (renderer.window) at each render: the
1-minute bars are aggregated to the timeframe on the exchange's clock (``Frame``; open
of the first, highest high, lowest low, close of the last, volumes summed; hourly bars
count from the session's open), then drawn as one figure: the price, the indicators
over it, the volume on a pane of its own below.

Its deltas extend the article's (renderer.delta) to every trace: each row is a bar
``[x, open, high, low, close, volume, <indicator values, in the view's order>]``, ``x``
its start on the exchange's clock in seconds. A page holding the figure of
``base_seq`` drops its bars before ``start`` and from the first row of ``bars`` on,
overwrites its first bars with ``head`` (when present), appends ``bars`` and applies
``style``. ``head`` is there when the window moved on since the base: the first bar of
a longer timeframe may have lost minutes, and indicator values near the start lose
the history they needed (renderer.indicators), so they are resent.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from common.markets import DAY
from common.views import LABELS, View
from renderer import indicators
from renderer.delta import changed_style
from renderer.figure import (
    DARK_TEMPLATE,
    RANGE_BUTTONS,
    direction_colour,
    time_axis,
    y_range,
)
from renderer.window import Window

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

UP, DOWN = "#26a69a", "#ef5350"  # candles and volume bars
LINES = {"sma20": "#f5c542", "sma50": "#b388ff", "ema20": "#4fc3f7", "vwap": "#ff8a65"}
_LONGER_BUTTONS: list[dict[str, Any]] = [
    {"count": 1, "label": "1d", "step": "day", "stepmode": "backward"},
    {"count": 5, "label": "5d", "step": "day", "stepmode": "backward"},
    {"count": 1, "label": "1mo", "step": "month", "stepmode": "backward"},
    {"step": "all"},
]
_INTRADAY_BUTTONS: list[dict[str, Any]] = [
    {"count": 3, "label": "3h", "step": "hour", "stepmode": "backward"},
    *_LONGER_BUTTONS[:2],
    {"step": "all"},
]
INTERNAL = ("first",)  # style keys the renderer keeps for itself (the base's first bar)


@dataclass
class Frame:
    """A view's bars for one render."""

    view: View
    window: Window
    x: Ints  # each bar's start on the exchange's clock, seconds
    o: Floats
    h: Floats
    l: Floats  # noqa: E741 - the conventional OHLCV name
    c: Floats
    v: Floats
    bar_of_row: Ints  # the bar each 1-minute bar of the window went into
    last_row: Ints  # each bar's last 1-minute bar

    def __len__(self) -> int:
        return len(self.x)

    def bar_at(self, minute: int) -> int:
        """The first bar a change from ``minute`` (UTC, as the changelog says) touches."""
        row = self.window.index_of(minute)
        return int(self.bar_of_row[row]) if row < len(self.bar_of_row) else len(self)

    def monotonic(self) -> bool:
        return bool(np.all(self.x[1:] > self.x[:-1]))

    def columns(self, first: int) -> list[Floats]:
        """The indicator values of bars ``first`` on, one array per indicator."""
        out = []
        for name in self.view.indicators:
            if name == "vwap":
                w, row = self.window.rows, int(self.last_row[first]) if first < len(self) else 0
                local = self.window.local()
                per_row = indicators.vwap(w[:, 2], w[:, 3], w[:, 4], w[:, 5], local, row)
                out.append(per_row[self.last_row[first:] - row])
            else:
                out.append(indicators.of_closes(name, self.c, first))
        return out

    def rows(self, lo: int, hi: int) -> list[list[Any]]:
        """Bars ``lo`` to ``hi`` as a delta carries them."""
        if hi <= lo:
            return []
        extra = [column[: hi - lo] for column in self.columns(lo)]
        prices = [self.o[lo:hi], self.h[lo:hi], self.l[lo:hi], self.c[lo:hi]]
        table = [self.x[lo:hi], *prices, self.v[lo:hi].astype(np.int64), *extra]
        rows = [list(row) for row in zip(*(column.tolist() for column in table), strict=True)]
        for row in rows:  # NaN (no value yet) travels as null
            row[6:] = [None if value != value else value for value in row[6:]]
        return rows

    def head_needed(self, base_first: int | None) -> int:
        """How many of the first bars changed because the window moved on since the base
        (whose first 1-minute bar was ``base_first``, on the exchange's clock)."""
        first = int(self.window.local()[0])
        if base_first == first:
            return 0
        need = 1 if self.view.seconds > 60 else 0
        for name in self.view.indicators:
            need = max(need, indicators.warmup(name))
        new_day = base_first is None or base_first // DAY != first // DAY
        if "vwap" in self.view.indicators and new_day:
            last_days = self.window.local()[self.last_row] // DAY
            need = max(need, int(np.searchsorted(last_days, first // DAY, side="right")))
        return need


def frame_of(window: Window, view: View) -> Frame:
    """The window's bars on the view's timeframe, on the exchange's clock."""
    rows, local = window.rows, window.local()
    size = len(rows)
    if view.seconds == 60:
        index = np.arange(size, dtype=np.int64)
        o, h, lo, c, v = (np.ascontiguousarray(rows[:, i]) for i in range(1, 6))
        return Frame(view, window, local, o, h, lo, c, v, index, index)
    if view.timeframe == "1d":
        starts_at = local // DAY * DAY
    else:
        origin = window.market.session_origin
        starts_at = (local - origin) // view.seconds * view.seconds + origin
    first = np.flatnonzero(np.diff(starts_at)) + 1
    bounds = np.concatenate(([0], first)).astype(np.int64)
    last = np.concatenate((first - 1, [size - 1])).astype(np.int64)
    bar_of_row = np.zeros(size, dtype=np.int64)
    bar_of_row[first] = 1
    bar_of_row = np.cumsum(bar_of_row)
    return Frame(
        view,
        window,
        starts_at[bounds],
        rows[bounds, 1],
        np.maximum.reduceat(rows[:, 2], bounds),
        np.minimum.reduceat(rows[:, 3], bounds),
        rows[last, 4],
        np.add.reduceat(rows[:, 5], bounds),
        bar_of_row,
        last,
    )


def view_style(frame: Frame) -> dict[str, Any]:
    """What follows the data in the view's look (``y_range``, a mountain's ``color``),
    and, for the renderer only, the window's first bar (``first``)."""
    style: dict[str, Any] = {"first": int(frame.window.local()[0])}
    if frame.view.chart == "mountain":
        style["color"] = direction_colour(frame.c)
        style["y_range"] = y_range(frame.c)
    else:  # bars show their own highs and lows: the range hugs those, not the article's +-5
        lo, hi = float(frame.l.min()), float(frame.h.max())
        pad = max((hi - lo) * 0.08, 0.01)
        style["y_range"] = [round(lo - pad, 2), round(hi + pad, 2)]
    return style


def published_style(before: dict[str, Any] | None, style: dict[str, Any]) -> dict[str, Any]:
    changed = changed_style(before, style)
    return {key: value for key, value in changed.items() if key not in INTERNAL}


def view_delta(
    symbol: str,
    frame: Frame,
    base_seq: int,
    base_style: dict[str, Any] | None,
    style: dict[str, Any],
    since: int,
) -> dict[str, Any]:
    """The delta from ``base_seq`` to the window's version, whose versions changed no
    1-minute bar before ``since`` (UTC)."""
    window = frame.window
    kept = frame.bar_at(since)
    head = min(frame.head_needed((base_style or {}).get("first")), kept)
    delta: dict[str, Any] = {
        "symbol": symbol,
        "view": frame.view.key,
        "seq": window.version,
        "base_seq": base_seq,
        "epoch": window.epoch,
        "start": int(frame.x[0]),
    }
    if head:
        delta["head"] = frame.rows(0, head)
    delta["bars"] = frame.rows(kept, len(frame))
    delta["style"] = published_style(base_style, style)
    return delta


def view_figure(symbol: str, frame: Frame, style: dict[str, Any]) -> dict[str, Any]:
    """The view's figure: a plain dict around numpy arrays (``renderer.figure.encode``)."""
    view, x_ms = frame.view, frame.x * 1000
    data = [_price_trace(symbol, frame, x_ms, style)]
    for name, values in zip(view.indicators, frame.columns(0), strict=True):
        data.append(
            {
                "type": "scatter",
                "name": LABELS[name],
                "x": x_ms,
                "y": values,
                "mode": "lines",
                "line": {"color": LINES[name], "width": 1.5},
                "connectgaps": False,
            }
        )
    if view.volume:
        data.append(
            {
                "type": "bar",
                "name": "Volume",
                "showlegend": False,  # the legend names the indicators: the pane says Volume
                "x": x_ms,
                "y": frame.v.astype(np.int64),
                "yaxis": "y2",
                # A colour string per bar: plotly.js 4 warns once per bar and redraw on
                # numbers on a colourscale (and draws them near-black after a redraw).
                "marker": {"color": volume_colours(frame.c, frame.o)},
            }
        )
    buttons = RANGE_BUTTONS if view.seconds == 60 else _buttons(view)
    layout: dict[str, Any] = {
        "template": DARK_TEMPLATE,
        "title": {"text": f"{symbol} · {view.label}"},
        "uirevision": f"{symbol}@{view.key}",
        "hovermode": "x unified",
        "showlegend": bool(view.indicators),
        # No range slider: it draws every trace again on each draw, almost half of a
        # candle chart's (the range buttons stay). Plotly fixes a y axis under a slider;
        # without one it is fixed here, so a drag still zooms only the time.
        "xaxis": time_axis(
            frame.window.market, buttons, hours=view.timeframe != "1d", slider=False
        ),
        "yaxis": {"title": {"text": "Price"}, "range": style["y_range"], "fixedrange": True},
    }
    if view.indicators:  # (a legend laid out but hidden trips plotly.js's validate)
        layout["legend"] = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1}
        layout["legend"].update({"yanchor": "bottom"})
    if view.volume:  # the pane below the price, the time axis below both
        layout["hoversubplots"] = "axis"  # hovering either pane shows the bar's volume too
        layout["xaxis"]["anchor"] = "y2"
        layout["yaxis"]["domain"] = [0.3, 1]
        layout["yaxis2"] = {
            "title": {"text": "Volume"},
            "domain": [0, 0.24],
            "showgrid": False,
            "fixedrange": True,
        }
    return {"data": data, "layout": layout}


def volume_colours(closes: Floats, opens: Floats) -> list[str]:
    """UP for a bar that closed at or above its open, else DOWN (the candles' colours)."""
    return [UP if up else DOWN for up in (closes >= opens).tolist()]


def _buttons(view: View) -> list[dict[str, Any]]:
    return _INTRADAY_BUTTONS if view.seconds < 3_600 else _LONGER_BUTTONS


def _price_trace(symbol: str, frame: Frame, x_ms: Ints, style: dict[str, Any]) -> dict[str, Any]:
    if frame.view.chart == "mountain":
        return {
            "type": "scatter",
            "name": symbol,
            "showlegend": False,
            "x": x_ms,
            "y": frame.c,
            "mode": "lines",
            "fill": "tozeroy",
            "line": {"color": style["color"]},
        }
    return {
        "type": "candlestick" if frame.view.chart == "candles" else "ohlc",
        "name": symbol,
        "showlegend": False,
        "x": x_ms,
        "open": frame.o,
        "high": frame.h,
        "low": frame.l,
        "close": frame.c,
        "increasing": {"line": {"color": UP}},
        "decreasing": {"line": {"color": DOWN}},
    }
