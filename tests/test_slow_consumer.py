"""A client that stops reading is dropped at a bounded queue; the gateway's memory stays
bounded and everyone else keeps their updates. Both gateway modes, real processes."""

import socket
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import websocket

from support import CLIENT_SOCKET_LEAK, Listener, Pipeline, record_reliability, running, wait_until

pytestmark = [
    pytest.mark.e2e,
    CLIENT_SOCKET_LEAK,
]

SYMBOLS = ["AAPL", "MSFT", "TSLA", "BRK-B"]
MAX_QUEUED = 20


@pytest.fixture(scope="module")
def stack() -> Iterator[Pipeline]:
    gateways = [(f"gateway-{mode}", "gateway", "--mode", mode) for mode in ("asyncio", "eventlet")]
    # A full week per symbol: about 200 kB per update, so a stalled reader backs up fast.
    with running(
        "worker",
        "beat",
        "renderer",
        *gateways,
        symbols=",".join(SYMBOLS),
        window_minutes=10080,
        view_bars=10080,  # the whole week in every figure
        max_queued=MAX_QUEUED,
    ) as pipeline:
        yield pipeline


def dropped(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("rtplot_gateway_refused_total{") and 'reason="slow_consumer"' in line
    )


def stalled_client(url: str) -> websocket.WebSocket:
    """Subscribes to every symbol, then never reads again (a tiny receive buffer)."""
    ws = websocket.create_connection(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
        timeout=10,
    )
    assert ws.recv().startswith("0{")
    ws.send("40")
    assert ws.recv().startswith("40")
    for i, symbol in enumerate(SYMBOLS):
        ws.send(f'42{i}["subscribe",{{"symbol":"{symbol}"}}]')
    return ws


@pytest.mark.parametrize("mode", ["asyncio", "eventlet"])
def test_a_client_that_stops_reading_is_dropped_and_memory_stays_bounded(
    stack: Pipeline, mode: str, listen: Callable[[str], Listener]
) -> None:
    gateway = stack.services[f"gateway-{mode}"]
    url = gateway.url
    healthy = listen(url)
    assert healthy.call("subscribe", {"symbol": "AAPL"})["ok"]
    healthy.next("figure")
    before_rss = gateway.rss_kb() / 1024
    before = dropped(url)
    stalled = stalled_client(url)
    started = time.monotonic()
    try:
        wait_until(
            lambda: dropped(url) > before,
            timeout=120,
            interval=0.5,
            message="the stalled client to be dropped",
        )
        took = time.monotonic() - started
        peak_rss = gateway.rss_kb() / 1024
        seen = len(healthy.received)
        wait_until(
            lambda: len(healthy.received) >= seen + 3,
            timeout=15,
            message="the healthy client's updates to go on",
        )
    finally:
        stalled.close()
    growth = peak_rss - before_rss
    assert growth < 150, f"the gateway grew by {growth:.0f} MB for one stalled client"
    record_reliability(
        "faults",
        {
            "fault": f"a client that stops reading, subscribed to 4 week-long charts ({mode})",
            "outcome": f"dropped after {took:.0f} s, once {MAX_QUEUED} updates queued "
            f"(RTPLOT_MAX_QUEUED); gateway RSS grew {growth:.0f} MB up to the drop; "
            "other clients kept their updates",
            "recovery_s": 0,
            "lost": "nothing for other clients",
        },
    )
