"""Render cost and bytes per update: rtplot's renderer against the article's approach.

    .venv/bin/python -m bench.render [--repeat 200]

Both sides turn the same 1-minute bars into the same chart and its JSON, in this process:

- the article's: a pandas frame (as yfinance returns it) into ``go.Figure`` with a
  ``go.Scatter``, ``update_xaxes`` / ``update_yaxes`` / ``update_layout``, then
  ``plotly.io.to_json``;
- rtplot's: ``renderer.views.default_figure`` (a plain dict around numpy arrays) and
  ``orjson``.

Each figure is the median of ``--repeat`` runs after a warm-up; the ratio is article /
rtplot from the same run. The renderer's round is measured against a real Redis, twice:
by a renderer that holds nothing (it reads every bar and stores the whole figure) and by
one that holds the window (it reads the bars that changed and stores the catch-up).
Bytes compare a full figure with the delta the renderer publishes when the minute in
progress changes (the common case).
"""

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from common.bars import Bar
from common.contract.packets import figure_payload
from common.views import DEFAULT
from fetcher.sources.synthetic import SyntheticSource
from renderer.figure import encode
from renderer.views import default_figure, frame_of, view_delta, view_style
from renderer.window import Window, rows_of

NOW = 1_794_999_960.0 + 30
SIZES = {"1 day (390 bars)": 390, "7 days (10,080 bars)": 10_080}


def bars_for(count: int) -> list[Bar]:
    since = int(NOW) - count * 60 + 1
    return SyntheticSource().fetch({"AAPL": since}, NOW).bars["AAPL"][-count:]


def article_frame(bars: list[Bar]) -> pd.DataFrame:
    index = pd.to_datetime([b.t for b in bars], unit="s", utc=True)
    return pd.DataFrame(
        {
            "Open": [b.o for b in bars],
            "High": [b.h for b in bars],
            "Low": [b.l for b in bars],
            "Close": [b.c for b in bars],
            "Volume": [b.v for b in bars],
        },
        index=index,
    )


def article_render(frame: pd.DataFrame, symbol: str) -> str:
    """The article's plot.py, with its update_xaxes(yaxis_title=...) bug left out."""
    close = frame["Close"]
    colour = (
        "lime"
        if close.iloc[-1] > close.iloc[-2]
        else ("red" if close.iloc[-1] < close.iloc[-2] else "yellow")
    )
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=frame.index, y=close, fill="tozeroy", mode="lines", line_color=colour)
    )
    fig.update_xaxes(
        rangeslider_visible=True,
        rangeselector={
            "bgcolor": "black",
            "buttons": [
                {"count": 15, "label": "15m", "step": "minute", "stepmode": "backward"},
                {"count": 45, "label": "45m", "step": "minute", "stepmode": "backward"},
                {"count": 1, "label": "HTD", "step": "hour", "stepmode": "todate"},
                {"count": 3, "label": "3h", "step": "hour", "stepmode": "backward"},
                {"step": "all"},
            ],
        },
    )
    fig.update_yaxes(range=[close.min() - 5, close.max() + 5])
    fig.update_layout(template="plotly_dark", title=symbol, yaxis_title="Price")
    return str(pio.to_json(fig))


def window_of(bars: list[Bar], version: int = 1) -> Window:
    return Window("bench", version, rows_of([b.as_list() for b in bars]))


def rtplot_render(window: Window, symbol: str) -> bytes:
    return encode(default_figure(symbol, window))


