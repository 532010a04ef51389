"""Two beats never double the schedule; the standby takes over when the active one dies."""

import time
from collections.abc import Iterator

import pytest
import redis

from common.keys import Keys
from fetcher.celery_app import QUEUE
from support import RedisServer, Service, service_env, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[RedisServer]:
    instance = RedisServer().start()
    yield instance
    instance.cleanup()


def queued(client: "redis.Redis") -> int:
    # No worker runs here, so every tick the beats send stays in the broker's list.
    return int(client.llen(Keys().broker_prefix + QUEUE))


def test_a_second_beat_does_not_double_the_ticks(server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    env = service_env(server.url)
    first = Service("beat-1", ["beat"], env)
    second: Service | None = None
    try:
        wait_until(lambda: queued(client) >= 1, timeout=30, message="the first tick")
        second = Service("beat-2", ["beat"], env)
        time.sleep(2)  # the second beat is up and waiting for the lock
        start = queued(client)
        time.sleep(6)
        ticks = queued(client) - start
        assert 4 <= ticks <= 8, f"{ticks} ticks in 6 s at a 1 s interval"
        first.kill()
        before = queued(client)
        wait_until(
            lambda: queued(client) >= before + 3,
            timeout=30,
            message="the standby beat to take over",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()
        client.close()
