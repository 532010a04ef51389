"""Publishing whole figures to the rooms that watch them.

Each room has a channel of its own (``Keys.room_channel``), to which only the gateways
with a client in the room subscribe; a message is the Socket.IO event packet itself
(``common.messages.event_packet``), which a gateway relays unparsed.

A render's delta goes to the page's room with the render's store (renderer.store,
in one script). The whole figure, 200 kB for a week's window, goes only to the rooms
that store found watched: the view's figure room (``figure`` events) and, for the
default view, the article's ``graph_plot`` room (the figure as a JSON string), and to
each at most once per ``RTPLOT_FULL_FIGURE_EVERY`` seconds.
"""

import time
from dataclasses import dataclass, field
from typing import Protocol

import redis

from common.keys import Keys
from common.messages import (
    FIGURE,
    GRAPH_PLOT,
    event_packet,
    graph_plot_payload,
    legacy_room,
)
from renderer import metrics


class Publisher(Protocol):
    def publish_figures(
        self, symbol: str, payload_json: bytes, figure_json: bytes, rooms: set[str]
    ) -> None: ...


@dataclass
class RoomPublisher:
    client: "redis.Redis"
    keys: Keys
    full_figure_every: float = 0.0  # seconds between whole figures to a room; 0: every render
    _last_sent: dict[str, float] = field(default_factory=dict)  # room -> when

    def publish_figures(
        self, symbol: str, payload_json: bytes, figure_json: bytes, rooms: set[str]
    ) -> None:
        """The figure to each of ``rooms`` (a view's figure room, and the symbol's
        graph_plot room, that are watched) that is due one. Raises ``redis.RedisError``
        when it could not, so the renderer leaves the change unacknowledged and it is
        rendered again."""
        now = time.monotonic()
        pipe = self.client.pipeline(transaction=False)
        sent = 0
        for room in sorted(rooms):
            if now - self._last_sent.get(room, -1e9) < self.full_figure_every:
                continue
            self._last_sent[room] = now
            event = GRAPH_PLOT if room == legacy_room(symbol) else FIGURE
            if event == FIGURE:
                packet = event_packet(FIGURE, payload_json)
            else:  # the article's client JSON.parse()s a string: the figure, as one
                packet = event_packet(GRAPH_PLOT, graph_plot_payload(figure_json))
            pipe.publish(self.keys.room_channel(room), packet)
            metrics.PUBLISHED_BYTES.labels(event).inc(len(packet))
            sent += 1
        if not sent:
            return
        try:
            pipe.execute()
        except redis.RedisError:
            metrics.PUBLISH_ERRORS.inc()
            raise
