"""Publishing whole figures to the rooms that watch them.

Each room has a channel of its own (``Keys.channel``), to which only the gateways
with a client in the room subscribe; a message is the Socket.IO event packet itself
(``common.contract.packets.event_packet``), which a gateway relays unparsed.

A render's delta goes to the page's room with the render's store (renderer.store, in
one script). The whole figure, hundreds of kB for a week's window, goes only to the
rooms that store found watched (renderer.watching): the view's figure room (``figure``
events) and, for the default view, the article's ``graph_plot`` room (the figure as a
JSON string), and to each at most once per ``RTPLOT_FULL_FIGURE_EVERY`` seconds.
"""

import time
from dataclasses import dataclass, field
from typing import Protocol

import redis

from common.contract.keys import Keys
from common.contract.packets import event_packet
from common.contract.rooms import Mode, Room
from common.messages import graph_plot_payload
from renderer import metrics


class Publisher(Protocol):
    def publish_figures(
        self, payload_json: bytes, figure_json: bytes, rooms: set[Room]
    ) -> None: ...


@dataclass
class RoomPublisher:
    client: "redis.Redis"
    keys: Keys
    full_figure_every: float = 0.0  # seconds between whole figures to a room; 0: every render
    _last_sent: dict[Room, float] = field(default_factory=dict)  # room -> when

    def publish_figures(self, payload_json: bytes, figure_json: bytes, rooms: set[Room]) -> None:
        """The figure to each of ``rooms`` (a view's figure room, and the symbol's
        graph_plot room, that are watched) that is due one. Raises ``redis.RedisError``
        when it could not, so the renderer leaves the change unacknowledged and it is
        rendered again."""
        now = time.monotonic()
        pipe = self.client.pipeline(transaction=False)
        sent = 0
        for room in sorted(rooms, key=str):
            if now - self._last_sent.get(room, -1e9) < self.full_figure_every:
                continue
            self._last_sent[room] = now
            if room.mode is Mode.ARTICLE:  # its client JSON.parse()s a string: the figure
                packet = event_packet(room.event, graph_plot_payload(figure_json))
            else:
                packet = event_packet(room.event, payload_json)
            pipe.publish(self.keys.channel(room), packet)
            metrics.PUBLISHED_BYTES.labels(room.event).inc(len(packet))
            sent += 1
        if not sent:
            return
        try:
            pipe.execute()
        except redis.RedisError:
            metrics.PUBLISH_ERRORS.inc()
            raise
