"""The asyncio relay manager against a real Redis: a channel per room in use, subscribed
in batches, confirmed before a join reads its snapshot, and again after Redis restarts.
(The eventlet manager runs the same book and delivery; the end-to-end tests run both.)"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
import socketio

from common.contract.keys import Keys
from common.contract.packets import event_packet
from common.contract.rooms import Mode, Room
from common.settings import Settings
from gateway.relay import BATCH, AsyncRelayManager
from support import RedisServer

KEYS = Keys()
AAPL_DELTA, AAPL_FIGURE = Room("AAPL", Mode.DELTA), Room("AAPL")


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


def with_manager(
    url: str, scenario: Callable[[AsyncRelayManager, "redis.Redis"], Awaitable[None]]
) -> None:
    """Run ``scenario`` with a started manager of an in-process server."""
    settings = Settings.from_env({"RTPLOT_REDIS_URL": url})

    async def main() -> None:
        manager = AsyncRelayManager(settings)
        socketio.AsyncServer(async_mode="asgi", client_manager=manager)
        manager.initialize()
        client = redis.Redis.from_url(url)
        try:
            await until(lambda: manager.listening)
            await scenario(manager, client)
        finally:
            client.close()
            manager.thread.cancel()
            await asyncio.gather(manager.thread, return_exceptions=True)
            await manager.redis.aclose()

    asyncio.run(main())


async def until(condition: Callable[[], Any], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def subscribers(client: "redis.Redis", room: Room) -> int:
    [(_, count)] = client.pubsub_numsub(KEYS.channel(room))
    return int(count)


def test_a_join_hears_every_update_published_once_its_room_is_confirmed(
    own_redis: RedisServer,
) -> None:
    async def scenario(manager: AsyncRelayManager, client: "redis.Redis") -> None:
        manager.membership.hold("client-1", AAPL_DELTA)
        await manager.listen_room(AAPL_DELTA, timeout=5)
        client.publish(KEYS.channel(AAPL_DELTA), event_packet("bars", b'{"seq":2}'))
        await until(lambda: manager.membership.held[AAPL_DELTA]["client-1"].packets)
        [packet] = manager.membership.take_held("client-1", AAPL_DELTA) or []
        assert packet == b'2["bars",{"seq":2}]'

    with_manager(own_redis.url, scenario)


def test_a_crowd_joining_many_rooms_costs_a_few_commands(own_redis: RedisServer) -> None:
    rooms = [Room(f"S{i:03d}", Mode.DELTA) for i in range(200)]

    async def scenario(manager: AsyncRelayManager, client: "redis.Redis") -> None:
        before = commands(client, "subscribe")
        for i in range(2000):  # ten clients a room, all arriving at once
            manager.membership.hold(f"client-{i}", rooms[i % len(rooms)])
        await asyncio.gather(*(manager.listen_room(room, timeout=5) for room in rooms))
        assert all(subscribers(client, room) == 1 for room in rooms)
        assert commands(client, "subscribe") - before <= 3

    with_manager(own_redis.url, scenario)


def commands(client: "redis.Redis", name: str) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


def test_a_room_nobody_is_in_is_unsubscribed(own_redis: RedisServer) -> None:
    async def scenario(manager: AsyncRelayManager, client: "redis.Redis") -> None:
        for sid in ("a", "b"):
            manager.membership.hold(sid, AAPL_FIGURE)
            await manager.listen_room(AAPL_FIGURE, timeout=5)
            manager.membership.take_held(sid, AAPL_FIGURE)
        manager.membership.leave("a", AAPL_FIGURE)
        await asyncio.sleep(0.2)
        assert subscribers(client, AAPL_FIGURE) == 1  # b is still there
        manager.membership.forget("b")
        await until(lambda: subscribers(client, AAPL_FIGURE) == 0)
        # ... and a client coming back waits for a new subscription.
        manager.membership.hold("c", AAPL_FIGURE)
        await manager.listen_room(AAPL_FIGURE, timeout=5)
        assert subscribers(client, AAPL_FIGURE) == 1

    with_manager(own_redis.url, scenario)


def test_the_listener_subscribes_again_after_redis_restarts(own_redis: RedisServer) -> None:
    async def scenario(manager: AsyncRelayManager, client: "redis.Redis") -> None:
        manager.membership.hold("a", Room("MSFT", Mode.DELTA))
        await manager.listen_room(Room("MSFT", Mode.DELTA), timeout=5)
        manager.membership.take_held("a", Room("MSFT", Mode.DELTA))
        own_redis.stop()
        await until(lambda: not manager.listening)
        own_redis.start()
        started = asyncio.get_running_loop().time()
        await until(lambda: manager.listening and manager.book.ready(Room("MSFT", Mode.DELTA)))
        assert asyncio.get_running_loop().time() - started < 2
        fresh = redis.Redis.from_url(own_redis.url)
        assert subscribers(fresh, Room("MSFT", Mode.DELTA)) == 1
        assert fresh.pubsub_numsub(KEYS.socketio_channel)[0][1] == 1
        fresh.close()

    with_manager(own_redis.url, scenario)


def test_a_join_waits_no_longer_than_its_timeout_without_redis(own_redis: RedisServer) -> None:
    async def scenario(manager: AsyncRelayManager, client: "redis.Redis") -> None:
        own_redis.stop()
        await until(lambda: not manager.listening)
        manager.membership.hold("a", Room("TSLA", Mode.DELTA))
        with pytest.raises(TimeoutError):
            await manager.listen_room(Room("TSLA", Mode.DELTA), timeout=0.3)
        own_redis.start()

    with_manager(own_redis.url, scenario)


class Arrived:
    """A PubSub holding ``count`` messages already read from the socket, then either
    nothing more or a connection that drops."""

    def __init__(self, count: int, drops: bool) -> None:
        self.left = [{"type": "message", "channel": b"c", "data": b"%d" % i} for i in range(count)]
        self.drops = drops

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        assert timeout == 0  # what has arrived, without waiting
        if self.left:
            return self.left.pop(0)
        if self.drops:
            raise redis.ConnectionError("Connection closed by server.")
        return None


def test_the_listener_takes_what_has_arrived_and_keeps_it_if_the_connection_drops() -> None:
    manager = AsyncRelayManager(Settings.from_env({}))
    first = {"type": "message", "channel": b"c", "data": b"first"}
    batch, lost = asyncio.run(manager._read_arrived(Arrived(3, drops=False), first))
    assert [m["data"] for m in batch] == [b"first", b"0", b"1", b"2"] and lost is None
    batch, lost = asyncio.run(manager._read_arrived(Arrived(500, drops=False), first))
    assert len(batch) == BATCH and lost is None  # bounded: the rest is the next batch's
    batch, lost = asyncio.run(manager._read_arrived(Arrived(2, drops=True), first))
    assert len(batch) == 3 and isinstance(lost, redis.ConnectionError)  # relayed, then raised
