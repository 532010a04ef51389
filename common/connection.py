"""Redis connections with the options every rtplot process wants."""

from typing import Any

import redis
import redis.asyncio

# Pub/sub listeners block for as long as nothing is published, so only the connect and
# command timeouts are bounded; a periodic health check notices a dead connection.
REDIS_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 15,
}


def connect(url: str) -> "redis.Redis":
    return redis.Redis.from_url(url, socket_timeout=10, **REDIS_OPTIONS)


def connect_async(url: str) -> "redis.asyncio.Redis":
    return redis.asyncio.Redis.from_url(url, socket_timeout=10, **REDIS_OPTIONS)
