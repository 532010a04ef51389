"""A crowd arriving at once: every subscribe of a burst is served, in both modes.

After a gateway restart or a network blip, every browser reconnects and subscribes
within the same moment. Each subscribe needs Redis (the watch script and the snapshot),
so a burst asks for more Redis connections at once than a pool holds; the gateway must
queue those requests, not refuse them as "unavailable".
"""

import asyncio
from collections.abc import Iterator

import orjson
import pytest
import websockets

from support import RedisServer, Service, free_port, service_env, wait_http_ok

pytestmark = pytest.mark.e2e

CROWD = 400  # well over redis-py's default pool of 100 connections


@pytest.fixture(params=["asyncio", "eventlet"])
def gateway_port(request: pytest.FixtureRequest) -> Iterator[int]:
    redis_server = RedisServer().start()
    port = free_port()
    env = service_env(redis_server.url, port=str(port), symbols="AAPL", rate_limit="1000")
    gateway = Service(f"gateway-{request.param}", ["gateway", "--mode", request.param], env)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz")
        yield port
    finally:
        gateway.stop()
        redis_server.cleanup()


async def subscribe_ack(
    port: int, symbol: str, connected: list[int], start: asyncio.Event
) -> dict[str, object]:
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, open_timeout=60, ping_interval=None) as ws:
        await ws.recv()  # Engine.IO open
        await ws.send("40")
        await ws.recv()  # Socket.IO connected
        connected.append(1)
        await start.wait()  # every client subscribes in the same instant
        await ws.send("421" + orjson.dumps(["subscribe", {"symbol": symbol}]).decode())
        while True:
            frame = await asyncio.wait_for(ws.recv(), timeout=60)
            if isinstance(frame, str) and frame.startswith("431"):
                ack: dict[str, object] = orjson.loads(frame[3:])[0]
                return ack


async def burst(port: int) -> list[dict[str, object]]:
    start = asyncio.Event()
    connected: list[int] = []
    symbols = [f"S{i:03d}" for i in range(40)]  # each new symbol also runs the watch script
    tasks = [
        asyncio.create_task(subscribe_ack(port, symbols[i % len(symbols)], connected, start))
        for i in range(CROWD)
    ]
    while len(connected) < CROWD and not any(t.done() for t in tasks):
        await asyncio.sleep(0.1)
    start.set()
    return await asyncio.gather(*tasks)


def test_every_subscribe_of_a_burst_is_served(gateway_port: int) -> None:
    acks = asyncio.run(burst(gateway_port))
    refused = [a for a in acks if a.get("ok") is not True]
    assert not refused, f"{len(refused)} of {CROWD} refused, e.g. {refused[:3]}"
