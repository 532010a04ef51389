"""python-engineio's ``AsyncSocket.poll``, waiting for the next packet without a task
per packet (see ``gateway.internals`` for the terms of this reach).

Each client's writer awaits ``AsyncSocket.poll``, which waits with ``asyncio.wait_for``.
On Python 3.11 ``wait_for`` wraps the queue's ``get`` in a new task every time, so every
packet sent to every client cost a task; Python 3.12 rebuilt ``wait_for`` on
``asyncio.timeout`` and the cost went away. On 3.11 the gateway installs this ``poll``:
the same logic as python-engineio's, less that task.

It also waits without a timer on a WebSocket. There the timeout only repeats a
guarantee the socket already has: its reader loop times out on a silent client by
itself, and whenever it ends it queues ``None``, which ends this writer. A long-polling
request still waits under the timeout, since nothing else would end it: a timer per
packet is bookkeeping the gateway pays for every delivery (docs/benchmarks.md).
"""

import asyncio
import sys
from typing import Any

from engineio import async_socket, exceptions

LIBRARY_POLL = async_socket.AsyncSocket.poll  # the library's own, for the differential test


async def poll(self: Any) -> list[Any]:
    """python-engineio 4.15's ``AsyncSocket.poll``, less the task per packet."""
    queue: asyncio.Queue[Any] = self.queue
    try:
        if not queue.empty():
            packets = [queue.get_nowait()]
        elif self.upgraded:
            packets = [await queue.get()]
        else:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                packets = [await queue.get()]
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
    """Only where it saves something: Python 3.12's own ``wait_for`` has no task."""
    if sys.version_info < (3, 12):
        async_socket.AsyncSocket.poll = poll
