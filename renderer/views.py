"""The views of a symbol, the article's chart among them: candles or OHLC bars or the
mountain, on a timeframe, with indicators and a volume pane (common.views). Every view's
figure and deltas are built here; the article's look is renderer.figure's.

A view is built at each render from its **series** (``Frame``): the store's history at
the view's resolution (common.contract.history; 15m from the 5m history), then the
symbol's window (renderer.window) aggregated to the timeframe on the exchange's clock
(open of the first, highest high, lowest low, close of the last, volumes summed; hourly
bars count from the session's open), from the history's last bar on where the window
holds all of its minutes (``frame_of``). The chart holds the last
``RTPLOT_VIEW_BARS`` bars of the series (from ``shown`` on); the bars before them are
kept for the indicators' warm-up, so every value drawn has its history. A 1-minute
view is built from the window's last rows only (``_tail``): its render costs what its
bars cost, not the whole window.

Its deltas carry every trace: each row is a bar
``[x, open, high, low, close, volume, <indicator values, in the view's order>]``, ``x``
its start on the exchange's clock in seconds (common.series makes the rows, as it makes
a ``history`` answer's). A page holding the figure of ``base_seq`` drops its bars before
``keep`` (when present) and from the first row of ``bars`` on, writes ``head`` over its
bars of the same x, appends ``bars`` and applies ``style``; it then holds the chart from
``start`` (its first bar) on, and before it the older bars it keeps (docs/views.md).
``head`` is there when the window moved on since the base and the bars that may have
changed with it (where the window's bars begin, and the indicator values that depend on
it) are within the chart. ``keep`` is there when bars before the chart's may have
changed: the store's history changed since the base (every bar of the chart is sent
too), a minute before the chart's was revised, or the chart's bars are rolled up from
a window whose start they depend on (``Frame.stable_from``).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from common import indicators
from common.markets import DAY
from common.series import (
    MAX_WARMUP,
    Bars,
    HistoryBars,
    buckets,
    rolled,
    warmup_bars,
)
from common.views import DEFAULT, LABELS, View
from renderer.figure import (
    DARK_TEMPLATE,
    RANGE_BUTTONS,
    article_figure,
    direction_colour,
    mountain_trace,
    time_axis,
    y_range,
)
from renderer.window import Window

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

UP, DOWN = "#26a69a", "#ef5350"  # candles and volume bars
LINES = {"sma20": "#f5c542", "sma50": "#b388ff", "ema20": "#4fc3f7", "vwap": "#ff8a65"}


# The range buttons of each timeframe span what its bounded chart holds (1,500 bars: a
# 5m chart a week or more, 1h months, 1d years), "all" being all of it.
def _back(count: int, label: str, step: str) -> dict[str, Any]:
    return {"count": count, "label": label, "step": step, "stepmode": "backward"}


_ALL: dict[str, Any] = {"step": "all"}
_BUTTONS: dict[str, list[dict[str, Any]]] = {
    "5m": [_back(3, "3h", "hour"), _back(1, "1d", "day"), _back(5, "5d", "day"), _ALL],
    "15m": [_back(1, "1d", "day"), _back(5, "5d", "day"), _back(1, "1mo", "month"), _ALL],
    "1h": [
        _back(5, "5d", "day"),
        _back(1, "1mo", "month"),
        _back(3, "3mo", "month"),
        _back(6, "6mo", "month"),
        _ALL,
    ],
    "1d": [
        _back(3, "3mo", "month"),
        _back(1, "1y", "year"),
        {"count": 1, "label": "YTD", "step": "year", "stepmode": "todate"},
        _back(5, "5y", "year"),
        _ALL,
    ],
}
# Style keys the renderer keeps for itself: the base's window's first bar, and the
# version of the store's history its series held.
INTERNAL = ("first", "history")


@dataclass
class Frame(Bars):
    """A view's bars for one render: its series (older bars from the store's history at
    the view's resolution, then the window's bars aggregated) and the last ``limit`` of
    them, from ``shown`` on, which are what the figure and the deltas carry. The bars
    before ``shown`` are there for the indicators: every value drawn has its history."""

    view: View
    window: Window  # the rows the window part is built from (the window's last ones)
    bar_of_row: Ints  # the bar (series index) each 1-minute bar of ``window`` went into
    window_from: int = 0  # the series index of the window part's first bar
    shown: int = 0  # the first bar drawn and sent
    history: int = 0  # the version of the store's history the series holds
    loading: bool = False  # its history is due and not stored yet: the page says so
    anchored: bool = False  # its window part starts at the history's last bar (frame_of)
    # Where bars stop depending on where the whole window starts (exchange clock): from
    # here on, a bar's values change only when its minutes or its history do.
    stable_from: int = 0

    def bar_at(self, minute: int) -> int:
        """The first bar a change from ``minute`` (UTC, as the changelog says) touches."""
        row = self.window.index_of(minute)
        return int(self.bar_of_row[row]) if row < len(self.bar_of_row) else len(self)

    def monotonic(self) -> bool:
        return bool(np.all(self.x[1:] > self.x[:-1]))

    def values(self, first: int) -> list[Floats]:
        """The view's indicator values of bars ``first`` on, one array per indicator."""
        return self.columns(self.view.indicators, first)

    def view_rows(self, lo: int, hi: int) -> list[list[Any]]:
        """Bars ``lo`` to ``hi`` as a delta carries them."""
        return self.rows(self.view.indicators, lo, hi)

    def head_needed(self, base_first: int | None) -> int:
        """The end of the bars that may have changed because the window moved on since
        the base (whose window's first 1-minute bar was ``base_first``, on the exchange's
        clock): the window part's first bar (it lost minutes, or the history's bar took
        its place) and the indicator values that depend on it."""
        first = int(self.window.local()[0])
        if base_first == first or self.anchored or not _moves_with_start(self.view):
            return 0  # (anchored: no bar depends on where the window starts)
        start = self.window_from
        need = start + 1
        for name in self.view.indicators:
            need = max(need, start + indicators.warmup(name))
        if "vwap" in self.view.indicators:  # its values through the day of that bar
            days = self.x // DAY
            day = days[min(start, len(self) - 1)] if len(self) else 0
            need = max(need, int(np.searchsorted(days, day, side="right")))
        return min(need, len(self))


