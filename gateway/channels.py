"""Which room channels this gateway subscribes to, in batches, and who waits for a
subscription to be confirmed.

A gateway receives a room's updates only while one of its clients is in the room
(gateway.membership says when that starts and ends). Subscriptions change in batches:
every room that came into use, or went out of use, since the last batch is sent in one
SUBSCRIBE and one UNSUBSCRIBE, so a crowd reconnecting at once costs a few commands,
not one round trip per client. A join waits for Redis to confirm its room's
subscription; from then on every update published to the room reaches this gateway.

Redis confirms each channel of a command in order, so the commands sent but not yet
confirmed are kept per channel, in order: a room unsubscribed and subscribed again is
ready only when the second subscription is confirmed. Nothing here does I/O: the
listener (gateway.relay) sends what ``batch`` returns and reports what Redis confirms.
"""

from collections import deque
from typing import Protocol

from common.contract.rooms import Room

SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"


class Waiter(Protocol):
    def set(self) -> None: ...


class ChannelBook:
    def __init__(self) -> None:
        self.wanted: set[Room] = set()  # rooms in use here
        self.subscribed: set[Room] = set()  # rooms whose subscription Redis confirmed
        self.in_flight: dict[Room, deque[str]] = {}  # room -> commands sent, unconfirmed
        self.to_subscribe: set[Room] = set()
        self.to_unsubscribe: set[Room] = set()
        self.waiters: dict[Room, list[Waiter]] = {}
        self.connected = False

    def want(self, room: Room) -> None:
        self.wanted.add(room)
        self.to_unsubscribe.discard(room)
        if self._last_state(room) != SUBSCRIBE:
            self.to_subscribe.add(room)

    def unwant(self, room: Room) -> None:
        self.wanted.discard(room)
        self.to_subscribe.discard(room)
        if self._last_state(room) == SUBSCRIBE:
            self.to_unsubscribe.add(room)

    def ready(self, room: Room) -> bool:
        """Whether every update published to the room from now on reaches this gateway."""
        return room in self.subscribed and not self.in_flight.get(room)

    def wait(self, room: Room, waiter: Waiter) -> None:
        self.waiters.setdefault(room, []).append(waiter)

    def stop_waiting(self, room: Room, waiter: Waiter) -> None:
        waiting = self.waiters.get(room, [])
        if waiter in waiting:
            waiting.remove(waiter)
        if not waiting:
            self.waiters.pop(room, None)

    def pending(self) -> bool:
        return self.connected and bool(self.to_subscribe or self.to_unsubscribe)

    def batch(self) -> tuple[list[Room], list[Room]]:
        """The rooms to subscribe and to unsubscribe now, recorded as sent."""
        if not self.connected:
            return [], []
        subscribe = sorted(self.to_subscribe, key=str)
        unsubscribe = sorted(self.to_unsubscribe, key=str)
        self.to_subscribe.clear()
        self.to_unsubscribe.clear()
        for room in subscribe:
            self.in_flight.setdefault(room, deque()).append(SUBSCRIBE)
        for room in unsubscribe:
            self.in_flight.setdefault(room, deque()).append(UNSUBSCRIBE)
        return subscribe, unsubscribe

    def confirmed(self, kind: str, room: Room) -> None:
        """Redis confirmed a (un)subscription of the room's channel."""
        sent = self.in_flight.get(room)
        if sent:
            sent.popleft()
            if not sent:
                del self.in_flight[room]
        if kind == SUBSCRIBE:
            self.subscribed.add(room)
        else:
            self.subscribed.discard(room)
        if self.ready(room):
            for waiter in self.waiters.pop(room, []):
                waiter.set()

    def connect(self) -> None:
        """A new connection to Redis, subscribed to nothing: every room in use goes in
        the next batch, and the joins waiting keep waiting for it."""
        self.connected = True
        self.subscribed.clear()
        self.in_flight.clear()
        self.to_subscribe = set(self.wanted)
        self.to_unsubscribe.clear()

    def disconnect(self) -> None:
        self.connected = False

    def _last_state(self, room: Room) -> str:
        sent = self.in_flight.get(room)
        if room in self.to_subscribe:
            return SUBSCRIBE
        if sent:
            return sent[-1]
        return SUBSCRIBE if room in self.subscribed else UNSUBSCRIBE
