"""What one view costs the renderer: a symbol's round with each kind of view watched.

    .venv/bin/python -m bench.views [--repeat 100]

A symbol with a week of 1-minute bars (10,080) is stored in a private redis-server, and
a renderer holding its window renders it after each change of the minute in progress
(the common change), as in ``bench.render``'s round: read what changed, build, store,
publish. The round is timed with no view but the default one watched, then with one
view of each kind watched (a pub/sub subscriber on its room, as a gateway would be),
then with 1 to 8 distinct views at once. A view's cost is its round less the default
view's. The whole figure of each view (built and encoded; stored every
RTPLOT_SNAPSHOT_EVERY s, and sent on every change to a room that asks for whole
figures) and the bytes of its figure and of its delta are measured too.
"""

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis

from bench.render import NOW, NoViewers, bars_for, median_seconds, seeded, timed_after
from common.contract.history import write_history
from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.rooms import Mode, Room
from common.contract.watching import WatchView
from common.markets import DAY
from common.resolutions import Columns, Resolution, history_of
from common.series import on_timeframe
from common.settings import DEFAULT_HISTORY_DAYS, Settings
from common.views import View
from fetcher.sources.synthetic import SyntheticSource
from renderer.figure import encode
from renderer.service import Renderer, ViewChart
from renderer.window import Window, rows_of

BARS = 10_080  # a week of 1-minute bars
KINDS = [
    View.from_key(key)
    for key in (
        "candles.5m.vol",
        "ohlc.1m.vol",
        "candles.1m.vol",
        "candles.1h.sma20.sma50.ema20.vwap.vol",
        "mountain.1m.sma20.sma50.ema20.vwap.vol",
        "candles.1d.sma50.vol",
    )
]
SCALE = [1, 2, 4, 8]  # distinct views watched at once
SPREAD = [
    View.from_key(key)
    for key in (
        "candles.5m.vol",
        "ohlc.15m.vol",
        "candles.1h.sma20.vol",
        "mountain.1m.vol",
        "candles.1m.vol",
        "ohlc.5m.ema20.vol",
        "candles.15m.vwap.vol",
        "mountain.5m.sma50",
    )
]


def round_ms(client: "redis.Redis", views: list[View], repeat: int) -> float:
    """The median round, in ms, with ``views`` watched besides the default one."""
    keys, mover = seeded(client, BARS)
    store_history(client)
    renderer = Renderer(client, keys, NoViewers(), name="bench", snapshot_every=3600)
    with watching(client, views):
        renderer.render("AAPL")  # the window read, each view's first figure stored
        return 1000 * timed_after(mover.tick, lambda: renderer.render("AAPL"), repeat)


@contextmanager
def watching(client: "redis.Redis", views: list[View]) -> Iterator[None]:
    """Each view listed, and its page room subscribed to, as a gateway does."""
    keys = Keys()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    for view in views:
        Scripts(client, keys).run(WatchView("AAPL", view.key, time.time() + 3600, notify=False))
        pubsub.subscribe(keys.channel(Room("AAPL", Mode.DELTA, view.key)))
    try:
        yield
    finally:
        pubsub.close()


def store_history(client: "redis.Redis") -> None:
    """The synthetic market's history of AAPL at the default depths, as the worker
    stores it: the views draw it before their window, bounded to RTPLOT_VIEW_BARS."""
    source = SyntheticSource()
    for resolution, days in DEFAULT_HISTORY_DAYS:
        span = (int(NOW) - days * DAY, int(NOW) + 1)
        bars = source.history(resolution, {"AAPL": span}, NOW).columns["AAPL"].bars()
        write_history(client, Keys(), "AAPL", resolution, span, bars, span[0], NOW)


def histories() -> dict[Resolution, Columns]:
    source = SyntheticSource()
    return {
        r: source.history(r, {"AAPL": (int(NOW) - d * DAY, int(NOW) + 1)}, NOW).columns["AAPL"]
        for r, d in DEFAULT_HISTORY_DAYS
    }


