"""What the page (gateway/static/app.js) keeps of a chart and does with a `bars` delta,
in Python: the arrays of each trace, the y range and the line colour. The property
tests check that a page applying deltas holds exactly the figure a whole render gives,
for the default view and every other.

Traces, in order: the price (``y`` of closes for a mountain; ``open``, ``high``, ``low``,
``close`` for candles and ohlc), one line per indicator, then the volume bars (``y`` and
``marker.color``, a colour string per bar: the candles' up colour for a bar that closed
at or above its open, else their down colour). A delta's row is
``[x, open, high, low, close, volume, <indicator values>]``, x in seconds.
"""

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
        """What app.js's applyDelta does."""
        assert delta["base_seq"] == self.seq, "a gap: the page would ask for a snapshot"
        xs = self.traces[0]["x"]
        begin = next((i for i, x in enumerate(xs) if x >= delta["start"] * 1000), len(xs))
        first = delta["bars"][0][0] * 1000 if delta["bars"] else float("inf")
        end = next((i for i, x in enumerate(xs) if x >= first), len(xs))
        for arrays in self.traces:
            for name in arrays:
                arrays[name] = arrays[name][begin:end]
        for i, row in enumerate(delta.get("head", [])):
            for arrays, sources in zip(self.traces, self.sources, strict=True):
                arrays["x"][i] = row[0] * 1000
                for name, source in sources.items():
                    arrays[name][i] = source(row) if callable(source) else row[source]
        for row in delta["bars"]:
            for arrays, sources in zip(self.traces, self.sources, strict=True):
                arrays["x"].append(row[0] * 1000)
                for name, source in sources.items():
                    arrays[name].append(source(row) if callable(source) else row[source])
        self.y_range = delta["style"].get("y_range", self.y_range)
        self.color = delta["style"].get("color", self.color)
        self.seq = delta["seq"]

    def state(self) -> tuple[Any, ...]:
        return self.seq, self.traces, self.y_range, self.color


def state_of(payload: dict[str, Any]) -> tuple[Any, ...]:
    """The state a page holding exactly this figure has."""
    return PageChart(payload).state()
