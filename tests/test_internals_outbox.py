"""The gateway's direct fan-out leaves the same packets on the same sockets as the
libraries' own public paths: python-engineio's ``send_packet`` for one packet to one
client, and python-socketio's ``emit`` for an update to a room; open, late (missed its
pings), closed and vanished sockets alike. Updates sent as one batch reach each client
as the same frames, in the same order, a WebSocket client's in one write."""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import engineio
import orjson
import pytest
import socketio
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from engineio.socket import Socket
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract.packets import event_packet
from common.contract.rooms import Mode, Room
from gateway import internals
from gateway.internals.outbox import Outbox, Writes
from gateway.internals.websocket import DirectSender, frame
from gateway.membership import Membership

STATES = ["open", "late", "closed", "gone"]
clients = st.lists(st.sampled_from(STATES), min_size=1, max_size=6)
payloads = st.lists(st.text(max_size=5), min_size=1, max_size=3)


@pytest.fixture
def public_path() -> Iterator[None]:
    internals.disable()
    yield
    internals._forced_off = False
    internals.enabled.cache_clear()


def engineio_server(is_async: bool) -> Any:
    if is_async:
        return engineio.AsyncServer(async_mode="asgi", logger=False)
    return engineio.Server(async_mode="threading", logger=False)


def with_sockets(eio: Any, states: list[str]) -> list[str]:
    """A socket per state, as a connected client's would be; their sids."""
    kind = AsyncSocket if isinstance(eio, engineio.AsyncServer) else Socket
    sids = []
    for i, state in enumerate(states):
        sid = f"s{i}"
        sids.append(sid)
        if state == "gone":
            continue
        sock = kind(eio, sid)
        sock.connected = True
        sock.last_ping = time.time() - 3600 if state == "late" else None
        sock.closed = state == "closed"
        eio.sockets[sid] = sock
    return sids


def queued(eio: Any, sids: list[str]) -> dict[str, tuple[list[Any], bool]]:
    """What each socket holds, and whether it is closed."""
    found = {}
    for sid in sids:
        sock = eio.sockets.get(sid)
        if sock is not None:
            # asyncio.Queue keeps its items in _queue, queue.Queue in queue.
            items = list(getattr(sock.queue, "_queue", None) or getattr(sock.queue, "queue", []))
            found[sid] = ([None if p is None else _text(p.encode()) for p in items], sock.closed)
    return found


def _text(encoded: str | bytes) -> str:
    return encoded.decode() if isinstance(encoded, bytes) else encoded


def send_both_ways(is_async: bool, states: list[str], texts: list[str]) -> tuple[Any, Any]:
    packets = [eio_packet.Packet(eio_packet.MESSAGE, text) for text in texts]
    outcomes = []
    for fast in (True, False):
        eio = engineio_server(is_async)
        sids = with_sockets(eio, states)
        internals._forced_off = not fast
        internals.enabled.cache_clear()
        try:
            sending = Outbox(eio).send(sids, packets)
            if sending is not None:
                asyncio.run(sending)
        finally:
            internals._forced_off = False
            internals.enabled.cache_clear()
        outcomes.append(queued(eio, sids))
    return outcomes[0], outcomes[1]


@settings(max_examples=100, deadline=None)
@given(states=clients, texts=payloads, is_async=st.booleans())
def test_the_direct_path_queues_what_send_packet_queues(
    states: list[str], texts: list[str], is_async: bool
) -> None:
    direct, library = send_both_ways(is_async, states, texts)
    # send_packet also forgets a closed socket it meets; the direct path leaves that
    # to the socket's own disconnect. Everything else must match.
    closed = {f"s{i}" for i, state in enumerate(states) if state == "closed"}
    assert {s: v for s, v in direct.items() if s not in closed} == {
        s: v for s, v in library.items() if s not in closed
    }
    assert all(direct[sid] == ([], True) for sid in closed)  # nothing sent to them


def test_a_late_socket_is_closed_as_the_library_would() -> None:
    for is_async in (True, False):
        direct, library = send_both_ways(is_async, ["late", "open"], ["x"])
        assert direct == library
        assert direct["s0"][1] is True  # closed: it missed its pings
        assert direct["s1"] == (["4x"], False)


# -- a room's update: rtplot's relay against python-socketio's emit -----------------------


async def emit_both_ways(states: list[str], members: list[int]) -> tuple[Any, Any]:
    update = {"symbol": "AAPL", "seq": 3, "bars": [[60, 1.5, 2.0, 1.0, 1.5, 7]]}
    outcomes = []
    for ours in (True, False):
        sio = socketio.AsyncServer(async_mode="asgi", logger=False)
        sids = with_sockets(sio.eio, states)
        membership, room = Membership(), Room("AAPL", Mode.DELTA)
        for i in members:
            sid = await sio.manager.connect(sids[i], "/")
            await sio.manager.enter_room(sid, "/", room.name)
            membership.connected(sid, sids[i])
            membership.hold(sid, room)
            membership.take_held(sid, room)
        if ours:
            packet = event_packet("bars", orjson.dumps(update))
            packets = [eio_packet.Packet(eio_packet.MESSAGE, packet.decode())]
            sending = Outbox(sio.eio).send(membership.recipients(room, [packet]), packets)
            if sending is not None:
                await sending
        else:
            await sio.emit("bars", update, room=room.name)
            await asyncio.sleep(0.01)  # python-socketio sends from a task per client
        outcomes.append(queued(sio.eio, sids))
    return outcomes[0], outcomes[1]


