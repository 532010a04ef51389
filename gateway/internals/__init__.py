"""Every place rtplot reaches past the public API of python-socketio, python-engineio
or uvicorn, and the check that decides whether it may.

Everything else in the gateway uses those libraries as documented. Each reach below
bought a measured saving (docs/benchmarks.md) and has a differential test holding it to
the library's own behaviour. They are used only with the library versions in ``TESTED``;
with any other version, or with ``RTPLOT_FAST_PATH=false``, ``enabled()`` is False, the
gateway takes the library's public path (slower, correct) and start-up logs one warning.

python-engineio (``outbox.py``)
  ``Server.sockets[eio_sid]`` and a socket's ``queue``, ``closed`` and ``last_ping``:
  an update is put on each recipient's send queue directly, encoded once, instead of
  one ``send_packet`` (a coroutine under asyncio) per recipient; a queue's length tells
  a client that stopped reading (``RTPLOT_MAX_QUEUED``), which is then closed and its
  queue emptied. Updates read together go to each WebSocket client in one write, its
  frames in the order they were sent (``Writes``); the limit counts frames, not writes.
  Test: tests/test_internals_outbox.py, against ``send_packet``, one update at a time
  and as a batch.

python-engineio and uvicorn (``websocket.py``), the asyncio gateway only
  A client that connects over WebSocket gets no send queue, writer task or ping task:
  what is sent to it is framed and written to uvicorn's transport at once, an update
  framed once for every client of a room, the updates read together in one write per
  client, and one task pings them all; a drain (SIGTERM) drops a client's connection
  as a network failure would, so that it reconnects. It replaces the
  server's ``_async['websocket']`` driver, sets the socket's ``queue`` and
  ``schedule_ping``, and reaches uvicorn's protocol as the owner of the ASGI ``send``
  for its ``transport``. Test: tests/test_internals_websocket.py, byte for byte
  against the library's path and the eventlet gateway, updates read together included.

python-engineio (``poll.py``)
  ``AsyncSocket.poll`` is replaced on Python 3.11: the library waits with
  ``asyncio.wait_for``, a task per packet there, and with a timer that a WebSocket does
  not need. Test: tests/test_internals_poll.py, against the library's own ``poll``.

python-socketio (``rooms.py``)
  python-socketio's rooms are kept only for its own ``emit(room=...)`` (the stock
  message queue): each subscription the membership (gateway.membership) records is
  entered there with ``BaseManager.basic_enter_room``, and left with
  ``basic_leave_room``. Those two keep an index of each client's rooms, so a disconnect
  costs its own rooms instead of a scan of every room; ``basic_disconnect`` is
  re-implemented and so reads ``rooms``, ``callbacks``, ``pending_connect`` and
  ``pending_disconnect``. Test: tests/test_room_index.py, against the library's own
  manager.

python-socketio (``startup.py``)
  ``Server.manager_initialized``: the client manager (and so its message-queue
  listener) starts with the server instead of at the first connection, so updates are
  relayed and /healthz tells the truth from the start. On the public path the listener
  starts at the first connection, which is also when it is first needed.
"""

import logging
from functools import cache

from common import versions

log = logging.getLogger("rtplot.gateway")

# Distribution -> the "major.minor" releases the reaches above were tested with.
TESTED = {
    "python-socketio": ("5.18",),
    "python-engineio": ("4.15",),
    "uvicorn": ("0.54",),
}


def untested() -> list[str]:
    """The installed distributions (as "name version") outside ``TESTED``."""
    return versions.untested(TESTED)


_forced_off = False


def disable() -> None:
    """Take the public path whatever the versions (``RTPLOT_FAST_PATH=false``)."""
    global _forced_off
    _forced_off = True
    enabled.cache_clear()


@cache
def enabled() -> bool:
    return not _forced_off and not untested()


def check(fast_path: bool = True) -> bool:
    """At start-up: whether the reaches may be used, with one warning if not."""
    if not fast_path:
        disable()
        log.warning("RTPLOT_FAST_PATH=false: the gateway uses only public library APIs")
    elif not enabled():
        tested = ", ".join(f"{n} {'/'.join(r)}.x" for n, r in TESTED.items())
        log.warning(
            "untested library versions (%s; tested: %s): the gateway uses only public "
            "library APIs, which is slower, and drops no slow consumers",
            ", ".join(untested()),
            tested,
        )
    return enabled()
