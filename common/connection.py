"""Redis connections with the options every rtplot process wants."""

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff, NoBackoff

# Pub/sub listeners block for as long as nothing is published, so only the connect and
# command timeouts are bounded; a periodic health check notices a dead connection.
REDIS_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 15,
}


# A burst of requests (every browser resubscribing after a gateway restart) asks for more
# connections at once than a pool holds. redis-py's plain pool then raises "Too many
# connections"; a blocking pool queues the request until a connection is free.
POOL_SIZE = 50
POOL_WAIT = 10  # seconds a request may wait for a free connection


# A pooled connection outlives the server it was opened to: after a restart, the first
# command on each would fail. A command that fails on its connection is tried again on a
# fresh one, a few times within a second, so nothing is refused once Redis answers.
# Every command rtplot sends may run twice: its writes are idempotent and versioned.
RETRIES = 3
BACKOFF = {"cap": 0.5, "base": 0.05}  # seconds: 0.05, 0.1, 0.2


def connect(url: str) -> "redis.Redis":
    retry = redis.retry.Retry(ExponentialBackoff(**BACKOFF), RETRIES)
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_timeout=10,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        **REDIS_OPTIONS,
    )
    return redis.Redis.from_pool(pool)


def connect_async(url: str) -> "redis.asyncio.Redis":
    retry = redis.asyncio.retry.Retry(ExponentialBackoff(**BACKOFF), RETRIES)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_timeout=10,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        **REDIS_OPTIONS,
    )
    return redis.asyncio.Redis.from_pool(pool)


# A pub/sub listener owns its reconnection: a command retried inside redis-py would
# resubscribe behind its back, so a failure must reach it at once.
LISTENER_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 5, "socket_keepalive": True}


def connect_listener(url: str) -> "redis.Redis":
    return redis.Redis.from_url(url, retry=redis.retry.Retry(NoBackoff(), 0), **LISTENER_OPTIONS)


def connect_listener_async(url: str) -> "redis.asyncio.Redis":
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    return redis.asyncio.Redis.from_url(url, retry=retry, **LISTENER_OPTIONS)


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis answers a PING at ``url`` within about ``timeout`` seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
