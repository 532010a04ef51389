"""Publishing a rendered figure through the Socket.IO Redis message queue.

python-socketio's write-only ``RedisManager`` speaks the gateways' message-queue
protocol, so one publish reaches every subscriber on every gateway.
"""

from typing import Any, Protocol

import redis
import socketio

from common.messages import (
    BARS,
    FIGURE,
    GRAPH_PLOT,
    OrjsonCodec,
    delta_room,
    figure_room,
    legacy_room,
)
from renderer import metrics


class Publisher(Protocol):
    def publish(
        self,
        symbol: str,
        payload: dict[str, Any],
        figure_json: str,
        delta: dict[str, Any] | None,
    ) -> None: ...


class _RaisingRedisManager(socketio.RedisManager):  # type: ignore[misc]
    """python-socketio's manager logs and drops a publish that fails twice; this one
    raises, so the renderer leaves the change unacknowledged and it is rendered again."""

    connected: bool

    def _publish(self, data: Any) -> Any:
        for attempt in (1, 2):
            try:
                if not self.connected:
                    self._redis_connect()
                return self.redis.publish(self.channel, self.json.dumps(data))
            except redis.RedisError:
                self.connected = False
                if attempt == 2:
                    metrics.PUBLISH_ERRORS.inc()
                    raise
        return None


class SocketIOPublisher:
    def __init__(self, redis_url: str, channel: str) -> None:
        self.manager = _RaisingRedisManager(
            redis_url, channel=channel, write_only=True, json=OrjsonCodec
        )

    def publish(
        self,
        symbol: str,
        payload: dict[str, Any],
        figure_json: str,
        delta: dict[str, Any] | None,
    ) -> None:
        self.manager.emit(FIGURE, payload, room=figure_room(symbol), namespace="/")
        # A render with nothing to be a delta from (the symbol's first) reaches delta
        # subscribers as a full figure, their snapshot.
        if delta is not None:
            self.manager.emit(BARS, delta, room=delta_room(symbol), namespace="/")
        else:
            self.manager.emit(FIGURE, payload, room=delta_room(symbol), namespace="/")
        # The article's client JSON.parse()s a string, so it gets the figure as one.
        self.manager.emit(GRAPH_PLOT, figure_json, room=legacy_room(symbol), namespace="/")
