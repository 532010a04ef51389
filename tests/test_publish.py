"""Whole figures go out on their rooms' channels as Socket.IO packets, each room at most
once per RTPLOT_FULL_FIGURE_EVERY, against a real Redis."""

import time
from typing import Any

import orjson
import redis

from common.contract.keys import Keys
from common.contract.rooms import Mode, Room
from renderer.publish import RoomPublisher

KEYS = Keys()
PAYLOAD = b'{"symbol":"AAPL","seq":7,"epoch":"e1","figure":{"data":[],"layout":{}}}'
FIGURE = b'{"data":[],"layout":{}}'
ROOMS = {Room("AAPL"), Room("AAPL", Mode.ARTICLE)}


def listen(client: "redis.Redis", *rooms: Room) -> Any:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(KEYS.channel(room) for room in rooms))
    pubsub.get_message(timeout=0.5)
    return pubsub


def received(pubsub: Any) -> list[tuple[Room | None, bytes]]:
    messages = []
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            room = KEYS.room_of(message["channel"])
            messages.append((room, message["data"]))
    return messages


def test_each_room_gets_the_figure_as_its_clients_expect_it(client: "redis.Redis") -> None:
    viewers = listen(client, *ROOMS)
    RoomPublisher(client, KEYS).publish_figures(PAYLOAD, FIGURE, ROOMS)
    sent = dict(received(viewers))
    assert sent[Room("AAPL")] == b'2["figure",' + PAYLOAD + b"]"
    # The article's client JSON.parse()s a string: the figure, as a JSON string.
    event, figure = orjson.loads(sent[Room("AAPL", Mode.ARTICLE)][1:])
    assert event == "graph_plot" and orjson.loads(figure) == orjson.loads(FIGURE)


def test_only_the_rooms_named_are_sent_to(client: "redis.Redis") -> None:
    viewers = listen(client, *ROOMS)
    RoomPublisher(client, KEYS).publish_figures(PAYLOAD, FIGURE, {Room("AAPL")})
    assert [room for room, _ in received(viewers)] == [Room("AAPL")]


def test_whole_figures_to_a_room_can_be_spaced_out(client: "redis.Redis") -> None:
    publisher = RoomPublisher(client, KEYS, full_figure_every=60)
    viewers = listen(client, Room("AAPL"))
    for _ in range(3):
        publisher.publish_figures(PAYLOAD, FIGURE, {Room("AAPL")})
    assert len(received(viewers)) == 1
