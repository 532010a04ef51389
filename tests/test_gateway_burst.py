"""A crowd arriving at once, in both modes: every subscribe of a burst is served, and
every subscriber gets its snapshot before any update.

After a gateway restart or a network blip, every browser reconnects and subscribes
within the same moment. Each subscribe needs Redis (the watch script and the snapshot),
so a burst asks for more Redis connections at once than a pool holds; the gateway must
queue those requests, not refuse them as "unavailable". Meanwhile updates keep coming,
and a client that got a delta before its snapshot would have to ask for another one.
"""

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import redis
import websockets

from common.contract.keys import Keys
from common.contract.packets import event_packet
from common.contract.rooms import Mode, Room
from common.messages import BARS
from support import running

pytestmark = pytest.mark.e2e

CROWD = 400  # well over redis-py's default pool of 100 connections


@dataclass
class Gateway:
    port: int
    redis_url: str


@pytest.fixture(params=["asyncio", "eventlet"])
def gateway(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    # AAA..DDD are configured: no watch script runs between the hold and the snapshot read.
    # One test process reads for all 400 clients while the writer below sends 200 deltas
    # a second per symbol, so its clients fall behind by more than the default queue of
    # 100; dropping slow readers is test_gateway_limits' concern, order is this one's.
    service = (f"gateway-{request.param}", "gateway", "--mode", request.param)
    settings = {"symbols": "AAPL,AAA,BBB,CCC,DDD", "rate_limit": 1000, "max_queued": 100_000}
    with running(service, **settings) as stack:
        yield Gateway(stack.services[service[0]].port, stack.redis.url)


@dataclass
class Subscribed:
    ack: dict[str, object]
    events: list[str]  # the events received up to the ack (and the first figure and update)
    payloads: list[Any]  # ... and their payloads


async def subscribe(
    port: int,
    request: dict[str, str],
    connected: list[int],
    start: asyncio.Event,
    snapshot: bool,
) -> Subscribed:
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, open_timeout=60, ping_interval=None) as ws:
        await ws.recv()  # Engine.IO open
        await ws.send("40")
        await ws.recv()  # Socket.IO connected
        connected.append(1)
        await start.wait()  # every client subscribes in the same instant
        await ws.send("421" + orjson.dumps(["subscribe", request]).decode())
        events: list[str] = []
        payloads: list[Any] = []
        ack: dict[str, object] | None = None
        while ack is None or (snapshot and ack.get("ok") and not _caught_up(events, payloads)):
            frame = await asyncio.wait_for(ws.recv(), timeout=60)
            if isinstance(frame, str) and frame.startswith("431"):
                ack = orjson.loads(frame[3:])[0]
            elif isinstance(frame, str) and frame.startswith("42"):
                event, payload = orjson.loads(frame[2:])
                events.append(event)
                payloads.append(payload)
        return Subscribed(ack, events, payloads)


def _caught_up(events: list[str], payloads: list[Any]) -> bool:
    """A figure, then an update newer than it."""
    if not events or events[0] != "figure":
        return bool(events)  # an update first: the test reports it
    return any(p["seq"] > payloads[0]["seq"] for p in payloads[1:])


async def burst(
    port: int, requests: list[dict[str, str]], snapshot: bool = False
) -> list[Subscribed]:
    """Every client subscribes at the same instant; with ``snapshot``, each waits for
    its snapshot and an update too."""
    start = asyncio.Event()
    connected: list[int] = []
    tasks = [
        asyncio.create_task(
            subscribe(port, requests[i % len(requests)], connected, start, snapshot)
        )
        for i in range(CROWD)
    ]
    while len(connected) < CROWD and not any(t.done() for t in tasks):
        await asyncio.sleep(0.1)
    start.set()
    return await asyncio.gather(*tasks)


def test_every_subscribe_of_a_burst_is_served(gateway: Gateway) -> None:
    # 40 symbols without snapshots: each subscribe also runs the watch script.
    requests = [{"symbol": f"S{i:03d}"} for i in range(40)]
    acks = [s.ack for s in asyncio.run(burst(gateway.port, requests))]
    refused = [a for a in acks if a.get("ok") is not True]
    assert not refused, f"{len(refused)} of {CROWD} refused, e.g. {refused[:3]}"


def test_a_burst_of_subscribers_gets_the_snapshot_then_every_update_after_it(
    gateway: Gateway,
) -> None:
    """While a renderer-like writer stores a snapshot and publishes its delta every 5 ms,
    each of a crowd subscribing at once gets a snapshot first, and then the very next
    delta after it: none is lost between reading the snapshot and joining the room."""
    symbols = ["AAA", "BBB", "CCC", "DDD"]
    stop = threading.Event()
    updates = threading.Thread(target=publish_deltas, args=(gateway.redis_url, symbols, stop))
    updates.start()
    try:
        requests = [{"symbol": symbol, "updates": "delta"} for symbol in symbols]
        subscribed = asyncio.run(burst(gateway.port, requests, snapshot=True))
    finally:
        stop.set()
        updates.join()
    assert all(s.ack.get("ok") is True for s in subscribed)
    early = [s.events for s in subscribed if s.events[0] != "figure"]
    assert not early, f"{len(early)} of {CROWD} got an update before the snapshot: {early[0]}"
    gaps = []
    for s in subscribed:
        seq = s.payloads[0]["seq"]
        first_newer = next(p for p in s.payloads[1:] if p["seq"] > seq)
        if first_newer["base_seq"] != seq:
            gaps.append((seq, first_newer["base_seq"]))
    assert not gaps, f"{len(gaps)} of {CROWD} missed updates after the snapshot: {gaps[:3]}"


def publish_deltas(redis_url: str, symbols: list[str], stop: threading.Event) -> None:
    """What the renderer does, every 5 ms: store each symbol's snapshot, then publish
    the delta from the previous one on the symbol's delta room channel."""
    client = redis.Redis.from_url(redis_url)
    seq = 0
    while not stop.wait(0.005):
        seq += 1
        pipe = client.pipeline(transaction=False)
        for symbol in symbols:
            payload = {"symbol": symbol, "seq": seq, "figure": {"data": [], "layout": {}}}
            pipe.hset(
                Keys().snapshot(symbol), mapping={"seq": seq, "payload": orjson.dumps(payload)}
            )
            delta = {"symbol": symbol, "seq": seq, "base_seq": seq - 1, "bars": []}
            packet = event_packet(BARS, orjson.dumps(delta))
            pipe.publish(Keys().channel(Room(symbol, Mode.DELTA)), packet)
        pipe.execute()
    client.close()
