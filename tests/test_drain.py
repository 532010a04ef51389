"""A gateway told to stop (SIGTERM: compose, a rolling deploy, the pod's preStop) closes
its clients over RTPLOT_DRAIN_SECONDS, not all at once, so that they come back to the
other gateways spread out; meanwhile it takes no new connection and /healthz says 503.
Then it stops as before."""

import asyncio
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import orjson
import pytest
import socketio
import websockets

from support import Pipeline, record_reliability, running

pytestmark = pytest.mark.e2e

CLIENTS = 60
DRAIN = 2.0


@pytest.fixture
def stack() -> Iterator[Pipeline]:
    with running(("gateway", "gateway", "--mode", "asyncio"), drain_seconds=DRAIN) as pipeline:
        yield pipeline


async def client(url: str, connected: list[int], closed: list[float]) -> None:
    async with websockets.connect(url, open_timeout=30, ping_interval=None) as ws:
        await ws.recv()  # Engine.IO open
        await ws.send("40")
        await ws.recv()
        connected.append(1)
        try:
            while True:
                frame = await ws.recv()
                if frame == "2":
                    await ws.send("3")
                elif frame == "41":  # Socket.IO disconnect: the server closed the session
                    break
        except websockets.ConnectionClosed:
            pass
        closed.append(time.monotonic())


def healthz(stack: Pipeline) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(stack.url("gateway") + "/healthz", timeout=2) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def test_sigterm_closes_the_clients_over_the_drain_then_stops(stack: Pipeline) -> None:
    gateway = stack.services["gateway"]
    url = stack.url("gateway").replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    connected: list[int] = []
    closed: list[float] = []
    page = socketio.Client(reconnection=True, reconnection_delay=30)  # as a page is
    reasons: list[str] = []
    page.on("disconnect", reasons.append)
    page.connect(stack.url("gateway"), transports=["websocket"], wait_timeout=10)

    async def scenario() -> tuple[float, tuple[int, dict[str, object]]]:
        tasks = [asyncio.create_task(client(url, connected, closed)) for _ in range(CLIENTS)]
        while len(connected) < CLIENTS:
            await asyncio.sleep(0.05)
        term = time.monotonic()
        gateway.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        during = await asyncio.to_thread(healthz, stack)
        await asyncio.gather(*tasks)
        return term, during

    try:
        term, during = asyncio.run(scenario())
        # It was dropped as a lost connection is, so it reconnects (to another gateway,
        # through the balancer): told "disconnect", a Socket.IO client would not.
        assert reasons == [socketio.Client.reason.TRANSPORT_ERROR]
    finally:
        page.shutdown()
    assert during[0] == 503 and during[1]["status"] == "draining"
    assert len(closed) == CLIENTS
    spread = max(closed) - min(closed)
    assert DRAIN * 0.6 <= spread <= DRAIN + 1.5, spread  # over the drain, not at once
    assert max(closed) - term <= DRAIN + 1.5
    assert gateway.process.wait(timeout=15) is not None  # and then it stops
    gateway.stopped = True
    record_reliability(
        "faults",
        {
            "fault": f"SIGTERM to a gateway (asyncio) holding {CLIENTS} clients, "
            f"RTPLOT_DRAIN_SECONDS={DRAIN:g}",
            "outcome": f"it closed them over {spread:.1f} s, refusing new connections "
            "(/healthz 503 draining), each as a lost connection so that clients reconnect "
            "elsewhere; then it stopped",
            "recovery_s": round(max(closed) - term, 1),
            "lost": "nothing: the clients resume on another gateway",
        },
    )
