"""Views within bounds: each view is rendered on every change of its symbol, so a new
view is refused over RTPLOT_MAX_VIEWS_PER_SYMBOL views of its symbol or RTPLOT_MAX_VIEWS
in all, with a reason in the ack; a view already watched is always stamped again, and
the connection keeps its other subscriptions."""

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import socketio

from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.watching import ViewStamp, WatchView
from support import Pipeline, running

KEYS = Keys()
NOW = 1_800_000_000.0


def stamp(client: "redis.Redis", symbol: str, view: str, now: float = NOW) -> ViewStamp:
    call = WatchView(symbol, view, now, False, now - 600, per_symbol=2, in_all=3)
    return Scripts(client, KEYS).run(call)


def test_a_new_view_over_a_cap_is_refused_and_a_watched_one_never(
    client: "redis.Redis",
) -> None:
    client.flushdb()
    assert stamp(client, "AAPL", "candles.5m") is ViewStamp.WATCHED
    assert stamp(client, "AAPL", "ohlc.1m") is ViewStamp.WATCHED
    assert stamp(client, "AAPL", "candles.1h") is ViewStamp.OVER_SYMBOL_CAP
    assert stamp(client, "AAPL", "candles.5m", NOW + 1) is ViewStamp.WATCHED  # re-stamped
    assert stamp(client, "MSFT", "candles.5m") is ViewStamp.WATCHED  # 3 in all
    assert stamp(client, "MSFT", "ohlc.1m") is ViewStamp.OVER_TOTAL_CAP
    assert client.zscore(KEYS.views("AAPL"), "candles.1h") is None  # refused: not listed
    # Ten minutes on, only what was stamped since counts: the old views' slots are free.
    later = NOW + 601
    assert stamp(client, "MSFT", "ohlc.1m", later) is ViewStamp.WATCHED
    assert stamp(client, "AAPL", "candles.1h", later) is ViewStamp.WATCHED


@pytest.fixture
def stack() -> Iterator[Pipeline]:
    with running(
        "worker", "beat", "renderer", "gateway", symbols="AAPL,MSFT", max_views_per_symbol=2
    ) as pipeline:
        yield pipeline


def view(chart: str, timeframe: str, symbol: str = "AAPL") -> dict[str, Any]:
    return {"symbol": symbol, "updates": "delta", "chart": chart, "timeframe": timeframe}


@pytest.mark.e2e
def test_a_view_over_the_cap_is_refused_and_the_connection_keeps_the_rest(
    stack: Pipeline,
) -> None:
    stack.wait_snapshots(["AAPL", "MSFT"])
    first, second = socketio.Client(), socketio.Client()
    try:
        for sio in (first, second):
            sio.connect(stack.url("gateway"), transports=["websocket"], wait_timeout=10)
        assert first.call("subscribe", view("candles", "5m"), timeout=10)["ok"] is True
        assert second.call("subscribe", view("ohlc", "1m"), timeout=10)["ok"] is True
        deltas: list[dict[str, Any]] = []
        second.on("bars", deltas.append)
        assert second.call("subscribe", view("candles", "1h", "MSFT"), timeout=10)["ok"] is True
        refused = second.call("subscribe", view("candles", "15m"), timeout=10)
        assert refused["ok"] is False
        assert "RTPLOT_MAX_VIEWS_PER_SYMBOL=2" in refused["error"]
        # A view already watched is shared, not refused; the refusal left the rest alone.
        assert second.call("subscribe", view("candles", "5m"), timeout=10)["ok"] is True
        deltas.clear()
        second.sleep(3)
        assert {d["view"] for d in deltas} == {"candles.5m.vol", "candles.1h.vol"}
    finally:
        first.shutdown()
        second.shutdown()