def _moves_with_start(view: View) -> bool:
    """Whether a bar of the view may change as the window's start passes near it: its
    first bar lacks minutes (coarser than a minute), or its indicators' first values
    lack their warm-up. A plain 1-minute chart's bars (the article's) never do."""
    return view.seconds > 60 or bool(view.indicators)


def _tail(window: Window, view: View, limit: int | None) -> Window:
    """The window's last rows that the view's last ``limit`` bars need, with room before
    them for the longest indicator warm-up and a day (VWAP's): a 1-minute view of a week
    is drawn from ~3,000 rows, not 10,080 (the article's, with nothing to warm up, from
    its 1,500)."""
    if limit is None:
        return window
    if not _moves_with_start(view):
        return window.tail(limit)
    return window.tail((limit + MAX_WARMUP + 1) * (view.seconds // 60) + DAY // 60)


def _history_bars(
    history: HistoryBars, view: View, until: int, limit: int | None
) -> tuple[Ints, list[Floats]]:
    """The history's bars that start at or before ``until`` (the window's first bar),
    the last ``limit`` and what their indicators need."""
    x = history.x
    end = int(np.searchsorted(x, until, side="right"))
    begin = 0 if limit is None else max(end - limit - warmup_bars(view), 0)
    return x[begin:end], [col[begin:end] for col in history.columns]


def frame_of(
    window: Window,
    view: View,
    history: HistoryBars | None = None,
    limit: int | None = None,
    history_version: int = 0,
    loading: bool = False,
) -> Frame:
    """The view's bars on its timeframe, on the exchange's clock: the store's
    ``history`` (bars of a resolution the timeframe is made of, UTC starts) before the
    window's, then the window's; the last ``limit`` shown.

    Where the window holds every minute of the history's last bar, the window's bars
    start there (*anchored*): they are rolled up from the minutes since, not the whole
    week (a 1d chart reads today's minutes, not 10,080 of them), and no bar drawn
    depends on where the window starts. Otherwise (no history, or a history older than
    the window) they start at the window's first bar, which the history's bar of that
    start stands for."""
    anchor = _anchor(window, view, history)
    stable_from = 0
    if anchor is None and len(window) and _moves_with_start(view):
        # The window's first bar (partial, on a coarser timeframe) and the values that
        # depend on it.
        stable_from = window.local_start() + (MAX_WARMUP + 1) * view.seconds + 2 * DAY
    window = _tail(window, view, limit) if anchor is None else window.tail(anchor)
    rows, local = window.rows, window.local()
    size = len(rows)
    if view.seconds == 60:  # the rows' columns themselves (a figure copies what it sends)
        columns = [rows[:, i] for i in range(1, 6)]
        x, index = local, np.arange(size, dtype=np.int64)
    else:
        columns = [np.ascontiguousarray(rows[:, i]) for i in range(1, 6)]
        x, columns, bounds = rolled(buckets(local, view, window.market), columns)
        index = np.zeros(size, dtype=np.int64)
        index[bounds[1:]] = 1
        index = np.cumsum(index)
    window_from = 0
    if history is not None and len(history.x) and size and view.seconds > 60:
        # Anchored, the history's bars before the window's first (its last bar is the
        # window's first); else up to the window's first, which its bar stands for.
        until = int(x[0]) - (1 if anchor is not None else 0)
        hx, older = _history_bars(history, view, until, limit)
        if len(hx):
            # The history's bar of the window's first start, if it has one, stands for
            # the window's: that one lacks the minutes before the window's start.
            skip = 1 if hx[-1] == x[0] else 0
            x = np.concatenate((hx, x[skip:]))
            columns = [
                np.concatenate((old, new[skip:])) for old, new in zip(older, columns, strict=True)
            ]
            window_from = len(hx) - skip
            index = index + window_from
    shown = 0 if limit is None else max(len(x) - limit, 0)
    o, h, lo, c, v = columns
    return Frame(
        x,
        o,
        h,
        lo,
        c,
        v,
        view=view,
        window=window,
        bar_of_row=index,
        window_from=window_from,
        shown=shown,
        history=history_version,
        loading=loading,
        anchored=anchor is not None,
        stable_from=stable_from,
    )


def _anchor(window: Window, view: View, history: HistoryBars | None) -> int | None:
    """How many of the window's last rows hold every minute from the start of the
    history's last bar on; None if the window does not reach back that far."""
    if history is None or not len(history.x) or view.seconds == 60 or not len(window):
        return None
    local = window.local()
    start = int(history.x[-1])
    if not local[0] <= start <= local[-1]:
        return None
    return len(local) - int(np.searchsorted(local, start, side="left"))


def view_style(frame: Frame) -> dict[str, Any]:
    """What follows the data in the view's look (``y_range``, a mountain's ``color``),
    and, for the renderer only, the window's first bar (``first``) and the history's
    version (``history``)."""
    first = int(frame.window.local()[0]) if len(frame.window) else None
    style: dict[str, Any] = {"first": first, "history": frame.history}
    style["loading"] = frame.loading  # the page shows "loading history…" meanwhile
    shown = frame.shown
    if frame.view.chart == "mountain":
        style["color"] = direction_colour(frame.c[shown:])
        if len(frame) > shown:
            style["y_range"] = y_range(frame.c[shown:])
    elif len(frame) > shown:
        # Bars show their own highs and lows: the range hugs those, not the article's +-5.
        lo, hi = float(frame.l[shown:].min()), float(frame.h[shown:].max())
        pad = max((hi - lo) * 0.08, 0.01)
        style["y_range"] = [round(lo - pad, 2), round(hi + pad, 2)]
    return style


def changed_style(before: dict[str, Any] | None, style: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the base's style: usually nothing, or the colour."""
    before = before or {}
    return {key: value for key, value in style.items() if before.get(key) != value}


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
    window, base = frame.window, base_style or {}
    kept = frame.bar_at(since)
    start = int(frame.x[frame.shown])
    keep: int | None = None  # a page holding bars before ``start`` drops those before it
    if base.get("history") != style.get("history") or kept < frame.shown:
        kept, keep = 0, start  # the past changed under the base: every bar is sent
    elif not frame.anchored and frame.stable_from:
        keep = min(frame.stable_from, start)
    kept = max(kept, frame.shown)
    head = min(frame.head_needed(base.get("first")), kept)
    delta: dict[str, Any] = {"symbol": symbol}
    if frame.view.key:  # (the default view's payloads never named it)
        delta["view"] = frame.view.key
    delta |= {
        "seq": window.version,
        "base_seq": base_seq,
        "epoch": window.epoch,
        "start": start,
    }
    if keep is not None:
        delta["keep"] = keep
    if head > frame.shown:
        delta["head"] = frame.view_rows(frame.shown, head)
    delta["bars"] = frame.view_rows(kept, len(frame))
    delta["style"] = published_style(base_style, style)
    return delta


def view_figure(symbol: str, frame: Frame, style: dict[str, Any]) -> dict[str, Any]:
    """The view's figure: a plain dict around numpy arrays (``renderer.figure.encode``);
    the default view's is the article's (renderer.figure)."""
    view, shown = frame.view, frame.shown
    x_ms = frame.x[shown:] * 1000
    if view == DEFAULT:
        closes = np.ascontiguousarray(frame.c[shown:])
        return article_figure(symbol, x_ms, closes, style, frame.window.market)
    data = [_price_trace(symbol, frame, x_ms, style)]
    for name, values in zip(view.indicators, frame.values(shown), strict=True):
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
                "y": frame.v[shown:].astype(np.int64),
                "yaxis": "y2",
                # A colour string per bar: plotly.js 4 warns once per bar and redraw on
                # numbers on a colourscale (and draws them near-black after a redraw).
                "marker": {"color": volume_colours(frame.c[shown:], frame.o[shown:])},
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
        "yaxis": {"title": {"text": "Price"}, "range": style.get("y_range"), "fixedrange": True},
    }
    if frame.loading:  # the page shows "loading history…" on the card until it is stored
        layout["meta"] = {"loading_history": True}
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
    return _BUTTONS[view.timeframe]


def _price_trace(symbol: str, frame: Frame, x_ms: Ints, style: dict[str, Any]) -> dict[str, Any]:
    shown = frame.shown
    if frame.view.chart == "mountain":
        closes = np.ascontiguousarray(frame.c[shown:])
        return {**mountain_trace(symbol, x_ms, closes, style), "showlegend": False}
    return {
        "type": "candlestick" if frame.view.chart == "candles" else "ohlc",
        "name": symbol,
        "showlegend": False,
        "x": x_ms,
        # (orjson encodes contiguous arrays only; a 1-minute frame's are the rows' columns)
        "open": np.ascontiguousarray(frame.o[shown:]),
        "high": np.ascontiguousarray(frame.h[shown:]),
        "low": np.ascontiguousarray(frame.l[shown:]),
        "close": np.ascontiguousarray(frame.c[shown:]),
        "increasing": {"line": {"color": UP}},
        "decreasing": {"line": {"color": DOWN}},
    }


def default_figure(symbol: str, window: Window, limit: int | None = None) -> dict[str, Any]:
    """The default view's (the article's) figure of the window's last ``limit`` minutes."""
    frame = frame_of(window, DEFAULT, limit=limit)
    return view_figure(symbol, frame, view_style(frame))