@settings(max_examples=50, deadline=None)
@given(states=st.lists(st.sampled_from(["open", "late"]), min_size=1, max_size=6), data=st.data())
def test_a_room_update_reaches_whom_emit_reaches(states: list[str], data: Any) -> None:
    members = data.draw(st.lists(st.sampled_from(range(len(states))), unique=True))
    ours, theirs = asyncio.run(emit_both_ways(states, members))
    assert ours == theirs


def test_the_public_path_is_taken_when_asked(public_path: None) -> None:
    assert not internals.enabled()
    eio = engineio_server(is_async=True)
    sids = with_sockets(eio, ["open"])
    sending = Outbox(eio).send(sids, [eio_packet.Packet(eio_packet.MESSAGE, "x")])
    assert sending is not None  # a coroutine: send_packet, awaited
    asyncio.run(sending)
    assert queued(eio, sids) == {"s0": (["4x"], False)}
    assert Outbox(eio).overfull(0) == []  # the public path cannot see the queues


def test_only_a_client_the_fan_out_saw_over_the_limit_counts_as_stopped() -> None:
    eio = engineio_server(is_async=True)
    sids = with_sockets(eio, ["open", "open"])
    outbox = Outbox(eio, limit=2)
    packet = eio_packet.Packet(eio_packet.MESSAGE, "x")
    outbox.send(sids[:1], [packet] * 3)  # the first client has three waiting: over
    outbox.send(sids[1:], [packet])
    assert outbox.overfull(2) == [("s0", 3)]
    assert outbox.overfull(2) == []  # looked at once: the next send tells again


# -- updates read together: each WebSocket client's frames in one write -----------------


class Transport:
    """The transport a direct WebSocket client is written to: every write kept. Nothing
    reads it, so its buffer only grows."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.writes))

    def is_closing(self) -> bool:
        return False


END = b"<end>"  # the library's "stop writing" (None on a queue), or an aborted transport
Sends = list[tuple[list[int], list[str]]]  # (which clients, the packets' texts), in order
sends_st = st.lists(
    st.tuples(st.lists(st.integers(0, 5), unique=True), payloads), min_size=1, max_size=5
)


def received(eio: Any, sids: list[str]) -> dict[str, tuple[bytes, bool]]:
    """What each socket was sent, as the frames on its wire, and whether it is closed."""
    found = {}
    for sid in sids:
        sock = eio.sockets.get(sid)
        if sock is None:
            continue
        if isinstance(sock.queue, DirectSender):
            transport = sock.queue.transport
            wire = b"".join(transport.writes) + (END if transport.aborted else b"")
        else:
            items = getattr(sock.queue, "_queue", None) or getattr(sock.queue, "queue", [])
            wire = b"".join(END if pkt is None else frame(pkt.encode()) for pkt in items)
        found[sid] = (wire, sock.closed)
    return found


def batch_both_ways(is_async: bool, states: list[str], sends: Sends) -> tuple[Any, Any, Any]:
    """The sends made as one batch (WebSocket clients written to directly under asyncio)
    and one after another through the library's ``send_packet``: what each client got
    both ways, and the writes each direct client saw."""
    outcomes, writes_seen = [], {}
    for batched in (True, False):
        eio = engineio_server(is_async)
        sids = with_sockets(eio, states)
        if batched and is_async:
            for sock in eio.sockets.values():
                sock.queue = DirectSender(Transport())
        internals._forced_off = not batched
        internals.enabled.cache_clear()
        try:
            outbox, writes, later = Outbox(eio), Writes(), []
            for which, texts in sends:
                packets = [eio_packet.Packet(eio_packet.MESSAGE, text) for text in texts]
                targets = [sids[i] for i in which if i < len(sids)]
                sending = outbox.send(targets, packets, writes if batched else None)
                if sending is not None:
                    later.append(sending)
            outbox.flush(writes)
            for sending in later:
                asyncio.run(sending)
        finally:
            internals._forced_off = False
            internals.enabled.cache_clear()
        outcomes.append(received(eio, sids))
        if batched and is_async:
            writes_seen = {
                sid: len(sock.queue.transport.writes) for sid, sock in eio.sockets.items()
            }
    return outcomes[0], outcomes[1], writes_seen


@settings(max_examples=100, deadline=None)
@given(states=clients, sends=sends_st, is_async=st.booleans())
def test_a_batch_sends_each_client_the_librarys_frames_in_one_write(
    states: list[str], sends: Sends, is_async: bool
) -> None:
    batched, library, writes = batch_both_ways(is_async, states, sends)
    # A socket closed along the way (it missed its pings) is forgotten by the library's
    # next send_packet, and left to its own disconnect here: the open ones must match.
    assert {s: wire for s, (wire, closed) in batched.items() if not closed} == {
        s: wire for s, (wire, closed) in library.items() if not closed
    }
    for sid, (wire, _) in batched.items():
        # Under asyncio a client's frames are one write; eventlet's queues take packets,
        # its writer sends each (see gateway.internals.outbox).
        assert writes.get(sid, 0) == (1 if wire.removesuffix(END) and is_async else 0)


def test_a_batch_counts_frames_not_writes_against_the_limit() -> None:
    eio = engineio_server(is_async=True)
    sids = with_sockets(eio, ["open", "open"])
    for sock in eio.sockets.values():
        sock.queue = DirectSender(Transport())
    outbox, writes = Outbox(eio, limit=2), Writes()
    packet = eio_packet.Packet(eio_packet.MESSAGE, "x")
    for _ in range(3):
        outbox.send(sids[:1], [packet], writes)  # three updates for the first client
    outbox.send(sids[1:], [packet, packet], writes)  # two for the second
    assert outbox.overfull(2) == []  # nothing is written before the flush
    outbox.flush(writes)
    assert [len(eio.sockets[sid].queue.transport.writes) for sid in sids] == [1, 1]
    assert outbox.overfull(2) == [("s0", 3)]
