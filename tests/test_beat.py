"""Two beats never double the schedule; the standby takes over when the active one dies."""

import time

import pytest
import redis

from common.contract.keys import Keys
from support import running, wait_until

pytestmark = pytest.mark.e2e


def queued(client: "redis.Redis") -> int:
    # No worker runs here, so every tick the beats send stays in the broker's list.
    return int(client.llen(Keys().fetch_queue))


def test_a_second_beat_does_not_double_the_ticks() -> None:
    with running(("beat-1", "beat")) as stack:
        client = stack.client
        wait_until(lambda: queued(client) >= 1, timeout=30, message="the first tick")
        stack.start("beat-2", "beat")
        time.sleep(2)  # the second beat is up and waiting for the lock
        start = queued(client)
        time.sleep(6)
        ticks = queued(client) - start
        assert 4 <= ticks <= 8, f"{ticks} ticks in 6 s at a 1 s interval"
        stack.services["beat-1"].kill()
        before = queued(client)
        wait_until(
            lambda: queued(client) >= before + 3,
            timeout=30,
            message="the standby beat to take over",
        )
