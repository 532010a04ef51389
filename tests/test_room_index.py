"""python-socketio's rooms, as the gateway keeps them (gateway/internals/rooms.py), are
exactly what python-socketio's own code would make of the same calls.

Any sequence of connects, joins, leaves, room closes and disconnects is applied to a stock
``socketio.Manager`` (joins and leaves with its ``enter_room``/``leave_room``) and to the
gateway's (joins and leaves as the membership tells it, ``follow_enter``/``follow_leave``);
their rooms must never differ, and the index must always name exactly the rooms each
client is in.
"""

from types import SimpleNamespace
from typing import Any

import socketio
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract.rooms import Mode, Room
from gateway.internals.rooms import LibraryRooms

CLIENTS = [f"c{i}" for i in range(6)]
ROOMS = [Room("AAPL"), Room("AAPL", Mode.DELTA), Room("MSFT"), Room("AAPL", Mode.ARTICLE)]


class Indexed(socketio.Manager, LibraryRooms):  # type: ignore[misc]
    pass


def manager(kind: type[Any]) -> Any:
    instance = kind()
    ids = iter(range(10**6))
    eio = SimpleNamespace(generate_id=lambda: f"s{next(ids)}")
    instance.set_server(SimpleNamespace(eio=eio, packet_class=socketio.packet.Packet))
    return instance


operations = st.lists(
    st.tuples(
        st.sampled_from(["connect", "enter", "leave", "close", "disconnect"]),
        st.sampled_from(CLIENTS),
        st.sampled_from(ROOMS),
    ),
    max_size=60,
)


def apply(target: Any, sids: dict[str, str], op: str, client: str, room: Room) -> None:
    sid = sids.get(client)
    follows = isinstance(target, LibraryRooms)
    if op == "connect" and sid is None:
        sids[client] = target.pre_connect(f"eio-{client}", "/")
        target.connect(sids[client], "/")
    elif op == "enter" and sid is not None:
        if follows:
            target.follow_enter(sid, room)
        else:
            target.enter_room(sid, "/", room.name)
    elif op == "leave" and sid is not None:
        if follows:
            target.follow_leave(sid, room)
        else:
            target.leave_room(sid, "/", room.name)
    elif op == "close":
        target.close_room(room.name, "/")
    elif op == "disconnect" and sid is not None:
        target.disconnect(sid, "/")
        del sids[client]


@settings(max_examples=300, deadline=None)
@given(operations)
def test_rooms_match_python_socketios_own_after_any_sequence(ops: list[Any]) -> None:
    stock, indexed = manager(socketio.Manager), manager(Indexed)
    stock_sids: dict[str, str] = {}
    indexed_sids: dict[str, str] = {}
    for op, client, room in ops:
        apply(stock, stock_sids, op, client, room)
        apply(indexed, indexed_sids, op, client, room)
        assert _shape(indexed.rooms, indexed_sids) == _shape(stock.rooms, stock_sids)
        for client_name, sid in indexed_sids.items():
            expected = {r for r, members in indexed.rooms.get("/", {}).items() if sid in members}
            assert indexed.rooms_of(sid) == expected, client_name


def _shape(rooms: dict[str, Any], sids: dict[str, str]) -> dict[Any, set[str]]:
    """Rooms by name with members by client name (sids differ between the managers)."""
    names = {sid: client for client, sid in sids.items()}
    return {
        names.get(room, room): {names.get(sid, sid) for sid in members}
        for room, members in rooms.get("/", {}).items()
    }
