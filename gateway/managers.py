"""python-socketio's Redis managers, counting and timing what they relay."""

import time
from typing import Any

import socketio

from gateway import metrics
from gateway.fanout import DirectFanout


def _record(manager: Any, message: dict[str, Any], started: float) -> None:
    event = str(message.get("event"))
    room = message.get("room")
    namespace = message.get("namespace") or "/"
    recipients = len(manager.rooms.get(namespace, {}).get(room, {})) if room else 0
    metrics.EMIT_SECONDS.labels(event).observe(time.perf_counter() - started)
    metrics.EVENTS_OUT.labels(event).inc(recipients)


class CountingAsyncRedisManager(socketio.AsyncRedisManager, DirectFanout):  # type: ignore[misc]
    async def _handle_emit(self, message: dict[str, Any]) -> None:
        started = time.perf_counter()
        await super()._handle_emit(message)
        _record(self, message, started)


class CountingRedisManager(socketio.RedisManager):  # type: ignore[misc]
    def _handle_emit(self, message: dict[str, Any]) -> None:
        started = time.perf_counter()
        super()._handle_emit(message)
        _record(self, message, started)
