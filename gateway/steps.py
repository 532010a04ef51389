"""The I/O the gateway's protocol core asks for, one step at a time.

The core (``gateway.core``) yields these and is sent each one's result; a failed step
is thrown back into it as the exception. ``gateway.runner`` performs them on a live
server, with ``await`` under asyncio and without under eventlet; a unit test performs
them with a script. Each docstring says what the step returns.
"""

from dataclasses import dataclass
from typing import Any

from common.contract.rooms import Room


@dataclass(frozen=True, slots=True)
class Watch:
    """Stamp ``symbol`` as watched, so the fetcher tracks it. True, or False when
    ``RTPLOT_MAX_SYMBOLS`` refuses a new symbol."""

    symbol: str


@dataclass(frozen=True, slots=True)
class WatchView:
    """Stamp the view with key ``view`` of ``symbol`` as watched, so renderers render it
    while this gateway receives its rooms; with ``notify``, also ask for a render now
    (its snapshot may be old, or missing). None."""

    symbol: str
    view: str
    notify: bool = True


@dataclass(frozen=True, slots=True)
class ReadSnapshot:
    """The snapshot of the symbol's view with key ``view`` ("" the default view) as
    stored (``common.contract.snapshots.Snapshot``)."""

    symbol: str
    view: str = ""


@dataclass(frozen=True, slots=True)
class Hold:
    """From now on, updates to ``room`` for this client are held, not sent. None."""

    sid: str
    room: Room


@dataclass(frozen=True, slots=True)
class Listen:
    """Wait until this gateway receives ``room``'s updates (its channel subscribed and
    confirmed by Redis). None; raises TimeoutError or a Redis error."""

    room: Room


@dataclass(frozen=True, slots=True)
class Enter:
    """Put the client in python-socketio's ``room`` too, so emits through the message
    queue (``RedisManager.emit(..., room=...)``) reach it. None."""

    sid: str
    room: Room


@dataclass(frozen=True, slots=True)
class Send:
    """Queue these Engine.IO packets to the client, in order. None."""

    sid: str
    packets: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class TakeHeld:
    """The updates held for the client in ``room`` since ``Hold`` (or the last
    ``TakeHeld``); when there are none, the hold ends and later updates go straight
    to the client. A list of packets."""

    sid: str
    room: Room


@dataclass(frozen=True, slots=True)
class Release:
    """Drop the client's hold on ``room`` and what it held (a refused subscribe). None."""

    sid: str
    room: Room


@dataclass(frozen=True, slots=True)
class Leave:
    """Take the client out of these rooms, held or joined. None."""

    sid: str
    rooms: tuple[Room, ...]


@dataclass(frozen=True, slots=True)
class Forget:
    """The client is gone: drop it from every room. None."""

    sid: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the client's connection. None."""

    sid: str


@dataclass(frozen=True, slots=True)
class DropSlowConsumers:
    """Close every client with more than ``limit`` packets waiting (it stopped reading)
    and free them. How many packets each dropped client had waiting (a list)."""

    limit: int


@dataclass(frozen=True, slots=True)
class Sleep:
    """Let ``seconds`` pass. None."""

    seconds: float


Step = (
    Watch
    | WatchView
    | ReadSnapshot
    | Hold
    | Listen
    | Enter
    | Send
    | TakeHeld
    | Release
    | Leave
    | Forget
    | Disconnect
    | DropSlowConsumers
    | Sleep
)
