"""python-socketio's Redis managers, counting and timing what they relay."""

import time
from typing import Any

import socketio

from gateway import metrics
from gateway.fanout import DirectFanout, encode_once, from_queue
from gateway.room_index import RoomIndex


def _nobody_here(manager: Any, message: dict[str, Any]) -> bool:
    """Whether an update is for a room with no client on this gateway. python-socketio
    would still walk the whole figure for binary data and encode it before finding the
    room empty, and every gateway gets every symbol's updates."""
    room = message.get("room")
    namespace = message.get("namespace") or "/"
    return room is not None and not manager.rooms.get(namespace, {}).get(room)


def _record(manager: Any, message: dict[str, Any], started: float) -> None:
    event = str(message.get("event"))
    room = message.get("room")
    namespace = message.get("namespace") or "/"
    recipients = len(manager.rooms.get(namespace, {}).get(room, {})) if room else 0
    metrics.EMIT_SECONDS.labels(event).observe(time.perf_counter() - started)
    metrics.EVENTS_OUT.labels(event).inc(recipients)


class CountingAsyncRedisManager(socketio.AsyncRedisManager, DirectFanout, RoomIndex):  # type: ignore[misc]
    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if _nobody_here(self, message):
            return
        started = time.perf_counter()
        if (plain := from_queue(message)) is not None:
            event, args, namespace, room, skip_sid = plain
            frames = encode_once(self.server, event, args, namespace, binary=False)
            await self.deliver(frames, namespace, room, skip_sid)
        else:
            await super()._handle_emit(message)
        _record(self, message, started)


class CountingRedisManager(socketio.RedisManager, RoomIndex):  # type: ignore[misc]
    def _handle_emit(self, message: dict[str, Any]) -> None:
        if _nobody_here(self, message):
            return
        started = time.perf_counter()
        if (plain := from_queue(message)) is not None:
            event, args, namespace, room, skip_sid = plain
            frames = encode_once(self.server, event, args, namespace, binary=False)
            skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
            for sid, eio_sid in self.get_participants(namespace, room):
                if sid not in skipped:
                    for frame in frames:
                        self.server._send_eio_packet(eio_sid, frame)
        else:
            super()._handle_emit(message)
        _record(self, message, started)
