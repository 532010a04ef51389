"""Redis connections with the options every rtplot process wants.

``RTPLOT_REDIS_URL`` is a plain ``redis://`` (``rediss://``, ``unix://``) URL, or
python-socketio's Sentinel form ``redis+sentinel://[user:pass@]host:port,.../DB/SERVICE``:
then every connection asks the sentinels where SERVICE's primary is, and asks again
after a failover. The URL's user and password are the Redis servers' (as in
python-socketio); the sentinels themselves take none.
"""

from typing import Any
from urllib.parse import unquote, urlparse

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.retry
import redis.sentinel
from redis.backoff import ExponentialBackoff, NoBackoff

from common.settings import SentinelParts, sentinel_parts

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
# Behind Sentinel the fresh connection goes to whichever server the sentinels now name.
RETRIES = 3
BACKOFF = {"cap": 0.5, "base": 0.05}  # seconds: 0.05, 0.1, 0.2


# A sentinel answers at once or is gone: one that does not is skipped for the next one
# within a second, not waited on. One retry, at once, gets past a connection that died
# with a restarted sentinel.
SENTINEL_TIMEOUT = 1.0  # seconds
SENTINEL_RETRIES = 1


def is_sentinel(url: str) -> bool:
    return urlparse(url).scheme == "redis+sentinel"


def sentinel_options() -> dict[str, Any]:
    """How to reach the sentinels themselves (redis-py's ``sentinel_kwargs``)."""
    return {
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "socket_timeout": SENTINEL_TIMEOUT,
        "socket_keepalive": True,
        "retry": redis.retry.Retry(NoBackoff(), SENTINEL_RETRIES),
    }


def _server_options(parts: SentinelParts) -> dict[str, Any]:
    """What the URL says about the Redis servers behind the sentinels."""
    options: dict[str, Any] = {"db": parts.db}
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.password:
        options["password"] = unquote(parts.password)
    return options


class SentinelPool(redis.sentinel.SentinelConnectionPool):
    """redis-py's Sentinel pool, which also closes its connections to the sentinels."""

    def close(self) -> None:
        super().close()
        self.sentinel_manager.close()


class BlockingSentinelPool(SentinelPool, redis.BlockingConnectionPool):
    """... and blocks like ``POOL_SIZE``'s: a burst waits for a connection instead of
    being refused. The Sentinel pool decides where a connection goes (and drops those
    to a demoted primary), the blocking pool how many there are."""


class AsyncSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool):
    """The same two, for asyncio."""

    async def aclose(self) -> None:
        await super().aclose()
        await self.sentinel_manager.aclose()


class AsyncBlockingSentinelPool(AsyncSentinelPool, redis.asyncio.BlockingConnectionPool):
    pass  # see AsyncSentinelPool


def _master(url: str, **options: Any) -> "redis.Redis":
    """A client of the primary the sentinels of a ``redis+sentinel://`` URL name."""
    parts = sentinel_parts(url)
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        parts.sentinels, sentinel_kwargs=sentinel_options()
    )
    options.setdefault("connection_pool_class", SentinelPool)
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        parts.service, **options, **_server_options(parts)
    )
    return client


def _master_async(url: str, **options: Any) -> "redis.asyncio.Redis":
    parts = sentinel_parts(url)
    kwargs = {
        **sentinel_options(),
        "retry": redis.asyncio.retry.Retry(NoBackoff(), SENTINEL_RETRIES),
    }
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        parts.sentinels, sentinel_kwargs=kwargs
    )
    options.setdefault("connection_pool_class", AsyncSentinelPool)
    client: redis.asyncio.Redis = sentinel.master_for(
        parts.service, **options, **_server_options(parts)
    )
    return client


def _pool_options(retry: Any) -> dict[str, Any]:
    return {
        "max_connections": POOL_SIZE,
        "timeout": POOL_WAIT,
        "socket_timeout": 10,
        "retry": retry,
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        **REDIS_OPTIONS,
    }


def connect(url: str) -> "redis.Redis":
    options = _pool_options(redis.retry.Retry(ExponentialBackoff(**BACKOFF), RETRIES))
    if is_sentinel(url):
        return _master(url, connection_pool_class=BlockingSentinelPool, **options)
    return redis.Redis.from_pool(redis.BlockingConnectionPool.from_url(url, **options))


def connect_async(url: str) -> "redis.asyncio.Redis":
    options = _pool_options(redis.asyncio.retry.Retry(ExponentialBackoff(**BACKOFF), RETRIES))
    if is_sentinel(url):
        return _master_async(url, connection_pool_class=AsyncBlockingSentinelPool, **options)
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, **options)
    return redis.asyncio.Redis.from_pool(pool)


# A pub/sub listener owns its reconnection: a command retried inside redis-py would
# resubscribe behind its back, so a failure must reach it at once. Behind Sentinel, its
# connect does not retry either: the listener's own loop asks the sentinels again.
LISTENER_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 5, "socket_keepalive": True}


def connect_listener(url: str) -> "redis.Redis":
    retry = redis.retry.Retry(NoBackoff(), 0)
    if is_sentinel(url):
        return _master(url, retry=retry, **LISTENER_OPTIONS)
    return redis.Redis.from_url(url, retry=retry, **LISTENER_OPTIONS)


def connect_listener_async(url: str) -> "redis.asyncio.Redis":
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    if is_sentinel(url):
        return _master_async(url, retry=retry, **LISTENER_OPTIONS)
    return redis.asyncio.Redis.from_url(url, retry=retry, **LISTENER_OPTIONS)


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis answers a PING at ``url`` within about ``timeout`` seconds; for a
    Sentinel URL, whether the sentinels name a primary and it answers."""
    quick = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if is_sentinel(url):
        client = _master(url, retry=redis.retry.Retry(NoBackoff(), 0), **quick)
    else:
        client = redis.Redis.from_url(url, **quick)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
