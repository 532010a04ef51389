"""Relaying one update to every client in a room, without a task per client.

python-socketio's ``AsyncManager.emit`` encodes the packet once per room (good), then
creates an asyncio task per recipient only to put that packet on the recipient's
Engine.IO queue. At 10,000 clients that is 10,000 tasks per update, and the profile of
the fan-out benchmark showed task creation as the gateway's largest cost. Putting on an
unbounded queue never waits, so ``put_nowait`` does the same work synchronously.
"""

import asyncio
import time
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet


class DirectFanout(socketio.AsyncManager):  # type: ignore[misc]
    """Mixed in below ``AsyncPubSubManager``, whose ``_handle_emit`` calls
    ``super().emit`` for every update arriving from the message queue."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if callback is not None or namespace not in self.rooms:
            # An ack needs a packet per recipient; leave that to python-socketio.
            await super().emit(event, data, namespace, room, skip_sid, callback, **kwargs)
            return
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, p)
            for p in _encoded(self.server, event, data, namespace)
        ]
        sockets = self.server.eio.sockets
        ping_timeout = self.server.eio.ping_timeout
        now = time.time()
        late: list[Any] = []
        for sid, eio_sid in self.get_participants(namespace, room):
            socket = sockets.get(eio_sid)
            if sid in skipped or socket is None or socket.closed:
                continue
            if socket.last_ping and now - socket.last_ping > ping_timeout:
                late.append(socket)  # its own send notices the silence and closes it
                continue
            for frame in frames:
                socket.queue.put_nowait(frame)
        if late:
            await asyncio.gather(
                *(socket.send(frame) for socket in late for frame in frames),
                return_exceptions=True,
            )


def _encoded(server: Any, event: str, data: Any, namespace: str) -> list[Any]:
    """The Socket.IO packet, encoded once for every recipient, as ``AsyncManager.emit``
    encodes it (a tuple is several arguments; binary data makes several packets)."""
    if isinstance(data, tuple):
        args = list(data)
    elif data is not None:
        args = [data]
    else:
        args = []
    encoded = server.packet_class(packet.EVENT, namespace=namespace, data=[event, *args]).encode()
    return encoded if isinstance(encoded, list) else [encoded]