def median_seconds(work: Callable[[], Any], repeat: int) -> float:
    for _ in range(max(3, repeat // 20)):
        work()  # warm-up: caches, first-call imports
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def render_rows(repeat: int) -> list[dict[str, Any]]:
    rows = []
    for label, count in SIZES.items():
        bars = bars_for(count)
        frame = article_frame(bars)
        article = median_seconds(
            lambda frame=frame: article_render(frame, "AAPL"), max(repeat // 10, 10)
        )
        window = window_of(bars)
        ours = median_seconds(lambda w=window: rtplot_render(w, "AAPL"), repeat)
        rows.append(
            {
                "window": label,
                "article_ms": article * 1000,
                "rtplot_ms": ours * 1000,
                "ratio": article / ours,
            }
        )
    return rows


def round_rows(repeat: int) -> list[dict[str, Any]]:
    """A whole render round against a real Redis: read, build, store, publish: what one
    change of the minute in progress costs the renderer, beyond ``default_figure``; by a
    renderer holding nothing, and by one holding the window."""
    import redis

    from rtplot.processes import RedisServer

    with RedisServer() as private:
        client = redis.Redis.from_url(private.url)
        rows = [rounds_of(client, label, count, repeat) for label, count in SIZES.items()]
        client.close()
    return rows


def rounds_of(client: Any, label: str, count: int, repeat: int) -> dict[str, Any]:
    from renderer.service import Renderer

    keys, mover = seeded(client, count)
    cold = Renderer(client, keys, NoViewers(), name="cold", snapshot_every=0)
    warm = Renderer(client, keys, NoViewers(), name="warm", snapshot_every=3600)
    warm.render("AAPL")

    def forget_and_tick() -> None:  # holding nothing: the window forgotten each round
        cold.windows.clear()
        mover.tick()

    return {
        "window": label,
        "round_ms": 1000 * timed_after(forget_and_tick, lambda: cold.render("AAPL"), repeat),
        "incremental_ms": 1000 * timed_after(mover.tick, lambda: warm.render("AAPL"), repeat),
    }


def seeded(client: Any, count: int) -> tuple[Any, "Mover"]:
    """An empty Redis given ``count`` minutes of AAPL with the fetcher's store: the key
    names, and a Mover of its minute in progress."""
    from common.contract.keys import Keys
    from fetcher.store import BarStore

    client.flushall()
    keys = Keys()
    store = BarStore(client, keys, count)
    bars = bars_for(count)
    store.upsert("AAPL", bars, as_of=NOW, now=NOW)
    return keys, Mover(store, bars[-1])


class Mover:
    """Moves the minute in progress by a cent or so, a version at a time."""

    def __init__(self, store: Any, last: Bar) -> None:
        self.store, self.last, self.ticks = store, last, 0

    def tick(self) -> None:
        self.ticks += 1
        last, i = self.last, self.ticks
        close = round(last.c + 0.01 * (i % 7 - 3), 2)
        moved = Bar(last.t, last.o, max(last.h, close), min(last.l, close), close, last.v + i)
        self.store.upsert("AAPL", [moved], as_of=NOW + i, now=NOW)


class NoViewers:
    """The whole-figure seam with nobody watching: publishes nothing."""

    def publish_figures(self, *args: Any) -> None:
        pass


def timed_after(prepare: Callable[[], Any], work: Callable[[], Any], repeat: int) -> float:
    """The median time of ``work``, each run after an untimed ``prepare``."""
    samples = []
    for i in range(repeat + max(3, repeat // 20)):
        prepare()
        started = time.perf_counter()
        work()
        if i >= max(3, repeat // 20):  # the first few warm up
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def moved_window(count: int) -> tuple[Window, Window]:
    """A window of ``count`` bars before and after its minute in progress moved a cent."""
    bars = bars_for(count)
    last = bars[-1]
    close = round(last.c + 0.01, 2)  # a tick's move, in cents as sources quote
    moved = Bar(last.t, last.o, max(last.h, close), last.l, close, last.v + 7)
    return window_of(bars, 1), window_of([*bars[:-1], moved], 2)


def sample_delta(count: int = 390) -> dict[str, Any]:
    """The delta the renderer publishes for the common change, as a dict."""
    before, after = moved_window(count)
    moved_at = int(after.rows[-1][0])
    old, new = frame_of(before, DEFAULT), frame_of(after, DEFAULT)
    return view_delta("AAPL", new, 1, view_style(old), view_style(new), moved_at)


def bytes_rows() -> list[dict[str, Any]]:
    rows = []
    for label, count in SIZES.items():
        _, window = moved_window(count)
        figure = encode(default_figure("AAPL", window))
        full = figure_payload("AAPL", "", 2, "bench", figure)
        delta = orjson.dumps(sample_delta(count))
        article = article_render(article_frame(bars_for(count)), "AAPL").encode()
        rows.append(
            {
                "window": label,
                "article": len(article),
                "full": len(full),
                "delta": len(delta),
                "ratio": len(full) / len(delta),
            }
        )
    return rows


def markdown(
    repeat: int,
    renders: list[dict[str, Any]] | None = None,
    sizes: list[dict[str, Any]] | None = None,
    rounds: list[dict[str, Any]] | None = None,
) -> str:
    """The two sections; measures whatever rows are not given."""
    renders = render_rows(repeat) if renders is None else renders
    sizes = bytes_rows() if sizes is None else sizes
    rounds = round_rows(repeat) if rounds is None else rounds
    lines = [
        "## Render cost per update",
        "",
        f"Median of {repeat} runs (the article's: of {max(repeat // 10, 10)}), "
        "same process, same bars.",
        "",
        "| window | article (go.Figure + to_json) | rtplot (dict + orjson) | rtplot faster by |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in renders:
        lines.append(
            f"| {row['window']} | {row['article_ms']:.2f} ms | {row['rtplot_ms']:.3f} ms "
            f"| {row['ratio']:.0f}x |"
        )
    lines += [
        "",
        "The renderer's whole round for one change of the minute in progress, against a "
        "real Redis on loopback (read, build, store, publish; median of "
        f"{repeat}): *holding nothing*, a renderer reads every bar and stores the whole "
        "figure; *holding the window*, it reads the bars that changed and stores the "
        "catch-up delta (the whole figure is stored every RTPLOT_SNAPSHOT_EVERY s).",
        "",
        "| window | holding nothing | holding the window |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {row['window']} | {row['round_ms']:.2f} ms | {row['incremental_ms']:.3f} ms |"
        for row in rounds
    ]
    lines += [
        "",
        "## Bytes per update",
        "",
        "A change of the minute in progress, as JSON on the wire.",
        "",
        "| window | article's figure | rtplot full figure | rtplot delta | delta smaller by |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in sizes:
        lines.append(
            f"| {row['window']} | {row['article']:,} B | {row['full']:,} B "
            f"| {row['delta']:,} B | {row['ratio']:.0f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    print(markdown(args.repeat))


if __name__ == "__main__":
    main()