def figure_rows(repeat: int) -> list[dict[str, Any]]:
    """Each kind's whole figure and delta, built outside Redis, over its history and
    bounded to RTPLOT_VIEW_BARS as the renderer builds them."""
    held = histories()

    def chart_of(window: Window, view: View) -> ViewChart:
        if not view.key:
            return ViewChart("AAPL", window, view, limit=Settings.view_bars)
        resolution = history_of(view.timeframe)
        history = None
        if resolution is not None:
            history = on_timeframe(held[resolution], view, window.market)
        return ViewChart("AAPL", window, view, history, Settings.view_bars, 1)

    bars = bars_for(BARS)
    window = Window("bench", 1, rows_of([b.as_list() for b in bars]))
    last = bars[-1]
    close = round(last.c + 0.01, 2)  # the minute in progress moves a cent
    moved = [last.t, last.o, max(last.h, close), last.l, close, last.v + 7]
    after = Window("bench", 2, rows_of([b.as_list() for b in bars[:-1]] + [moved]))
    rows = []
    for view in [View(), *KINDS]:
        chart = chart_of(window, view)
        style = chart.style()
        build: Callable[[], bytes] = lambda c=chart, s=style: encode(c.figure(s))  # noqa: E731
        figure = build()
        later = chart_of(after, view)
        delta = later.delta(1, style, later.style(), int(last.t))
        rows.append(
            {
                "view": view.key or "default (the article's)",
                "figure_ms": 1000 * median_seconds(build, max(repeat // 5, 10)),
                "figure_bytes": len(figure),
                "delta_bytes": len(orjson.dumps(delta)),
            }
        )
    return rows


def measure(repeat: int) -> dict[str, Any]:
    from rtplot.processes import RedisServer

    with RedisServer() as private:
        client = redis.Redis.from_url(private.url)
        alone = round_ms(client, [], repeat)
        kinds = [{"view": v.key, "round_ms": round_ms(client, [v], repeat)} for v in KINDS]
        scale = [{"views": n, "round_ms": round_ms(client, SPREAD[:n], repeat)} for n in SCALE]
        client.close()
    return {"alone": alone, "kinds": kinds, "scale": scale, "figures": figure_rows(repeat)}


def markdown(repeat: int = 100, measured: dict[str, Any] | None = None) -> str:
    """The section; measures unless given ``measure``'s result."""
    m = measure(repeat) if measured is None else measured
    alone = m["alone"]
    lines = [
        "## What a view costs",
        "",
        f"A week of 1-minute bars ({BARS:,}) and the synthetic market's history at the "
        "default depths, each view's chart bounded to RTPLOT_VIEW_BARS (1,500 bars); "
        "the renderer's round for one change of the "
        "minute in progress, against a real Redis on loopback (median of "
        f"{repeat}), holding the window. Each watched view is built once per change "
        "whatever its number of viewers, so its cost is paid once per symbol and change.",
        "",
        "| views watched besides the default one | round | the view's cost |",
        "| --- | ---: | ---: |",
        f"| none | {alone:.2f} ms | |",
    ]
    lines += [
        f"| `{row['view']}` | {row['round_ms']:.2f} ms | +{row['round_ms'] - alone:.2f} ms |"
        for row in m["kinds"]
    ]
    lines += [
        "",
        "Distinct views of one symbol watched at once (a mix of the kinds above): the "
        "round grows with the number of views, not of viewers.",
        "",
        "| distinct views | round | per view |",
        "| ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row['views']} | {row['round_ms']:.2f} ms "
        f"| {(row['round_ms'] - alone) / row['views']:.2f} ms |"
        for row in m["scale"]
    ]
    lines += [
        "",
        "Each view's whole figure (built and encoded: stored every "
        "RTPLOT_SNAPSHOT_EVERY s, and built on every change only while a client takes "
        "whole figures of it), and the bytes of its figure and of the delta for that "
        "change.",
        "",
        "| view | whole figure | figure | delta |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| `{row['view']}` | {row['figure_ms']:.1f} ms | {row['figure_bytes']:,} B "
        f"| {row['delta_bytes']:,} B |"
        for row in m["figures"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    print(markdown(args.repeat))


if __name__ == "__main__":
    main()
