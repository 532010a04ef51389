"""The renderer publishes each update on its room's channel, the full figures only where
someone watches, against a real Redis."""

import time
from typing import Any

import orjson
import redis

from common.keys import Keys
from common.messages import delta_room, figure_room, legacy_room
from renderer.publish import Render, RoomPublisher

KEYS = Keys()
PAYLOAD = b'{"symbol":"AAPL","seq":7,"figure":{"data":[],"layout":{}}}'
FIGURE = b'{"data":[],"layout":{}}'
DELTA = b'{"symbol":"AAPL","seq":7,"base_seq":6,"bars":[]}'


def listen(client: "redis.Redis", *rooms: str) -> Any:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(KEYS.room_channel(room) for room in rooms))
    while pubsub.get_message(timeout=0.1) is not None or not pubsub.subscribed:
        pass
    return pubsub


def received(pubsub: Any) -> dict[str, bytes]:
    messages: dict[str, bytes] = {}
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            room = message["channel"].decode().removeprefix(KEYS.room_channel(""))
            messages[room] = message["data"]
    return messages


def test_the_delta_always_goes_out_and_full_figures_only_where_watched(
    client: "redis.Redis",
) -> None:
    publisher = RoomPublisher(client, KEYS)
    pages = listen(client, delta_room("AAPL"))
    assert publisher.watched(["AAPL"]) == set()
    publisher.publish(Render("AAPL", PAYLOAD, FIGURE, DELTA), publisher.watched(["AAPL"]))
    assert received(pages) == {delta_room("AAPL"): b'2["bars",' + DELTA + b"]"}
    viewers = listen(client, figure_room("AAPL"), legacy_room("AAPL"))
    assert publisher.watched(["AAPL", "MSFT"]) == {figure_room("AAPL"), legacy_room("AAPL")}
    publisher.publish(Render("AAPL", PAYLOAD, FIGURE, DELTA), publisher.watched(["AAPL"]))
    full = received(viewers)
    assert full[figure_room("AAPL")] == b'2["figure",' + PAYLOAD + b"]"
    # The article's client JSON.parse()s a string: the figure, as a JSON string.
    graph_plot = orjson.loads(full[legacy_room("AAPL")][1:])
    assert graph_plot[0] == "graph_plot" and orjson.loads(graph_plot[1]) == orjson.loads(FIGURE)


def test_a_first_render_reaches_the_page_as_a_full_figure(client: "redis.Redis") -> None:
    pages = listen(client, delta_room("AAPL"))
    RoomPublisher(client, KEYS).publish(Render("AAPL", PAYLOAD, FIGURE, None), set())
    assert received(pages) == {delta_room("AAPL"): b'2["figure",' + PAYLOAD + b"]"}


def test_full_figures_to_a_room_can_be_spaced_out(client: "redis.Redis") -> None:
    publisher = RoomPublisher(client, KEYS, full_figure_every=60)
    viewers = listen(client, figure_room("AAPL"))
    watched = {figure_room("AAPL")}
    for _ in range(3):
        publisher.publish(Render("AAPL", PAYLOAD, FIGURE, DELTA), watched)
    counts: list[int] = []
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        if viewers.get_message(timeout=0.1) is not None:
            counts.append(1)
    assert len(counts) == 1
