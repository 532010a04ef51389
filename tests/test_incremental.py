"""A render from the window a renderer kept, brought up to date with the bars that
changed, is byte for byte the render of every bar read afresh: whatever the writes
(new minutes, revisions of old ones, backfilled gaps, trims), restarts, hand-overs
between renderers and stores emptied under them; in the default view and in others."""

from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.bars import MINUTE, Bar
from common.contract.keys import Keys
from common.markets import NEW_YORK, market_for
from common.views import View
from fetcher.store import BarStore
from renderer.figure import encode
from renderer.metrics import READS
from renderer.service import Renderer, ViewChart
from renderer.store import RenderStore
from renderer.views import default_figure
from renderer.window import Window, rows_of

START = 1_794_999_960
KEYS = Keys()
WINDOW = 30  # minutes


class NoViewers:
    def publish_figures(self, *args: Any) -> None:
        pass


# Views whose every part (buckets across hours, every indicator, volume) a kept window
# must render as a fresh one does.
VIEWS = [View.from_key("candles.5m.sma20.sma50.ema20.vwap.vol"), View.from_key("ohlc.1h.vol")]


def renders(window: Window) -> list[bytes]:
    """The window's figure in the default view and in each of VIEWS."""
    figures = [encode(default_figure("AAPL", window))]
    for view in VIEWS:
        chart = ViewChart("AAPL", window, view)
        figures.append(encode(chart.figure(chart.style())))
    return figures


def whole_render(client: "redis.Redis") -> list[bytes]:
    """The figures of every stored bar, read by a renderer that holds nothing."""
    read = RenderStore(client, KEYS).read("AAPL")
    market = read.market or market_for("AAPL").always_open()
    return renders(Window(read.epoch, read.version, rows_of(read.rows), market))


operations = st.lists(
    st.tuples(
        st.sampled_from(
            ["tick", "new_minute", "revise", "backfill", "trim", "restart", "hand_over", "reset"]
        ),
        st.integers(min_value=1, max_value=WINDOW - 1),
        st.floats(min_value=1, max_value=900, allow_nan=False).map(lambda p: round(p, 2)),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations)
def test_a_kept_window_renders_as_every_bar_read_afresh(
    client: "redis.Redis", ops: list[tuple[str, int, float]]
) -> None:
    client.flushdb()
    store = BarStore(client, KEYS, window_minutes=WINDOW)
    renderers = [Renderer(client, KEYS, NoViewers(), name=n) for n in ("a", "b")]
    now = float(START + 5)
    # Every other minute of the window: gaps for a backfill to fill. A session's hours:
    # hourly bars count from its open.
    bars = [bar(START - 120 * i, 50) for i in range(WINDOW // 2)]
    store.upsert("AAPL", bars, now, now, market=NEW_YORK)
    active = 0
    out_of_step = READS.labels("out_of_step")._value.get()
    for kind, age, price in ops:
        minute = int(now) // MINUTE * MINUTE
        if kind == "tick":
            now += 1
            store.upsert("AAPL", [bar(minute, price)], now, now)
        elif kind == "new_minute":
            now += MINUTE
            store.upsert("AAPL", [bar(int(now) // MINUTE * MINUTE, price)], now, now)
        elif kind in ("revise", "backfill"):
            now += 1
            # A revision lands on a stored minute, a backfill anywhere (maybe a gap).
            at = minute - age * MINUTE - (MINUTE if kind == "revise" and age % 2 else 0)
            store.upsert("AAPL", [bar(at, price), bar(minute, price)], now, now)
        elif kind == "trim":
            now += age * MINUTE  # the window moves on, dropping old bars
            store.upsert("AAPL", [], now, now)
        elif kind == "restart":
            renderers[active] = Renderer(client, KEYS, NoViewers(), name="restarted")
        elif kind == "hand_over":
            active = 1 - active
        elif kind == "reset":
            client.flushdb()  # Redis back empty: a new epoch, and no market said yet
            store.upsert("AAPL", [bar(minute - MINUTE, price), bar(minute, price)], now, now)
        renderer = renderers[active]
        renderer.render("AAPL")
        held = renderer.windows.get("AAPL")
        if held is not None:
            assert renders(held) == whole_render(client)
    # Held windows were brought up to date, not read again in doubt.
    assert READS.labels("out_of_step")._value.get() == out_of_step


def bar(t: int, close: float) -> Bar:
    return Bar(t, close, close + 1, round(close - 0.5, 2), close, int(close * 10))
