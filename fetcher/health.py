"""Health of the worker and beat processes: Redis reachable and the schedule moving."""

import time
from collections.abc import Callable
from typing import Any

import redis

from common.connection import connect
from common.settings import Settings
from fetcher import metrics
from fetcher.celery_app import FETCH_TASK

STARTED = time.time()


class Progress:
    """When this process last did its part: ran a tick (worker) or sent one (beat)."""

    last: float | None = None

    @classmethod
    def mark(cls) -> None:
        cls.last = time.time()


def allowed_silence(settings: Settings) -> float:
    # Several missed ticks, never less than half a minute, so one slow fetch is no alarm.
    return max(30.0, 10 * settings.fetch_interval)


def _ping(client: "redis.Redis") -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def worker_check(settings: Settings) -> Callable[[], dict[str, Any]]:
    client = connect(settings.redis_url)

    def check() -> dict[str, Any]:
        redis_ok = _ping(client)
        age = time.time() - (Progress.last or STARTED)
        recent = age < allowed_silence(settings)
        return {
            "ok": redis_ok and recent,
            "redis": redis_ok,
            "last_tick_age": round(age, 1),
            "ticking": recent,
        }

    return check


def beat_check(settings: Settings) -> Callable[[], dict[str, Any]]:
    """A beat that never sent is a standby waiting for the lock: healthy. One that sent
    and then stopped has lost its lock or is stuck: unhealthy."""
    client = connect(settings.redis_url)

    def check() -> dict[str, Any]:
        redis_ok = _ping(client)
        if Progress.last is None:
            return {"ok": redis_ok, "redis": redis_ok, "role": "standby"}
        age = time.time() - Progress.last
        recent = age < allowed_silence(settings)
        return {
            "ok": redis_ok and recent,
            "redis": redis_ok,
            "role": "active",
            "last_sent_age": round(age, 1),
        }

    return check


def count_sent_ticks(sender: str | None = None, **_: Any) -> None:
    """celery's after_task_publish handler, connected in the beat process."""
    if sender == FETCH_TASK:
        Progress.mark()
        metrics.BEAT_SENT.inc()
        metrics.BEAT_LAST_SENT.set(time.time())
