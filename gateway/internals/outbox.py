"""Putting packets on Engine.IO send queues directly (see ``gateway.internals`` for the
terms of this reach).

python-socketio's ``emit`` creates an asyncio task per recipient, only to put the packet
on that recipient's queue: a task per client per update, which the fan-out benchmark's
profile showed as the gateway's largest cost (docs/benchmarks.md). Putting on an
unbounded queue never waits, so ``put_nowait`` does the same work at once, in the same
order, under asyncio and eventlet alike.

What ``Socket.send`` checks first is kept: a closed socket gets nothing, and one whose
client missed its pings goes through the library's own ``send_packet``, which closes it.
On the public path every packet goes through ``send_packet``.

Updates that reach the gateway together (one read of the message queue) are sent with
one ``Writes``: a WebSocket client's frames wait there until ``flush``, which writes
each client's in one buffer, in the order they were sent: a system call per client per
batch instead of one per update. Clients with a queue (long-polling, the eventlet
gateway) get their packets put at once, as before; their writer takes what is queued.
"""

import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import engineio

from gateway import internals
from gateway.internals.websocket import DirectSender, frame

Packet = Any  # an engineio.packet.Packet


class Writes:
    """What a batch sends to WebSocket clients, until ``Outbox.flush`` writes it.

    Kept in flat dicts of bytes and ints, which the garbage collector does not track: an
    object per recipient per update made the collector's passes cost more than the
    batch saved. A client's chunks become a list only once it has a second one."""

    def __init__(self) -> None:
        self.data: dict[str, bytes | list[bytes]] = {}  # Engine.IO sid -> its frames
        self.frames: dict[str, int] = {}  # ... how many
        self.senders: dict[str, DirectSender] = {}

    def add(self, eio_sid: str, sender: DirectSender, chunk: bytes, count: int) -> None:
        held = self.data.get(eio_sid)
        if held is None:
            self.data[eio_sid], self.frames[eio_sid] = chunk, count
            self.senders[eio_sid] = sender
            return
        if isinstance(held, bytes):
            self.data[eio_sid] = [held, chunk]
        else:
            held.append(chunk)
        self.frames[eio_sid] += count

    def clear(self) -> None:
        self.data.clear()
        self.frames.clear()
        self.senders.clear()


class Outbox:
    def __init__(self, eio: Any, limit: int = 100) -> None:
        self.eio = eio
        self.is_async = isinstance(eio, engineio.AsyncServer)
        self.limit = limit  # packets (frames) waiting before a client counts as stopped
        # Clients seen over the limit by the fan-out: looked at again by ``overfull``,
        # which so never walks every connection.
        self.suspects: set[str] = set()

    def send(
        self, targets: Iterable[str], packets: Sequence[Packet], writes: Writes | None = None
    ) -> Awaitable[None] | None:
        """Queue ``packets``, in order, to each Engine.IO session in ``targets``; with
        ``writes``, a WebSocket client's frames wait there for ``flush``.

        Returns a coroutine (under asyncio) when the library's own send is needed, else
        None: the packets are queued (or in ``writes``) when this returns.
        """
        if not internals.enabled():
            return self._library_send(list(targets), packets)  # type: ignore[no-any-return]
        sockets = self.eio.sockets
        deadline = time.time() - self.eio.ping_timeout
        late: list[str] = []
        framed: bytes | None = None  # for WebSocket clients: framed once, for them all
        for eio_sid in targets:
            sock = sockets.get(eio_sid)
            if sock is None or sock.closed:
                continue
            if sock.last_ping and sock.last_ping < deadline:
                late.append(eio_sid)  # its own send notices the silence and closes it
                continue
            queue = sock.queue
            if type(queue) is DirectSender:
                if framed is None:
                    framed = b"".join(frame(pkt.encode()) for pkt in packets)
                if writes is not None:
                    writes.add(eio_sid, queue, framed, len(packets))
                    continue
                queue.write(framed, len(packets))
                if queue.frames > self.limit:
                    self.suspects.add(eio_sid)
            else:
                for pkt in packets:
                    queue.put_nowait(pkt)
                if queue.qsize() > self.limit:
                    self.suspects.add(eio_sid)
        return self._library_send(late, packets) if late else None

    def flush(self, writes: Writes) -> None:
        """Each client's frames in ``writes``, in one write; ``writes`` is then empty."""
        frames, senders = writes.frames, writes.senders
        for eio_sid, held in writes.data.items():
            sender = senders[eio_sid]
            sender.write(held if isinstance(held, bytes) else b"".join(held), frames[eio_sid])
            if sender.frames > self.limit:
                self.suspects.add(eio_sid)
        writes.clear()

    def _library_send(self, targets: list[str], packets: Sequence[Packet]) -> Any:
        if self.is_async:
            return self._send_each_async(targets, packets)
        for eio_sid in targets:
            for pkt in packets:
                self.eio.send_packet(eio_sid, pkt)
        return None

    async def _send_each_async(self, targets: list[str], packets: Sequence[Packet]) -> None:
        for eio_sid in targets:
            for pkt in packets:
                await self.eio.send_packet(eio_sid, pkt)

    # -- clients that stopped reading ----------------------------------------------------

    def overfull(self, limit: int) -> list[tuple[str, int]]:
        """(session, queued packets) of each open socket holding more than ``limit``
        packets: a client that stopped reading. Only the clients the fan-out saw over
        the limit are looked at. None are found on the public path, which cannot see
        the queues."""
        suspects, self.suspects = self.suspects, set()
        found = []
        for eio_sid in suspects:
            sock = self.eio.sockets.get(eio_sid)
            if sock is not None and not sock.closed and sock.queue.qsize() > limit:
                found.append((eio_sid, sock.queue.qsize()))
        return found

    def drop(self, eio_sid: str) -> Awaitable[None] | None:
        """Close a client that stopped reading and free what it never read."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return None
        if self.is_async:
            return self._drop_async(sock)
        sock.close(wait=False, abort=True)
        _empty(sock.queue)
        sock.queue.put(None)  # lets its writer end once the socket gives
        return None

    async def _drop_async(self, sock: Any) -> None:
        await sock.close(wait=False, abort=True)
        _empty(sock.queue)
        sock.queue.put_nowait(None)


def _empty(queue: Any) -> None:
    while not queue.empty():
        queue.get_nowait()
        queue.task_done()
