"""Engine.IO's socket writer, waiting for its next packet without a task per packet.

Each client's writer awaits ``AsyncSocket.poll``, which waits with ``asyncio.wait_for``.
On Python 3.11 ``wait_for`` wraps the queue's ``get`` in a new task every time, so every
packet sent to every client cost a task; Python 3.12 rebuilt ``wait_for`` on
``asyncio.timeout`` and the cost went away. On 3.11 the gateway installs this ``poll``:
the same logic as python-engineio's, waiting under ``asyncio.timeout`` (new in 3.11).
"""

import asyncio
import sys
from typing import Any

from engineio import async_socket, exceptions


async def poll(self: Any) -> list[Any]:
    """python-engineio 4.x's ``AsyncSocket.poll``, less the task per packet."""
    queue: asyncio.Queue[Any] = self.queue
    try:
        if queue.empty():
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                packets = [await queue.get()]
        else:
            packets = [queue.get_nowait()]
        queue.task_done()
    except (TimeoutError, asyncio.CancelledError):
        raise exceptions.QueueEmpty() from None
    if packets == [None]:
        return []
    while not queue.empty():
        pkt = queue.get_nowait()
        queue.task_done()
        if pkt is None:
            queue.put_nowait(None)  # the close marker stays for the next poll
            break
        packets.append(pkt)
    return packets


def install() -> None:
    if sys.version_info < (3, 12):
        async_socket.AsyncSocket.poll = poll
