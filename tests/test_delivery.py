"""Delivery against a plain model: after any sequence of holds, joins, releases, leaves
and updates, every client has each update once, in order, and a room is announced in use
exactly while someone is in it or held for it."""

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.delivery import Delivery

CLIENTS = ["a", "b"]
ROOMS = ["bars:AAPL", "figure:AAPL"]

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
        self.state: dict[tuple[str, str], str] = {}  # (sid, room) -> "held" | "member"
        self.was_member: set[tuple[str, str]] = set()
        self.expected: dict[tuple[str, str], list[int]] = {}  # updates it must get
        self.got: dict[tuple[str, str], list[int]] = {}

    def in_use(self) -> set[str]:
        return {room for (_, room) in self.state}


@settings(max_examples=500, deadline=None)
@given(operations)
@example([("hold", "a", ROOMS[0]), ("update", "b", ROOMS[0])] + [("take", "a", ROOMS[0])] * 2)
def test_every_update_reaches_each_client_once_and_in_order(ops: list[Any]) -> None:
    in_use: set[str] = set()

    def first(room: str) -> None:
        assert room not in in_use
        in_use.add(room)

    def last(room: str) -> None:
        assert room in in_use
        in_use.discard(room)

    delivery, model = Delivery(first, last), Model()
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
            delivery.hold(sid, room)
        elif op in ("take", "release"):
            if op == "take":
                got = delivery.take_held(sid, f"eio-{sid}", room)
            else:
                got = delivery.release(sid, room)
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
            if op == "forget":
                delivery.forget(sid)
            else:
                delivery.leave(sid, room)
        else:
            update += 1
            recipients = delivery.recipients(room, [str(update)])
            for (s, r), where in model.state.items():
                if r == room:
                    model.expected.setdefault((s, r), []).append(update)
                    if where == "member":
                        assert f"eio-{s}" in recipients
                        model.got.setdefault((s, r), []).append(update)
            members = [s for (s, r), w in model.state.items() if r == room and w == "member"]
            assert sorted(recipients) == sorted(f"eio-{s}" for s in members)
        assert in_use == model.in_use()
        assert delivery.rooms() == in_use
        for key, where in model.state.items():
            got, expected = model.got.get(key, []), model.expected.get(key, [])
            assert got == expected[: len(got)], key  # nothing twice, nothing out of order
            if where == "member":  # everything held has been handed over
                assert got == expected, key
