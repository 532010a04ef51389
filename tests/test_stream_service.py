"""``rtplot stream`` as a process, on a real Redis, against the stand-in streamer
(tests/streamer.py): trades into stored bars, the symbols followed, reconnects, bad
frames, one active process and a standby."""

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import time as clock

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.bars import MINUTE, Bar
from common.contract.fields import MetaField
from common.contract.keys import Keys
from common.contract.store import read_bars
from common.markets import CRYPTO, Market
from streamer import StandInStreamer, pricing_frame
from support import ROOT, Pipeline, wait_until

pytestmark = pytest.mark.e2e
KEYS = Keys()


@pytest.fixture
def streamer() -> Iterator[StandInStreamer]:
    with StandInStreamer() as standin:
        yield standin


@pytest.fixture
def stack(streamer: StandInStreamer) -> Iterator[Pipeline]:
    with Pipeline(
        source="yfinance", stream="yahoo", stream_url=streamer.url, symbols="AAPL,MSFT"
    ) as pipeline:
        yield pipeline


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def bars(stack: Pipeline, symbol: str) -> dict[int, Bar]:
    return {b.t: b for b in read_bars(stack.client, KEYS, symbol)}


def last_minute() -> int:
    """The minute before this one: trades fold into it as into any minute, and a test
    need not wait for a minute with time left in it."""
    return int(time.time() // MINUTE) * MINUTE - MINUTE


def test_trades_become_their_minutes_bar(stack: Pipeline, streamer: StandInStreamer) -> None:
    stack.start("stream")
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="subscribed")
    t = last_minute()
    trades = [(1, 100.0, 1_000), (2, 101.25, 1_100), (3, 99.5, 1_250), (4, 100.5, 1_300)]
    streamer.send(pricing_frame("AAPL", p, (t + s) * 1000, v) for s, p, v in trades)
    expected = Bar(t, 100.0, 101.25, 99.5, 100.5, 300)
    wait_until(lambda: bars(stack, "AAPL").get(t) == expected, message=f"{expected}")
    assert stack.client.zscore(KEYS.streaming, "AAPL") is not None
    age = ("rtplot_stream_last_tick_age_seconds", (("symbol", "AAPL"),))
    seen = wait_until(lambda: (m := metrics(stack.url("stream"))).get(age) is not None and m)
    assert seen[age] < 10  # read every 2 s: its next look after the trades
    assert seen[("rtplot_stream_ticks_total", ())] == 4
    assert seen[("rtplot_stream_connected", ())] == 1
    assert seen[("rtplot_stream_subscribed_symbols", ())] == 2


def test_the_symbols_clients_watch_are_followed(stack: Pipeline, streamer: StandInStreamer) -> None:
    stack.start("stream")
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="subscribed")
    stack.client.zadd(KEYS.watched, {"TSLA": time.time()})
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT", "TSLA"}, message="TSLA")
    stack.client.zadd(KEYS.watched, {"TSLA": time.time() - 3600})  # no longer watched
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="TSLA dropped")
    assert {"unsubscribe": ["TSLA"]} in streamer.received


def test_a_dropped_or_vanished_streamer_is_streamed_again_within_two_seconds(
    stack: Pipeline, streamer: StandInStreamer
) -> None:
    stack.start("stream")
    wait_until(lambda: streamer.clients == 1, message="connected")
    streamer.drop()  # no close frame: a dead socket
    wait_until(lambda: streamer.connects == 2 and streamer.clients == 1, timeout=3)
    streamer.down()
    time.sleep(8)  # it tries, and is refused, for a while: at most a second apart
    health = json.loads(urllib.request.urlopen(stack.url("stream") + "/healthz").read())
    assert health["ok"] and health["connected"] is False and health["disconnected_for"] > 5
    streamer.up()
    answered = time.monotonic()
    wait_until(lambda: streamer.clients == 1, timeout=5, interval=0.02)
    assert time.monotonic() - answered < 2
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, timeout=2)
    t = last_minute()
    streamer.send([pricing_frame("MSFT", 420.5, (t + 1) * 1000, 10)])
    wait_until(lambda: t in bars(stack, "MSFT"), message="MSFT after the reconnect")
    assert metrics(stack.url("stream"))[("rtplot_stream_reconnects_total", ())] >= 2


