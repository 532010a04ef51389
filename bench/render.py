"""Render cost and bytes per update: rtplot's renderer against the article's approach.

    .venv/bin/python -m bench.render [--repeat 200]

Both sides turn the same 1-minute bars into the same chart and its JSON, in this process:

- the article's: a pandas frame (as yfinance returns it) into ``go.Figure`` with a
  ``go.Scatter``, ``update_xaxes`` / ``update_yaxes`` / ``update_layout``, then
  ``plotly.io.to_json``;
- rtplot's: ``renderer.figure.build_figure`` (a plain dict) and ``orjson.dumps``.

Each figure is the median of ``--repeat`` runs after a warm-up; the ratio is article /
rtplot from the same run. Bytes compare a full figure with the delta the renderer
publishes when the minute in progress changes (the common case).
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
from fetcher.sources.synthetic import SyntheticSource
from renderer.delta import build_delta
from renderer.figure import build_figure, style_of
from renderer.snapshots import Window

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


def rtplot_render(bars: list[Bar], symbol: str) -> bytes:
    return orjson.dumps(build_figure(symbol, bars))


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
        ours = median_seconds(lambda bars=bars: rtplot_render(bars, "AAPL"), repeat)
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
    """A whole render round against a real Redis: read the window, build, store the
    snapshot, publish: what one change costs the renderer, beyond ``build_figure``."""
    import redis

    from common.keys import Keys
    from fetcher.store import BarStore
    from renderer.publish import SocketIOPublisher
    from renderer.service import Renderer
    from rtplot.up import PrivateRedis

    rows = []
    private = PrivateRedis("redis-server")
    try:
        client = redis.Redis.from_url(private.url)
        keys = Keys()
        for label, count in SIZES.items():
            BarStore(client, keys, count).upsert("AAPL", bars_for(count), as_of=NOW, now=NOW)
            renderer = Renderer(client, keys, SocketIOPublisher(client, keys.socketio_channel))
            renderer.ensure_group()
            seconds = median_seconds(lambda r=renderer: r.render("AAPL", republish=True), repeat)
            rows.append({"window": label, "round_ms": seconds * 1000})
            client.flushall()
    finally:
        private.stop()
    return rows


def moved_window(count: int) -> Window:
    """A window of ``count`` bars whose minute in progress just moved by a cent."""
    bars = bars_for(count)
    last = bars[-1]
    close = round(last.c + 0.01, 2)  # a tick's move, in cents as sources quote
    moved = Bar(last.t, last.o, max(last.h, close), last.l, close, last.v + 7)
    return Window(
        version=2,
        bars=[*bars[:-1], moved],
        previous_seq=1,
        changelog={2: moved.t},
        previous_style=style_of(bars),
    )


def sample_delta(count: int = 390) -> dict[str, Any]:
    """The delta the renderer publishes for the common change, as a dict."""
    return build_delta("AAPL", moved_window(count)) or {}


def bytes_rows() -> list[dict[str, Any]]:
    rows = []
    for label, count in SIZES.items():
        window = moved_window(count)
        full = orjson.dumps(
            {"symbol": "AAPL", "seq": 2, "figure": build_figure("AAPL", window.bars)}
        )
        delta = orjson.dumps(build_delta("AAPL", window))
        article = article_render(article_frame(window.bars), "AAPL").encode()
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
        "The renderer's whole round for one change, against a real Redis on loopback "
        f"(read the window, build, store the snapshot, publish; median of {repeat}):",
        "",
        "| window | render round |",
        "| --- | ---: |",
    ]
    lines += [f"| {row['window']} | {row['round_ms']:.2f} ms |" for row in rounds]
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
