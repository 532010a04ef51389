"""Relaying one update to every client in a room: encoded once, no task per client.

python-socketio's ``AsyncManager.emit`` encodes the packet once per room (good), then
creates an asyncio task per recipient only to put that packet on the recipient's
Engine.IO queue. At 10,000 clients that is 10,000 tasks per update, and the profile of
the fan-out benchmark showed task creation as the gateway's largest cost. Putting on an
unbounded queue never waits, so ``put_nowait`` does the same work synchronously.

An update from the message queue arrived as JSON, so it holds no binary data: encoding
it skips python-socketio's walk over every value of the figure looking for some, which
the profile put at a quarter of the gateway's time once the tasks were gone.
"""

import asyncio
import time
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet


def arguments(data: Any) -> list[Any]:
    """An emit's data as its list of arguments (a tuple is several)."""
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]


def encode_once(
    server: Any, event: str, args: list[Any], namespace: str, binary: bool | None = None
) -> list[eio_packet.Packet]:
    """The Engine.IO packets of one event, for every recipient alike. ``binary=False``
    says the arguments are known to hold no bytes; ``None`` lets python-socketio look."""
    encoded = server.packet_class(
        packet.EVENT, namespace=namespace, data=[event, *args], binary=binary
    ).encode()
    return [eio_packet.Packet(eio_packet.MESSAGE, p) for p in _as_list(encoded)]


def from_queue(message: dict[str, Any]) -> tuple[str, list[Any], str, Any, Any] | None:
    """(event, args, namespace, room, skip_sid) of a message-queue emit that can take the
    fast path: plain JSON (no binary attachments) and no acknowledgement wanted."""
    if message.get("binary") or message.get("callback") is not None:
        return None
    data = message["data"]
    args = data if isinstance(data, list) else [data]
    namespace = message.get("namespace") or "/"
    return message["event"], args, namespace, message.get("room"), message.get("skip_sid")


def _as_list(encoded: Any) -> list[Any]:
    return encoded if isinstance(encoded, list) else [encoded]


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
        frames = encode_once(self.server, event, arguments(data), namespace)
        await self.deliver(frames, namespace, room, skip_sid)

    async def deliver(
        self, frames: list[eio_packet.Packet], namespace: str, room: Any, skip_sid: Any
    ) -> None:
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
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