def test_bad_frames_are_counted_logged_once_and_never_stored(
    stack: Pipeline, streamer: StandInStreamer
) -> None:
    service = stack.start("stream")
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="subscribed")
    now_ms = int(time.time() * 1000)
    bad = [
        "not json",
        '{"type": "pricing", "message": "%%%"}',
        '{"type": "pricing", "message": "/////w=="}',
        pricing_frame("ZZZZ", 10.0, now_ms),
        pricing_frame("MSFT", 0.0, now_ms),
        pricing_frame("MSFT", float("nan"), now_ms),
        pricing_frame("MSFT", 10.0, now_ms + 3_600_000),
        pricing_frame("MSFT", 10.0, now_ms - 86_400_000),
    ]
    streamer.send(bad * 2)
    kinds = ("json", "base64", "protobuf", "symbol", "price", "future", "past")
    expected = {"json": 2, "base64": 2, "protobuf": 2, "symbol": 2, "price": 4, "future": 2,
                "past": 2}  # fmt: skip

    def counted() -> dict[str, float]:
        seen = metrics(stack.url("stream"))
        return {k: seen.get(("rtplot_stream_bad_frames_total", (("kind", k),)), 0) for k in kinds}

    wait_until(lambda: counted() == expected, message=f"{expected}")
    service.check_alive()
    assert bars(stack, "MSFT") == {} and bars(stack, "ZZZZ") == {}
    logged = [line for line in service.log().splitlines() if "bad frame" in line]
    assert len(logged) == len(kinds), logged
    t = last_minute()
    streamer.send([pricing_frame("MSFT", 420.5, (t + 1) * 1000, 10)])
    wait_until(lambda: t in bars(stack, "MSFT"), message="a good trade after the bad ones")


def test_a_second_process_stands_by_and_takes_over(
    stack: Pipeline, streamer: StandInStreamer
) -> None:
    first = stack.start("stream")
    wait_until(lambda: streamer.clients == 1, message="the first connected")
    stack.start("stream-2", "stream")
    standby = stack.services["stream-2"]
    time.sleep(3)  # two looks at the lock
    assert streamer.clients == 1
    health = urllib.request.urlopen(standby.url + "/healthz", timeout=5).read()
    assert b'"role":"standby"' in health
    first.kill()  # no release: the lock expires
    wait_until(lambda: streamer.clients == 1 and streamer.connects == 2, timeout=15)
    assert b'"role":"active"' in urllib.request.urlopen(standby.url + "/healthz").read()


def test_the_dashboard_uses_metrics_the_stream_exports(stack: Pipeline) -> None:
    stack.start("stream")
    text = urllib.request.urlopen(stack.url("stream") + "/metrics", timeout=5).read().decode()
    exported = {family.name for family in text_string_to_metric_families(text)}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/rtplot.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = {
        re.sub(r"_(total|bucket|count|sum)$", "", name)
        for expr in exprs
        for name in re.findall(r"\brtplot_stream_\w+", expr)
    }
    assert len(used) >= 5 and used <= exported, used - exported


def test_trades_outside_the_symbols_session_are_not_folded(
    stack: Pipeline, streamer: StandInStreamer
) -> None:
    # The poll stored where each trades: MSFT in a session closed at every hour (as pre-
    # and post-market trades find New York's), AAPL around the clock.
    never_open = Market("UTC", "UTC", opens=clock(0, 0), closes=clock(0, 0), weekdays=False)
    stack.client.hset(KEYS.meta("MSFT"), MetaField.MARKET, never_open.encode())
    stack.client.hset(KEYS.meta("AAPL"), MetaField.MARKET, CRYPTO.encode())
    stack.start("stream")
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="subscribed")
    time.sleep(2.5)  # a look at the markets
    t = last_minute()
    streamer.send([pricing_frame(s, 50.0, (t + 1) * 1000, 5) for s in ("MSFT", "AAPL")])
    wait_until(lambda: t in bars(stack, "AAPL"), message="AAPL folded")
    assert bars(stack, "MSFT") == {}
    assert metrics(stack.url("stream"))[("rtplot_stream_outside_session_total", ())] == 1


def test_a_stopped_service_writes_what_it_held_first(
    stack: Pipeline, streamer: StandInStreamer
) -> None:
    service = stack.start("stream", stream_write_every=30)  # writes far apart
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="subscribed")
    t = last_minute()
    streamer.send([pricing_frame("AAPL", 10.0, (t + 1) * 1000, 1)])
    wait_until(lambda: t in bars(stack, "AAPL"), message="the first trade written")
    streamer.send([pricing_frame("AAPL", 11.0, (t + 2) * 1000, 3)])  # held for 30 s
    time.sleep(0.5)
    assert bars(stack, "AAPL")[t].c == 10.0
    assert service.stop() == 0
    assert bars(stack, "AAPL")[t] == Bar(t, 10.0, 11.0, 10.0, 11.0, 2)
