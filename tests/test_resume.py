"""Resume across gateways: a client subscribed on one gateway, which is then killed,
subscribes on another with the seq and epoch it holds and gets one ``bars`` event from
that seq, no figure, and every update after it; the chain of seqs is unbroken. In both
gateway modes, for the default view and another."""

import queue
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import socketio
from page_model import PageChart

from support import Pipeline, record_reliability, running

pytestmark = pytest.mark.e2e

DEFAULT = {"symbol": "AAPL", "updates": "delta"}
CANDLES = {
    "symbol": "MSFT",
    "updates": "delta",
    "chart": "candles",
    "timeframe": "5m",
    "indicators": ["sma20"],
    "volume": True,
}


@pytest.fixture(params=["asyncio", "eventlet"])
def stack(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    mode = request.param
    gateways = [(name, "gateway", "--mode", mode) for name in ("gateway-a", "gateway-b")]
    with running("worker", "beat", "renderer", *gateways, symbols="AAPL,MSFT") as pipeline:
        yield pipeline


class Client:
    """A real Socket.IO client that records its events in order, acks included."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda event, data=None: self.events.put((event, data)))
        self.sio.connect(url, transports=["websocket"], wait_timeout=10)

    def subscribe(self, request: dict[str, Any]) -> None:
        self.sio.emit("subscribe", request, callback=lambda ack: self.events.put(("ack", ack)))

    def next(self, timeout: float = 15) -> tuple[str, Any]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.sio.shutdown()


def until_ack(client: Client) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    before = []
    while True:
        event, data = client.next()
        if event == "ack":
            return before, data
        before.append((event, data))


def take(charts: dict[str, PageChart], event: str, data: dict[str, Any]) -> bool:
    """What the page does with an update: whether it applied one."""
    if event == "figure":
        charts[data["symbol"]] = PageChart(data)
        return False
    assert event == "bars", event
    chart = charts[data["symbol"]]
    if data["seq"] <= chart.seq:
        return False  # held while its snapshot was read: the page drops it too
    chart.apply(data)  # fails on a gap
    return True


def follow(client: Client, charts: dict[str, PageChart], deltas: int) -> None:
    """Apply ``deltas`` more updates of every chart."""
    applied = dict.fromkeys(charts, 0)
    while min(applied.values()) < deltas:
        event, delta = client.next()
        applied[delta["symbol"]] += take(charts, event, delta)


def test_a_client_resumes_on_another_gateway_from_the_seq_it_held(stack: Pipeline) -> None:
    stack.wait_snapshots(["AAPL", "MSFT"])
    first = Client(stack.url("gateway-a"))
    charts: dict[str, PageChart] = {}
    epochs: dict[str, str] = {}
    try:
        for request in (DEFAULT, CANDLES):
            first.subscribe(request)
            sent, ack = until_ack(first)
            assert ack["ok"] is True and "resumed" not in ack  # it did not ask to
            for event, data in sent:
                take(charts, event, data)
            while request["symbol"] not in charts:  # a view not rendered yet: its first
                take(charts, *first.next())  # render reaches its room as a figure
            epochs[request["symbol"]] = charts[request["symbol"]].epoch
        follow(first, charts, 2)
    finally:
        first.close()
    stack.services["gateway-a"].kill()
    killed_at = time.monotonic()
    held = {symbol: chart.seq for symbol, chart in charts.items()}
    time.sleep(3)  # renders go on: the client misses a few

    second = Client(stack.url("gateway-b"))
    try:
        for request in (DEFAULT, CANDLES):
            symbol = request["symbol"]
            since = {"seq": held[symbol], "epoch": epochs[symbol]}
            second.subscribe({**request, "since": since})
            sent, ack = until_ack(second)
            assert ack == {"ok": True, "symbol": symbol, "resumed": True}
            assert [event for event, _ in sent] == ["bars"] * len(sent)  # no figure
            mine = [data for _, data in sent if data["symbol"] == symbol]
            if symbol == "AAPL":  # the default view is rendered whoever watches
                assert mine, "the renders missed"
            # Another view is rendered only while a gateway receives its rooms: none did
            # while the client was away, so it may hold the newest render already, and
            # the next one follows from it.
            if mine:
                assert mine[0]["base_seq"] == held[symbol] and mine[0]["seq"] > held[symbol]
                assert len(orjson.dumps(mine[0])) < 10_000
            for event, data in sent:
                take(charts, event, data)
        resumed_after = time.monotonic() - killed_at
        follow(second, charts, 3)  # and every update after it, unbroken
        record_reliability(
            "faults",
            {
                "fault": "a gateway killed (SIGKILL) under a delta client watching two views; "
                "it subscribes on another gateway 3 s later with the seq it held "
                f"({stack.services['gateway-b'].args[-1]})",
                "outcome": "resumed on the other gateway: one `bars` event from its seq "
                "(no figure), then every update, the chain of seqs unbroken",
                "recovery_s": round(resumed_after, 1),
                "lost": "nothing",
            },
        )

        # A seq of an epoch the store does not have: the snapshot, as without `since`.
        second.subscribe({**DEFAULT, "since": {"seq": 3, "epoch": "gone"}})
        sent, ack = until_ack(second)
        assert ack == {"ok": True, "symbol": "AAPL", "resumed": False}
        assert next(e for e, d in sent if d["symbol"] == "AAPL") == "figure"
    finally:
        second.close()


def test_a_bad_since_is_refused_and_the_connection_stays(stack: Pipeline) -> None:
    stack.wait_snapshots(["AAPL"])
    client = Client(stack.url("gateway-b"))
    try:
        client.subscribe({**DEFAULT, "since": {"seq": "7"}})
        _, ack = until_ack(client)
        assert ack["ok"] is False and '"since"' in ack["error"]
        client.subscribe(DEFAULT)
        sent, ack = until_ack(client)
        assert ack["ok"] is True and sent[0][0] == "figure"
    finally:
        client.close()
