"""Which of this gateway's clients get a room's updates, and the updates held for a
client while it joins.

A client is, in each room, absent, held or a member. A member gets the room's updates
as they come. A held client is joining: its updates wait here until ``take_held`` finds
none left, which makes it a member, so nothing published after the hold began can
overtake the snapshot queued before (gateway.core decides the order of a join).

A room is in use while it has a member or a held client; ``on_first`` and ``on_last``
say when that starts and ends, so the gateway receives the updates of exactly the
rooms its clients are in. Nothing here does I/O or waits.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.contract.rooms import Room

Packet = Any  # an Engine.IO packet, opaque here
RoomHook = Callable[[Room], None]


@dataclass
class _Held:
    packets: list[Packet] = field(default_factory=list)
    was_member: str | None = None  # its Engine.IO sid, if it was a member before the hold


class Delivery:
    def __init__(self, on_first: RoomHook, on_last: RoomHook) -> None:
        self.on_first, self.on_last = on_first, on_last
        self.members: dict[Room, dict[str, str]] = {}  # room -> sid -> Engine.IO sid
        self.held: dict[Room, dict[str, _Held]] = {}  # room -> sid -> what waits for it
        self.rooms_of: dict[str, set[Room]] = {}  # sid -> rooms it is held for or in

    def hold(self, sid: str, room: Room) -> None:
        held = self.held.setdefault(room, {})
        if sid in held:
            return  # a second subscribe while the first is joining: one hold
        was_member = self._pop(self.members, room, sid)
        held[sid] = _Held(was_member=was_member)
        if was_member is None:
            self._enter(sid, room)

    def take_held(self, sid: str, eio_sid: str, room: Room) -> list[Packet] | None:
        """What was held since the last call; when nothing was, the hold ends, the
        client is a member and this returns []. None if the client left meanwhile."""
        state = self.held.get(room, {}).get(sid)
        if state is None:
            return [] if sid in self.members.get(room, {}) else None
        if state.packets:
            packets, state.packets = state.packets, []
            return packets
        self._pop(self.held, room, sid)
        self.members.setdefault(room, {})[sid] = eio_sid
        return []

    def release(self, sid: str, room: Room) -> list[Packet]:
        """A join that failed. A client that was a member stays one, as ``take_held``
        (call again until []); any other client's hold is dropped with what it held."""
        state = self.held.get(room, {}).get(sid)
        if state is None:
            return []
        if state.was_member is not None:
            return self.take_held(sid, state.was_member, room) or []
        self._pop(self.held, room, sid)
        self._exit(sid, room)
        return []

    def leave(self, sid: str, room: Room) -> None:
        held = self._pop(self.held, room, sid)
        member = self._pop(self.members, room, sid)
        if held is not None or member is not None:
            self._exit(sid, room)

    def forget(self, sid: str) -> None:
        for room in list(self.rooms_of.get(sid, ())):
            self.leave(sid, room)

    def recipients(self, room: Room, packets: list[Packet]) -> list[str]:
        """The Engine.IO sids to send a room's update to now; held clients keep theirs."""
        for state in self.held.get(room, {}).values():
            state.packets.extend(packets)
        members = self.members.get(room)
        return list(members.values()) if members else []

    def rooms(self) -> set[Room]:
        """Every room in use."""
        return set(self.members) | set(self.held)

    # -- bookkeeping ---------------------------------------------------------------------

    @staticmethod
    def _pop(table: dict[Room, dict[str, Any]], room: Room, sid: str) -> Any:
        entries = table.get(room)
        if entries is None:
            return None
        value = entries.pop(sid, None)
        if not entries:
            del table[room]
        return value

    def _enter(self, sid: str, room: Room) -> None:
        rooms = self.rooms_of.setdefault(sid, set())
        rooms.add(room)
        if len(self.held.get(room, ())) + len(self.members.get(room, ())) == 1:
            self.on_first(room)

    def _exit(self, sid: str, room: Room) -> None:
        rooms = self.rooms_of.get(sid)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self.rooms_of[sid]
        if room not in self.held and room not in self.members:
            self.on_last(room)
