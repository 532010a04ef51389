"""End to end: the real services as processes, a real redis-server, real clients."""

import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import socketio

from common.contract.keys import Keys
from support import Listener, Pipeline, running, wait_until

pytestmark = pytest.mark.e2e

SYMBOLS = "AAPL,MSFT"
GATEWAYS = {"asyncio": "asyncio", "asyncio-2": "asyncio", "eventlet": "eventlet"}  # label: mode


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    gateways = [(f"gateway-{label}", "gateway", "--mode", mode) for label, mode in GATEWAYS.items()]
    with running("worker", "beat", "renderer", *gateways, symbols=SYMBOLS) as stack:
        # python-socketio's public path only (as with library versions rtplot was not
        # tested with): slower, and the same protocol.
        stack.launch("gateway-public", "gateway", fast_path="false")
        stack.wait_healthy()
        wait_until(
            lambda: stack.snapshot_seq("AAPL"), timeout=30, message="the first AAPL snapshot"
        )
        yield stack


@pytest.fixture(params=["asyncio", "eventlet", "public"])
def gateway(request: pytest.FixtureRequest, pipeline: Pipeline) -> str:
    return pipeline.url(f"gateway-{request.param}")


@pytest.fixture
def listener(gateway: str) -> Iterator[Listener]:
    client = Listener(gateway)
    yield client
    client.close()


