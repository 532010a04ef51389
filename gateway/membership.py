"""Who is in which room on this gateway: the one owner of it. The fan-out asks it whom
to send a room's update to, the core asks it what each client holds, the relay learns
from it which rooms' channels to receive, python-socketio's rooms follow it (behind the
fence, gateway.internals.rooms) and so do the gauges. Nothing here does I/O or waits.

A client is, in each room, absent, held or a member. A member gets the room's updates
as they come. A held client is joining: its updates wait here until ``take_held``
finds none left, which makes it a member, so nothing published after the hold began
can overtake the snapshot queued before (gateway.core decides the order of a join).

A client's subscription to a symbol is the room it became a member of (one per symbol:
a view or update mode the core switches to replaces it), from then until it leaves.
Joins still under way are numbered: of two subscribes to one symbol that overlap, the
later wins.

A room is in use while it has a member or a held client; ``on_first`` and ``on_last``
say when that starts and ends, so the gateway receives the updates of exactly the
rooms its clients are in.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.contract.rooms import Room

Packet = bytes  # a Socket.IO packet as published (common.contract.packets)
RoomHook = Callable[[Room], None]
ClientHook = Callable[[str, Room], None]
CountHook = Callable[[str, int], None]


def _nothing(*_: Any) -> None:
    pass


@dataclass
class _Held:
    packets: list[Packet] = field(default_factory=list)
    was_member: bool = False  # a member before this hold: subscribed all along


class Membership:
    def __init__(
        self,
        on_first: RoomHook = _nothing,
        on_last: RoomHook = _nothing,
        on_subscribed: ClientHook = _nothing,
        on_unsubscribed: ClientHook = _nothing,
        on_viewers: CountHook = _nothing,
    ) -> None:
        self.on_first, self.on_last = on_first, on_last  # a room in use, out of use
        self.on_subscribed, self.on_unsubscribed = on_subscribed, on_unsubscribed
        self.on_viewers = on_viewers  # (symbol, clients subscribed to it here)
        self.eio_sids: dict[str, str] = {}  # sid -> Engine.IO sid, for the fan-out
        self.members: dict[Room, dict[str, str]] = {}  # room -> sid -> Engine.IO sid
        self.held: dict[Room, dict[str, _Held]] = {}  # room -> sid -> what waits for it
        self.rooms_in: dict[str, set[Room]] = {}  # sid -> rooms it is held for or in
        self.subscribed: dict[str, dict[str, Room]] = {}  # sid -> symbol -> its room
        self.viewers: dict[str, int] = {}  # symbol -> clients subscribed to it
        self.view_viewers: dict[tuple[str, str], int] = {}  # (symbol, view key) -> clients
        self.joining: dict[str, dict[str, tuple[int, Room]]] = {}  # sid -> symbol -> join
        self._joins = 0

    # -- clients -----------------------------------------------------------------------

    def connected(self, sid: str, eio_sid: str) -> None:
        self.eio_sids[sid] = eio_sid

    def forget(self, sid: str) -> None:
        """The client is gone: out of every room, its joins dropped."""
        self.joining.pop(sid, None)
        for room in list(self.rooms_in.get(sid, ())):
            self.leave(sid, room)
        self.eio_sids.pop(sid, None)

    # -- joins -------------------------------------------------------------------------

    def begin_join(self, sid: str, room: Room) -> int:
        """A join of ``room`` starts; the token ``newest_join`` compares with."""
        self._joins += 1
        self.joining.setdefault(sid, {})[room.symbol] = (self._joins, room)
        return self._joins

    def newest_join(self, sid: str, symbol: str) -> tuple[int, Room] | None:
        """The newest join of the symbol still under way: (its token, its room)."""
        return self.joining.get(sid, {}).get(symbol)

    def end_join(self, sid: str, symbol: str, token: int | None = None) -> None:
        """The join with ``token`` (None: any) is over."""
        pending = self.joining.get(sid, {})
        if symbol in pending and (token is None or pending[symbol][0] == token):
            del pending[symbol]
            if not pending:
                del self.joining[sid]

    # -- rooms -------------------------------------------------------------------------

    def hold(self, sid: str, room: Room) -> None:
        """From now on, the room's updates for this client are held, not sent."""
        held = self.held.setdefault(room, {})
        if sid in held:
            return  # a second subscribe while the first is joining: one hold
        was_member = _pop(self.members, room, sid) is not None
        held[sid] = _Held(was_member=was_member)
        if not was_member:
            self._enter(sid, room)

    def take_held(self, sid: str, room: Room) -> list[Packet] | None:
        """What was held since the last call; when nothing was, the hold ends, the
        client is a member and this returns []. None if the client left meanwhile."""
        state = self.held.get(room, {}).get(sid)
        if state is None:
            return [] if sid in self.members.get(room, {}) else None
        if state.packets:
            packets, state.packets = state.packets, []
            return packets
        _pop(self.held, room, sid)
        self.members.setdefault(room, {})[sid] = self.eio_sids.get(sid, sid)
        if not state.was_member:
            self._subscribe(sid, room)
        return []

    def release(self, sid: str, room: Room) -> list[Packet]:
        """A join that failed. A client that was a member stays one, as ``take_held``
        (call again until []); any other client's hold is dropped with what it held."""
        state = self.held.get(room, {}).get(sid)
        if state is None:
            return []
        if state.was_member:
            return self.take_held(sid, room) or []
        _pop(self.held, room, sid)
        self._exit(sid, room)
        return []

    def leave(self, sid: str, room: Room) -> None:
        held = _pop(self.held, room, sid)
        member = _pop(self.members, room, sid)
        if held is None and member is None:
            return
        if member is not None or held.was_member:
            self._unsubscribe(sid, room)
        self._exit(sid, room)

    def recipients(self, room: Room, packets: list[Packet]) -> list[str]:
        """The Engine.IO sids to send a room's update to now; held clients keep theirs."""
        for state in self.held.get(room, {}).values():
            state.packets.extend(packets)
        members = self.members.get(room)
        return list(members.values()) if members else []

    def rooms(self) -> set[Room]:
        """Every room in use."""
        return set(self.members) | set(self.held)

    # -- what clients hold -------------------------------------------------------------

    def room_of(self, sid: str, symbol: str) -> Room | None:
        """The room of the client's subscription to the symbol."""
        return self.subscribed.get(sid, {}).get(symbol)

    def rooms_of(self, sid: str, symbol: str) -> set[Room]:
        """The rooms of the symbol the client is in, held for, or joining."""
        rooms = {room for room in self.rooms_in.get(sid, ()) if room.symbol == symbol}
        if (newest := self.newest_join(sid, symbol)) is not None:
            rooms.add(newest[1])
        return rooms

    def holds(self, sid: str, symbol: str) -> bool:
        return symbol in self.subscribed.get(sid, ())

    def held_by(self, sid: str) -> int:
        """How many symbols the client subscribes to."""
        return len(self.subscribed.get(sid, ()))

    def symbols(self) -> list[str]:
        """Every symbol some client here subscribes to."""
        return list(self.viewers)

    def views(self) -> list[tuple[str, str]]:
        """(symbol, view key) of every view other than the default one watched here."""
        return list(self.view_viewers)

    def counts(self) -> dict[str, int]:
        return dict(self.viewers)

    # -- bookkeeping -------------------------------------------------------------------

    def _enter(self, sid: str, room: Room) -> None:
        self.rooms_in.setdefault(sid, set()).add(room)
        if len(self.held.get(room, ())) + len(self.members.get(room, ())) == 1:
            self.on_first(room)

    def _exit(self, sid: str, room: Room) -> None:
        rooms = self.rooms_in.get(sid)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self.rooms_in[sid]
        if room not in self.held and room not in self.members:
            self.on_last(room)

    def _subscribe(self, sid: str, room: Room) -> None:
        held = self.subscribed.setdefault(sid, {})
        if (before := held.get(room.symbol)) is not None:
            self._unsubscribe(sid, before)  # the core leaves it first; in case it did not
            held = self.subscribed.setdefault(sid, {})
        held[room.symbol] = room
        self._count(room, +1)
        self.on_subscribed(sid, room)

    def _unsubscribe(self, sid: str, room: Room) -> None:
        held = self.subscribed.get(sid, {})
        if held.get(room.symbol) != room:
            return
        del held[room.symbol]
        if not held:
            del self.subscribed[sid]
        self._count(room, -1)
        self.on_unsubscribed(sid, room)

    def _count(self, room: Room, by: int) -> None:
        symbol = room.symbol
        viewers = self.viewers.get(symbol, 0) + by
        if viewers:
            self.viewers[symbol] = viewers
        else:
            del self.viewers[symbol]
        self.on_viewers(symbol, viewers)
        if room.view:  # the default view is always rendered: nothing to stamp
            key = (symbol, room.view)
            count = self.view_viewers.get(key, 0) + by
            if count:
                self.view_viewers[key] = count
            else:
                del self.view_viewers[key]


def _pop(table: dict[Room, dict[str, Any]], room: Room, sid: str) -> Any:
    entries = table.get(room)
    if entries is None:
        return None
    value = entries.pop(sid, None)
    if not entries:
        del table[room]
    return value
