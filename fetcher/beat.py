"""``rtplot beat``: celery beat with celery-redbeat, kept running across Redis outages.

redbeat retries its own Redis calls for ``redbeat_redis_options.retry_period``; an outage
longer than that makes celery beat raise and exit, so this loop starts it again instead
of leaving the pipeline without ticks until a human notices. So does a failover behind
Sentinel, at once: redbeat's lock extends itself on a connection that does not retry.

A beat that raised still holds its lock in Redis, and a new beat would wait for it to
expire (10 s or more) before ticking. So the loop first gives its own lock back, as
soon as Redis answers: the new beat, or a standby, takes it at once.
"""

import logging
import time
from typing import Any

import redis
from celery import Celery
from celery.signals import beat_init
from kombu.exceptions import OperationalError

from common.contract.lua import Lua
from fetcher import internals

log = logging.getLogger("rtplot.beat")

MAX_BACKOFF = 1.0  # seconds between restarts while Redis stays away: ticks resume fast

# Deletes the lock only if it still holds our token (redis-py's Lock.release does the
# same, but forgets the token before it knows the release went through). The lock is
# redbeat's, not one of rtplot's keys; the script takes its arguments by name all the same.
RELEASE = Lua(
    keys=("lock",),
    args=("token",),
    body="""
if redis.call('GET', lock) == token then return redis.call('DEL', lock) end
return 0
""",
)


class _Held:
    """The scheduler of the beat running now, whose lock may need giving back."""

    scheduler: Any = None

    @classmethod
    def started(cls, sender: Any = None, **_: Any) -> None:
        cls.scheduler = getattr(sender, "scheduler", None)

    @classmethod
    def lock(cls) -> tuple[str, bytes] | None:
        """(key, token) of the lock the last beat acquired and did not release."""
        return internals.held_beat_lock(cls.scheduler)


def give_back(app: Celery, held: tuple[str, bytes]) -> bool:
    """Deletes our lock if Redis still has it; waits for Redis for as long as redbeat
    waits (its retry period, paced at most a second apart). False if Redis is away."""
    from redbeat.schedulers import get_redis

    key, token = held
    try:
        released = release(get_redis(app), key, token)
    except (redis.RedisError, OSError) as exc:
        log.warning("could not give the beat's lock back", extra={"error": str(exc)})
        return False
    if released:
        log.info("gave the beat's lock back, so a beat takes over at once")
    return True


def release(client: "redis.Redis", key: str, token: bytes) -> bool:
    """True if the lock held ``token`` and is gone."""
    keys, args = RELEASE.call({"lock": key}, {"token": token})
    return bool(client.eval(RELEASE.source, len(keys), *keys, *args))


def run_beat(app: Celery, log_level: str) -> int:
    beat_init.connect(_Held.started, weak=False)
    backoff = 0.2
    first = True
    while True:
        try:
            # Celery's banner: at DEBUG, on the first start only (it is not a log line,
            # and would break RTPLOT_LOG_JSON's one object per line).
            app.Beat(loglevel=log_level, quiet=not (first and log_level == "DEBUG")).run()
            return 0  # stopped by SIGTERM/SIGINT (celery turns them into SystemExit)
        except (redis.RedisError, OperationalError, OSError) as exc:
            log.warning(
                "beat lost Redis; starting it again", extra={"error": str(exc), "retry_in": backoff}
            )
        first = False
        time.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
        held = _Held.lock()
        if held is not None and give_back(app, held):
            _Held.scheduler = None