def test_subscribe_sends_the_snapshot_at_once_then_live_updates(
    pipeline: Pipeline, listener: Listener
) -> None:
    stored = pipeline.snapshot_seq("AAPL")
    ack = listener.call("subscribe", {"symbol": "aapl"})
    assert ack == {"ok": True, "symbol": "AAPL"}
    # The snapshot is emitted before the ack, so it is already here.
    first, _ = listener.next("figure", timeout=0.5)
    assert first["symbol"] == "AAPL" and first["seq"] >= stored
    assert first["figure"]["data"][0]["type"] == "scatter"
    assert len(first["figure"]["data"][0]["x"]) == 390
    seqs = [first["seq"]]
    for _ in range(3):
        update, _ = listener.next("figure", timeout=5)
        seqs.append(update["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


def test_updates_arrive_about_once_a_second_per_symbol(
    pipeline: Pipeline, listener: Listener
) -> None:
    listener.call("subscribe", {"symbol": "MSFT"})
    listener.next("figure")  # the snapshot
    times = [listener.next("figure", timeout=5)[1] for _ in range(4)]
    gaps = [b - a for a, b in pairwise(times)]
    assert all(0.3 < gap < 2.5 for gap in gaps), gaps


def test_two_gateways_deliver_the_same_updates(pipeline: Pipeline) -> None:
    one = Listener(pipeline.url("gateway-asyncio"))
    two = Listener(pipeline.url("gateway-asyncio-2"))
    try:
        for client in (one, two):
            assert client.call("subscribe", {"symbol": "AAPL"})["ok"]
        target = pipeline.rendered_seq("AAPL") + 2
        for client in (one, two):
            update, _ = client.next("figure", where=lambda d: d["seq"] == target)
            assert update["symbol"] == "AAPL"
        seen_one = {d["seq"] for e, d, _ in one.received if e == "figure"}
        seen_two = {d["seq"] for e, d, _ in two.received if e == "figure"}
        assert {target - 1, target} <= seen_one & seen_two
    finally:
        one.close()
        two.close()


def test_an_unconfigured_symbol_is_tracked_once_subscribed(
    pipeline: Pipeline, gateway: str, listener: Listener
) -> None:
    names = {"asyncio": "NVDA", "eventlet": "^GSPC", "public": "AMZN"}
    symbol = next(s for g, s in names.items() if pipeline.url(f"gateway-{g}") == gateway)
    assert not pipeline.client.sismember(Keys().tracked, symbol)
    assert listener.call("subscribe", {"symbol": symbol.lower()}) == {"ok": True, "symbol": symbol}
    update, _ = listener.next("figure", timeout=10, where=lambda d: d["symbol"] == symbol)
    assert len(update["figure"]["data"][0]["y"]) == 390  # backfilled window
    assert pipeline.client.sismember(Keys().tracked, symbol)
    later, _ = listener.next("figure", timeout=5, where=lambda d: d["symbol"] == symbol)
    assert later["seq"] > update["seq"]


BAD_PAYLOADS = [
    {"symbol": "not a symbol"},
    {"symbol": "A" * 10_000},  # larger frames close the connection: test_gateway_limits
    {"symbol": 42},
    {"symbol": None},
    {"symbol": ["AAPL"]},
    {"ticker": "AAPL"},
    "",
    17,
    None,
    ["AAPL"],
    {"symbol": "AAPL;FLUSHALL"},
]


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=lambda p: repr(p)[:20])
def test_invalid_requests_are_refused_and_the_connection_stays_usable(
    listener: Listener, payload: object
) -> None:
    ack = listener.call("subscribe", payload)
    assert ack["ok"] is False and ack["error"]
    assert listener.call("unsubscribe", payload)["ok"] is False
    assert listener.call("subscribe", {"symbol": "AAPL"}) == {"ok": True, "symbol": "AAPL"}


def test_unsubscribe_stops_updates(pipeline: Pipeline, listener: Listener) -> None:
    listener.call("subscribe", {"symbol": "AAPL"})
    listener.next("figure")
    assert listener.call("unsubscribe", {"symbol": "AAPL"}) == {"ok": True, "symbol": "AAPL"}
    seq = pipeline.rendered_seq("AAPL")
    wait_until(lambda: pipeline.rendered_seq("AAPL") >= seq + 2, timeout=10)
    late = [d["seq"] for e, d, _ in listener.received if e == "figure" and d["seq"] > seq]
    assert late == []


def test_the_articles_ping_graph_client_works(pipeline: Pipeline, listener: Listener) -> None:
    # The article's React client: emit ping_graph on connect, JSON.parse each graph_plot.
    listener.client.emit("ping_graph", {"symbol": "ril.ns"})
    payloads = [listener.next("graph_plot", timeout=10)[0] for _ in range(3)]
    for payload in payloads:
        assert isinstance(payload, str)
        figure = json.loads(payload)
        assert figure["data"][0]["fill"] == "tozeroy"
        assert figure["layout"]["title"]["text"] == "RIL.NS"
    assert not [e for e, _, _ in listener.received if e == "figure"]


def test_healthz_reports_redis_and_the_listener(gateway: str) -> None:
    import urllib.request

    with urllib.request.urlopen(gateway + "/healthz", timeout=5) as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["redis"] and health["listener"]


def test_each_gateway_says_what_it_runs_on(pipeline: Pipeline) -> None:
    import urllib.request

    logs = {name: pipeline.services[f"gateway-{name}"].log() for name in ("asyncio", "public")}
    assert "loop=uvloop http=httptools" in logs["asyncio"]
    assert "fast_path=True" in logs["asyncio"] and "fast_path=False" in logs["public"]
    assert "RTPLOT_FAST_PATH=false: the gateway uses only public library APIs" in logs["public"]
    with urllib.request.urlopen(pipeline.url("gateway-public") + "/healthz", timeout=5) as reply:
        assert json.loads(reply.read())["fast_path"] is False


def test_the_official_javascript_client_receives_updates(pipeline: Pipeline) -> None:
    import subprocess

    from support import ROOT

    result = subprocess.run(
        [
            "node",
            str(ROOT / "tests" / "js" / "subscribe.mjs"),
            pipeline.url("gateway-asyncio"),
            "tsla",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    updates = [line for line in lines if "seq" in line]
    assert {"ack": {"ok": True, "symbol": "TSLA"}} in lines
    assert len(updates) == 3 and all(u["symbol"] == "TSLA" for u in updates)
    seqs = [u["seq"] for u in updates]
    assert seqs == sorted(set(seqs))


State = tuple[list[int], list[float], int]  # a chart's x, y and seq


def figure_state(update: dict[str, Any]) -> State:
    trace = update["figure"]["data"][0]
    return list(trace["x"]), list(trace["y"]), update["seq"]


def apply(state: State, delta: dict[str, Any]) -> State:
    """What the page does with a delta: keep its points from ``start`` up to the first
    delta bar, then append the delta's bars."""
    x, y, seq = state
    assert delta["base_seq"] == seq, "a gap: the page would ask for a snapshot"
    first = delta["bars"][0][0] * 1000
    kept = [i for i, t in enumerate(x) if delta["start"] * 1000 <= t < first]
    x = [x[i] for i in kept] + [b[0] * 1000 for b in delta["bars"]]
    y = [y[i] for i in kept] + [b[4] for b in delta["bars"]]
    return x, y, delta["seq"]


def test_delta_subscribers_get_small_updates_that_rebuild_the_figure(
    pipeline: Pipeline, listener: Listener
) -> None:
    assert listener.call("subscribe", {"symbol": "MSFT", "updates": "delta"})["ok"]
    snapshot, _ = listener.next("figure", timeout=1)
    state = figure_state(snapshot)

    def apply_next() -> State:
        delta, _ = listener.next("bars", timeout=5, where=lambda d: d["seq"] > state[2])
        assert 1 <= len(delta["bars"]) <= 2
        return apply(state, delta)

    for _ in range(4):
        state = apply_next()
    assert len([e for e, _, _ in listener.received if e == "figure"]) == 1  # only the snapshot
    assert listener.call("snapshot", {"symbol": "MSFT"}) == {"ok": True, "symbol": "MSFT"}
    fresh, _ = listener.next("figure", timeout=1)
    rebuilt = figure_state(fresh)
    if fresh["seq"] < state[2]:  # the stored figure trails: a delta catches it up at once
        catchup, _ = listener.next("bars", timeout=1, where=lambda d: d["base_seq"] == fresh["seq"])
        rebuilt = apply(rebuilt, catchup)
    while state[2] < rebuilt[2]:  # ticks that landed meanwhile
        state = apply_next()
    assert state == rebuilt


def test_emits_through_python_socketios_own_queue_reach_the_rooms_on_every_gateway(
    pipeline: Pipeline,
) -> None:
    """A user's own process emitting as python-socketio documents it still reaches the
    clients in that room, on every gateway, beside rtplot's room channels."""
    clients = [Listener(pipeline.url(f"gateway-{mode}")) for mode in ("asyncio", "eventlet")]
    emitter = socketio.RedisManager(
        pipeline.redis.url, channel=Keys().socketio_channel, write_only=True
    )
    try:
        for client in clients:
            assert client.call("subscribe", {"symbol": "MSFT"})["ok"]
        emitter.emit("note", {"text": "hello"}, room="figure:MSFT", namespace="/")
        for client in clients:
            note, _ = client.next("note", timeout=5)
            assert note == {"text": "hello"}
    finally:
        for client in clients:
            client.close()


def test_bad_update_modes_and_snapshots_are_refused(listener: Listener) -> None:
    ack = listener.call("subscribe", {"symbol": "AAPL", "updates": "everything"})
    assert ack == {"ok": False, "error": '"updates" must be "figure" or "delta"'}
    assert listener.call("snapshot", {"symbol": "ZZZZ"}) == {
        "ok": False,
        "error": "no snapshot of ZZZZ yet",
    }
    assert listener.call("snapshot", None)["ok"] is False
