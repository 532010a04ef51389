"""What the page (gateway/static/app.js) keeps of a chart and does with a `bars` delta
and a `history` answer, in Python: the arrays of each trace, the y range and the line
colour. The property tests check that a page applying deltas holds exactly the figure a
whole render gives from the chart's first bar on, for the default view and every other,
and that the bars it holds before that (older ones it loaded, or the chart's own that
the live edge left behind) are the store's.

Traces, in order: the price (``y`` of closes for a mountain; ``open``, ``high``, ``low``,
``close`` for candles and ohlc), one line per indicator, then the volume bars (``y`` and
``marker.color``, a colour string per bar: the candles' up colour for a bar that closed
at or above its open, else their down colour). A delta's row is
``[x, open, high, low, close, volume, <indicator values>]``, x in seconds.
"""

import copy
from typing import Any

UP, DOWN = "#26a69a", "#ef5350"  # the volume bars' colours, as app.js writes them

PRICE = {"open": 1, "high": 2, "low": 3, "close": 4}


def columns(trace: dict[str, Any], index: int) -> dict[str, Any]:
    """Where each of the trace's arrays comes from in a row: a column, or a function."""
    kind = trace["type"]
    if kind in ("candlestick", "ohlc"):
        return dict(PRICE)
    if kind == "bar":
        return {"y": 5, "marker.color": lambda row: UP if row[4] >= row[1] else DOWN}
    return {"y": 4 if index == 0 else 5 + index}


class PageChart:
    """A chart as the page holds it, built from a `figure` event's payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        figure = payload["figure"]
        self.seq: int = payload["seq"]
        self.epoch: str | None = payload.get("epoch")
        self.traces = [self._arrays(trace) for trace in figure["data"]]
        self.sources = [columns(trace, i) for i, trace in enumerate(figure["data"])]
        self.y_range = figure["layout"].get("yaxis", {}).get("range")
        self.color = figure["data"][0].get("line", {}).get("color")
        xs = self.traces[0]["x"]
        self.start: float = xs[0] if xs else float("inf")  # the chart's first bar (ms)

    @staticmethod
    def _arrays(trace: dict[str, Any]) -> dict[str, list[Any]]:
        arrays = {"x": list(trace["x"])}
        for name in ("y", "open", "high", "low", "close"):
            if name in trace:
                arrays[name] = list(trace[name])
        if trace["type"] == "bar":
            arrays["marker.color"] = list(trace["marker"]["color"])
        return arrays

    def apply(self, delta: dict[str, Any]) -> None:
        """What app.js's applyDelta does: drop the bars before ``keep`` (if given) and from
        the first row on, write ``head`` over the bars of the same x, append ``bars``."""
        assert delta["base_seq"] == self.seq, "a gap: the page would ask for a snapshot"
        xs = self.traces[0]["x"]
        keep = delta.get("keep", -float("inf")) * 1000
        first = delta["bars"][0][0] * 1000 if delta["bars"] else float("inf")
        begin = next((i for i, x in enumerate(xs) if x >= keep), len(xs))
        end = next((i for i, x in enumerate(xs) if x >= first), len(xs))
        end = max(begin, end)
        for arrays in self.traces:
            for name in arrays:
                arrays[name] = arrays[name][begin:end]
        at = {x: i for i, x in enumerate(self.traces[0]["x"])}
        for row in delta.get("head", []):
            if row[0] * 1000 in at:
                self._write(row, at[row[0] * 1000])
        for row in delta["bars"]:
            self._write(row, None)
        self.start = delta["start"] * 1000
        self.y_range = delta["style"].get("y_range", self.y_range)
        self.color = delta["style"].get("color", self.color)
        self.seq = delta["seq"]

    def _write(self, row: list[Any], at: int | None) -> None:
        """Row ``row`` over bar ``at``, or appended (None)."""
        for arrays, sources in zip(self.traces, self.sources, strict=True):
            for name, source in (("x", 0), *sources.items()):
                value = (
                    row[0] * 1000
                    if name == "x"
                    else source(row)
                    if callable(source)
                    else row[source]
                )
                if at is None:
                    arrays[name].append(value)
                else:
                    arrays[name][at] = value

    def load(self, answer: dict[str, Any]) -> None:
        """What app.js does with a ``history`` answer of this epoch: its rows before the
        first bar held go in front."""
        assert answer["ok"] and answer["epoch"] == self.epoch
        oldest = self.traces[0]["x"][0] if self.traces[0]["x"] else float("inf")
        rows = [row for row in answer["rows"] if row[0] * 1000 < oldest]
        old = self.traces
        self.traces = [{name: [] for name in arrays} for arrays in old]
        for row in rows:
            self._write(row, None)
        for arrays, before in zip(self.traces, old, strict=True):
            for name in arrays:
                arrays[name] += before[name]

    def emptied(self) -> "PageChart":
        """The same chart holding no bars."""
        page = copy.deepcopy(self)
        page.traces = [{name: [] for name in arrays} for arrays in self.traces]
        return page

    def state(self) -> tuple[Any, ...]:
        """What it draws of the chart: its bars from ``start`` on, and the look."""
        begin = next((i for i, x in enumerate(self.traces[0]["x"]) if x >= self.start), 0)
        traces = [
            {name: values[begin:] for name, values in arrays.items()} for arrays in self.traces
        ]
        return self.seq, traces, self.y_range, self.color

    def everything(self) -> tuple[Any, ...]:
        """Every bar it holds, before ``start`` too."""
        return self.seq, self.traces, self.y_range, self.color

    def past(self) -> dict[float, tuple[Any, ...]]:
        """Each bar it holds before ``start``: x -> every trace's values of it."""
        return {x: values for x, values in self.bars().items() if x < self.start}

    def bars(self) -> dict[float, tuple[Any, ...]]:
        """Each bar it holds: x -> every trace's values of it."""
        xs = self.traces[0]["x"]
        return {
            x: tuple(arrays[name][i] for arrays in self.traces for name in arrays)
            for i, x in enumerate(xs)
        }


def state_of(payload: dict[str, Any]) -> tuple[Any, ...]:
    """The state a page holding exactly this figure has."""
    return PageChart(payload).state()
