"""python-socketio's rooms, kept only for the library's own ``emit(room=...)`` (see
``gateway.internals`` for the terms of this reach).

rtplot's membership lives in gateway.membership; python-socketio relays rtplot's own
updates without its rooms. Its rooms are still what an ``emit(..., room=...)`` from any
process (the stock message queue channel) reaches, so each subscription is entered in
them, and left, as the membership says (``follow_enter``, ``follow_leave``).

python-socketio finds a disconnecting client's rooms by scanning (and copying) every
room of the namespace, and every client has a room of its own: when thousands of clients
drop at once (a network blip, a load balancer restart), the gateway does nothing else
for a long while (docs/benchmarks.md). So the rooms each client is in are indexed, by
the same three methods that change them, and a disconnect leaves those.
"""

import logging
from typing import Any

from socketio import base_manager

from common.contract.rooms import Room
from gateway import internals

log = logging.getLogger("rtplot.gateway")


class LibraryRooms(base_manager.BaseManager):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}  # (namespace, sid) -> rooms

    # -- following the membership ------------------------------------------------------

    def follow_enter(self, sid: str, room: Room) -> None:
        try:
            self.basic_enter_room(sid, "/", room.name)
        except (KeyError, ValueError):  # gone already: nothing to follow
            log.debug("not in python-socketio's rooms", extra={"sid": sid})

    def follow_leave(self, sid: str, room: Room) -> None:
        self.basic_leave_room(sid, "/", room.name)

    # -- the index ---------------------------------------------------------------------

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """python-socketio 5.18's ``basic_disconnect``, with the rooms from the index."""
        if not internals.enabled():
            super().basic_disconnect(sid, namespace, **kwargs)
            self._rooms_of.pop((namespace, sid), None)
            return
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self._rooms_of.pop((namespace, sid), None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def rooms_of(self, sid: str, namespace: str = "/") -> set[Any]:
        return set(self._rooms_of.get((namespace, sid), ()))
