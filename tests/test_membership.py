"""The gateway's membership against a plain model: after any sequence of holds, joins,
releases, leaves and updates, every client has each update once, in order; a room is
announced in use exactly while someone is in it or held for it; and python-socketio's
rooms (which follow the subscriptions) hold exactly the clients subscribed."""

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.contract.rooms import Mode, Room
from gateway.membership import Membership

CLIENTS = ["a", "b"]
ROOMS = [Room("AAPL", Mode.DELTA), Room("MSFT")]  # a client holds one room per symbol

# Joins, updates and takes are the ones that interleave; leaving is rarer, as in life.
KINDS = ["hold"] * 3 + ["take"] * 4 + ["update"] * 4 + ["release", "leave", "forget"]
operations = st.lists(
    st.tuples(st.sampled_from(KINDS), st.sampled_from(CLIENTS), st.sampled_from(ROOMS)),
    min_size=5,
    max_size=80,
)


class Model:
    """What each client should have received, per room, and who is where."""

    def __init__(self) -> None:
        self.state: dict[tuple[str, Room], str] = {}  # (sid, room) -> "held" | "member"
        self.was_member: set[tuple[str, Room]] = set()
        self.expected: dict[tuple[str, Room], list[int]] = {}  # updates it must get
        self.got: dict[tuple[str, Room], list[int]] = {}

    def in_use(self) -> set[Room]:
        return {room for (_, room) in self.state}

    def subscribed(self) -> set[tuple[str, Room]]:
        """Members, and members held again (a resubscribe): subscribed all along."""
        return {
            key for key, where in self.state.items() if where == "member" or key in self.was_member
        }


@settings(max_examples=500, deadline=None)
@given(operations)
@example([("hold", "a", ROOMS[0]), ("update", "b", ROOMS[0])] + [("take", "a", ROOMS[0])] * 2)
@example([(op, "a", ROOMS[0]) for op in ("hold", "take", "hold", "leave")])  # a resubscribe left
def test_every_update_reaches_each_client_once_and_in_order(ops: list[Any]) -> None:
    in_use: set[Room] = set()
    following: set[tuple[str, Room]] = set()  # python-socketio's rooms, as told

    def first(room: Room) -> None:
        assert room not in in_use
        in_use.add(room)

    def last(room: Room) -> None:
        assert room in in_use
        in_use.discard(room)

    def enter(sid: str, room: Room) -> None:
        assert (sid, room) not in following
        following.add((sid, room))

    def leave(sid: str, room: Room) -> None:
        following.remove((sid, room))

    membership = Membership(first, last, on_subscribed=enter, on_unsubscribed=leave)
    model = Model()
    for sid in CLIENTS:
        membership.connected(sid, f"eio-{sid}")
    update = 0
    for op, sid, room in ops:
        key = (sid, room)
        if op == "hold":
            if model.state.get(key) == "member":
                model.was_member.add(key)
            elif key not in model.state:
                model.was_member.discard(key)
            model.state.setdefault(key, "held")
            model.state[key] = "held"
            membership.hold(sid, room)
        elif op in ("take", "release"):
            got = membership.take_held(sid, room) if op == "take" else membership.release(sid, room)
            model.got.setdefault(key, []).extend(int(p) for p in got or [])
            if model.state.get(key) == "held" and not got:
                if op == "take" or key in model.was_member:
                    model.state[key] = "member"
                else:
                    del model.state[key]
                    model.expected.pop(key, None)
                    model.got.pop(key, None)
        elif op in ("leave", "forget"):
            rooms = [r for (s, r) in list(model.state) if s == sid] if op == "forget" else [room]
            for r in rooms:
                model.state.pop((sid, r), None)
                model.expected.pop((sid, r), None)
                model.got.pop((sid, r), None)
                model.was_member.discard((sid, r))
            if op == "forget":
                membership.forget(sid)
                membership.connected(sid, f"eio-{sid}")  # it comes back
            else:
                membership.leave(sid, room)
        else:
            update += 1
            recipients = membership.recipients(room, [str(update)])
            for (s, r), where in model.state.items():
                if r == room:
                    model.expected.setdefault((s, r), []).append(update)
                    if where == "member":
                        assert f"eio-{s}" in recipients
                        model.got.setdefault((s, r), []).append(update)
            members = [s for (s, r), w in model.state.items() if r == room and w == "member"]
            assert sorted(recipients) == sorted(f"eio-{s}" for s in members)
        assert in_use == model.in_use()
        assert membership.rooms() == in_use
        assert following == model.subscribed()
        for key, where in model.state.items():
            got, expected = model.got.get(key, []), model.expected.get(key, [])
            assert got == expected[: len(got)], key  # nothing twice, nothing out of order
            if where == "member":  # everything held has been handed over
                assert got == expected, key


# -- subscriptions --------------------------------------------------------------------


def join(membership: Membership, sid: str, room: Room) -> None:
    """What a join does to the membership once its snapshot is sent."""
    membership.connected(sid, f"eio-{sid}")
    membership.hold(sid, room)
    assert membership.take_held(sid, room) == []


def test_subscriptions_are_counted_per_symbol_and_per_view() -> None:
    viewers: dict[str, int] = {}
    membership = Membership(on_viewers=viewers.__setitem__)
    candles = Room("AAPL", Mode.FIGURE, "candles.5m.vol")
    join(membership, "a", candles)
    join(membership, "b", Room("AAPL", Mode.DELTA, "candles.5m.vol"))
    join(membership, "c", Room("AAPL", Mode.DELTA))
    join(membership, "c", Room("MSFT", Mode.DELTA))
    assert membership.views() == [("AAPL", "candles.5m.vol")]
    assert membership.counts() == {"AAPL": 3, "MSFT": 1} and viewers == {"AAPL": 3, "MSFT": 1}
    assert membership.holds("c", "MSFT") and membership.held_by("c") == 2
    assert membership.room_of("a", "AAPL") == candles
    # A switch of view: the core leaves the old room, then joins the new one.
    membership.leave("a", candles)
    join(membership, "a", Room("AAPL", Mode.FIGURE, "ohlc.1h.vol"))
    assert sorted(membership.views()) == [("AAPL", "candles.5m.vol"), ("AAPL", "ohlc.1h.vol")]
    assert membership.counts()["AAPL"] == 3
    membership.forget("b")
    membership.forget("a")
    assert membership.views() == [] and membership.counts() == {"AAPL": 1, "MSFT": 1}
    membership.forget("c")
    assert viewers == {"AAPL": 0, "MSFT": 0} and membership.rooms() == set()


def test_of_two_joins_of_a_symbol_the_newest_is_known() -> None:
    membership = Membership()
    candles, ohlc = Room("AAPL", view="candles.5m.vol"), Room("AAPL", view="ohlc.1m.vol")
    first = membership.begin_join("a", candles)
    second = membership.begin_join("a", ohlc)
    assert membership.newest_join("a", "AAPL") == (second, ohlc)
    membership.end_join("a", "AAPL", first)  # an older join ending changes nothing
    assert membership.rooms_of("a", "AAPL") == {ohlc}
    membership.end_join("a", "AAPL", second)
    assert membership.newest_join("a", "AAPL") is None
